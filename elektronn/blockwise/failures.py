"""Blocks that failed, and how a run reports on its blocks."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from .task import Index, Task


@dataclass
class BlockFailure:
    index: Index
    error: BaseException


#: ``report(voxels, failure, retried)``: a block finished (its voxels), failed, or is retried.
Report = Callable[[int | None, BlockFailure | None, bool], None]


def describe_failures(task: Task, failures: list[BlockFailure], n_missing: int) -> str:
    """One paragraph: how many blocks failed, the first error, and how to finish."""
    first = failures[0]
    resume = (
        "Blocks finished so far are recorded as done; fix the cause (e.g. free disk space) "
        f"and rerun the same command to compute the {n_missing} missing block(s)."
        if task.done
        else "Fix the cause (e.g. free disk space) and run it again."
    )
    return (
        f"{len(failures)} block(s) of the {task.name} failed; the first, "
        f"{task.describe(first.index)}, failed with: {type(first.error).__name__}: "
        f"{first.error}. {resume}"
    )
