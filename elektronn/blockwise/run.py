"""Running a :class:`~.task.Task`: here, one block after the other, or on a Dask cluster."""

from __future__ import annotations

import contextlib
from collections.abc import Iterable, Iterator

from .errors import BlockwiseError
from .failures import BlockFailure, Report, describe_failures
from .progress import BlockProgress
from .task import Block, Task, missing_blocks, run_block

#: Resubmissions of a block whose work raised (e.g. a transient read error).
RETRIES = 2


def check_cluster_options(workers: int | None, scheduler: str | None) -> None:
    """``workers`` and ``scheduler`` are exclusive; ``workers`` is at least 1."""
    if workers is not None and workers < 1:
        raise BlockwiseError(
            f"--workers {workers}: give the number of Dask worker processes to start on this "
            f"machine, at least 1 (one per GPU or CPU core), or leave it out to work in this "
            f"process."
        )
    if workers is not None and scheduler is not None:
        raise BlockwiseError(
            "--workers starts a cluster on this machine and --scheduler uses an existing one; "
            "give one of them."
        )


@contextlib.contextmanager
def cluster_for(workers: int | None, scheduler: str | None) -> Iterator[str | None]:
    """The scheduler address that several tasks of one job share (pass it to
    :func:`run_task` as ``scheduler``): one LocalCluster of ``workers`` processes started
    once for all of them (a worker's start costs seconds), ``scheduler`` itself, or None (work
    in this process)."""
    check_cluster_options(workers, scheduler)
    if workers is None:
        yield scheduler
        return
    from .cluster import dask_client

    with dask_client(workers, None) as client:
        yield client.scheduler.address


def run_task(
    task: Task,
    *,
    workers: int | None = None,
    scheduler: str | None = None,
    retries: int = RETRIES,
    progress: bool | Report = True,
) -> int:
    """Run the blocks of ``task`` not yet marked done; returns how many ran now.

    Parameters
    ----------
    workers
        Start a Dask LocalCluster of this many single-threaded processes for the run.
    scheduler
        The address of an existing Dask scheduler (e.g. ``tcp://host:8786``).
        With neither, the blocks run one after the other in this process.
    retries
        Resubmissions of a block whose work raised (on Dask; here an ``OSError`` such as a
        full disk stops the run, as later blocks would fail alike).
    progress
        True for a progress line on stderr, or a :data:`~.failures.Report` callable.

    Raises
    ------
    BlockwiseError
        Naming the failed blocks, after the others finished (they stay marked done, so a
        rerun computes only what is missing).
    """
    check_cluster_options(workers, scheduler)
    blocks = missing_blocks(task)
    if not blocks:
        return 0
    report = (
        BlockProgress(task.n_blocks, task.n_blocks - len(blocks))
        if progress is True
        else (progress or (lambda *_: None))
    )
    if workers is None and scheduler is None:
        failures = run_in_process(task, blocks, report, retries)
    else:
        from .cluster import dask_client, run_on_dask

        with dask_client(workers, scheduler) as client:
            failures = run_on_dask(task, blocks, client, report, retries)
    if failures:
        raise BlockwiseError(describe_failures(task, failures, len(missing_blocks(task))))
    return len(blocks)


def run_in_process(
    task: Task, blocks: Iterable[Block], report: Report, retries: int
) -> list[BlockFailure]:
    """Run ``blocks`` one after the other here; an ``OSError`` is retried, then stops the run
    (e.g. a full disk: later blocks would fail alike) and is returned."""
    for block in blocks:
        for attempt in range(retries + 1):
            try:
                report(run_block(task, block), None, False)
                break
            except OSError as exc:
                if attempt < retries:
                    report(None, None, True)
                    continue
                failure = BlockFailure(block.index, exc)
                report(None, failure, False)
                return [failure]
    return []
