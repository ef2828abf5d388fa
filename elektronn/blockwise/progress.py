"""The progress line of a blockwise run."""

from __future__ import annotations

import sys
import time
from typing import TextIO

from ..terminal import draw_line, format_seconds


class BlockProgress:
    """``blocks 12/72  3.210 Mvox/s  ETA 1m02s  failed 0  retried 1`` for blockwise runs.

    At a terminal the line is rewritten in place; in a log file (not a terminal) a new line
    is written at most every ``log_interval`` seconds, so logs get no carriage returns and
    stay short. Speed and ETA count only the blocks computed in this run.

    Called as ``progress(voxels, failure, retried)`` (:data:`.run.Report`), with ``voxels``
    what a finished block made (None when none finished).
    """

    def __init__(
        self,
        total: int,
        skipped: int,
        stream: TextIO | None = None,
        interval: float = 0.5,
        log_interval: float = 30.0,
    ) -> None:
        self.total, self.blocks = total, skipped
        self.voxels, self.failed, self.retried = 0, 0, 0
        self.stream = stream or sys.stderr
        self.tty = self.stream.isatty()
        self.interval = interval if self.tty else log_interval
        self.started, self.last_drawn = time.perf_counter(), -float("inf")
        self.todo = total - skipped

    def __call__(self, voxels: int | None, failure: object, retried: bool) -> None:
        if voxels is not None:
            self.blocks += 1
            self.voxels += voxels
        self.failed += failure is not None
        self.retried += retried
        finished = self.blocks + self.failed >= self.total
        if finished or self.elapsed() - self.last_drawn >= self.interval:
            self.draw(finished)

    def elapsed(self) -> float:
        return time.perf_counter() - self.started

    def line(self) -> str:
        elapsed = self.elapsed()
        speed = self.voxels / elapsed if elapsed > 0 else 0.0
        computed = self.blocks - (self.total - self.todo)
        left = self.total - self.blocks - self.failed
        eta = elapsed / computed * left if computed else float("nan")
        return (
            f"blocks {self.blocks}/{self.total}  {speed / 1e6:7.3f} Mvox/s  "
            f"ETA {format_seconds(eta) if left else '0.0s'}  failed {self.failed}  "
            f"retried {self.retried}"
        )

    def draw(self, finished: bool = False) -> None:
        self.last_drawn = self.elapsed()
        draw_line(self.stream, self.line(), finished)
