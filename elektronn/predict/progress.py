"""Progress reporting of dense prediction: a callback, or a one-line bar on stderr."""

from __future__ import annotations

import sys
import time
from collections.abc import Callable
from typing import TextIO

#: ``callback(done_voxels, total_voxels, elapsed_seconds)``, called after every tile.
ProgressCallback = Callable[[int, int, float], None]


def format_seconds(seconds: float) -> str:
    """``1h02m``, ``3m07s`` or ``12.3s``: short enough for a status line."""
    if seconds >= 3600:
        return f"{int(seconds // 3600)}h{int(seconds % 3600 // 60):02d}m"
    if seconds >= 60:
        return f"{int(seconds // 60)}m{int(seconds % 60):02d}s"
    return f"{seconds:.1f}s"


def draw_line(stream: TextIO, text: str, finished: bool) -> None:
    """``text`` rewritten in place at a terminal; a plain new line elsewhere (a log file, a
    pipe, ``nohup``), which never gets carriage returns."""
    tty = stream.isatty()
    start, end = ("\r", "\n" if finished else "") if tty else ("", "\n")
    stream.write(start + text + end)
    stream.flush()


class ProgressBar:
    """``[#####-----]  52.0 %  1.84 Mvox/s  ETA 12.3s`` for one volume, on stderr by default.

    Output voxels per second is the figure users compare tile sizes and machines by (the
    original printed "MPix/s"); the ETA assumes the remaining tiles run at the mean speed.
    At a terminal the line is redrawn in place at most every ``interval`` seconds (and at
    the end); elsewhere a new line at most every ``log_interval`` seconds, so thousands of
    small tiles do not flood a log file.
    """

    def __init__(self, stream: TextIO | None = None, width: int = 30, interval: float = 0.5,
                 log_interval: float = 30.0) -> None:  # fmt: skip
        self.stream = stream
        self.width = width
        self.interval = interval
        self.log_interval = log_interval
        self.last_drawn = -float("inf")

    def __call__(self, done: int, total: int, elapsed: float) -> None:
        stream = self.stream or sys.stderr
        interval = self.interval if stream.isatty() else self.log_interval
        if done < total and elapsed - self.last_drawn < interval:
            return
        self.last_drawn = elapsed
        fraction = done / total if total else 1.0
        speed = done / elapsed if elapsed > 0 else 0.0
        filled = int(round(fraction * self.width))
        line = f"[{'#' * filled}{'-' * (self.width - filled)}] {100 * fraction:5.1f} %"
        line += f"  {speed / 1e6:7.3f} Mvox/s"
        if done < total:
            eta = (total - done) / speed if speed > 0 else float("nan")
            line += f"  ETA {format_seconds(eta)}"
        else:
            line += f"  done in {format_seconds(elapsed)}"
        draw_line(stream, line, done >= total)


def make_progress(progress: bool | ProgressCallback | None) -> ProgressCallback | None:
    """``True`` gives a :class:`ProgressBar` on stderr, a callable is used as is."""
    if progress is True:
        return ProgressBar()
    return progress or None


class Stopwatch:
    """Elapsed seconds since construction (a monotonic clock)."""

    def __init__(self) -> None:
        self.start = time.perf_counter()

    def __call__(self) -> float:
        return time.perf_counter() - self.start


class BlockProgress:
    """``blocks 12/72  3.210 Mvox/s  ETA 1m02s  failed 0  retried 1`` for blockwise runs.

    At a terminal the line is rewritten in place; in a log file (not a terminal) a new line
    is written at most every ``log_interval`` seconds, so logs get no carriage returns and
    stay short. Speed and ETA count only the blocks computed in this run.

    Called as ``progress(done, failure, retried)`` (:data:`.blockwise.Report`), with
    ``done.voxels`` the output voxels of a finished block.
    """

    def __init__(self, total: int, skipped: int, stream: TextIO | None = None,
                 interval: float = 0.5, log_interval: float = 30.0) -> None:  # fmt: skip
        self.total, self.blocks = total, skipped
        self.voxels, self.failed, self.retried = 0, 0, 0
        self.stream = stream or sys.stderr
        self.tty = self.stream.isatty()
        self.interval = interval if self.tty else log_interval
        self.clock, self.last_drawn = Stopwatch(), -float("inf")
        self.todo = total - skipped

    def __call__(self, done, failure, retried: bool) -> None:
        if done is not None:
            self.blocks += 1
            self.voxels += done.voxels
        self.failed += failure is not None
        self.retried += retried
        finished = self.blocks + self.failed >= self.total
        if finished or self.clock() - self.last_drawn >= self.interval:
            self.draw(finished)

    def line(self) -> str:
        elapsed = self.clock()
        speed = self.voxels / elapsed if elapsed > 0 else 0.0
        computed = self.blocks - (self.total - self.todo)
        left = self.total - self.blocks - self.failed
        eta = elapsed / computed * left if computed else float("nan")
        return (f"blocks {self.blocks}/{self.total}  {speed / 1e6:7.3f} Mvox/s  "
                f"ETA {format_seconds(eta) if left else '0.0s'}  failed {self.failed}  "
                f"retried {self.retried}")  # fmt: skip

    def draw(self, finished: bool = False) -> None:
        self.last_drawn = self.clock()
        draw_line(self.stream, self.line(), finished)
