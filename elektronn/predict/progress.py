"""Progress reporting of dense prediction: a callback, or a one-line bar on stderr."""

from __future__ import annotations

import sys
import time
from collections.abc import Callable
from typing import TextIO

from ..terminal import draw_line, format_seconds

#: ``callback(done_voxels, total_voxels, elapsed_seconds)``, called after every tile.
ProgressCallback = Callable[[int, int, float], None]


class ProgressBar:
    """``[#####-----]  52.0 %  1.84 Mvox/s  ETA 12s`` for one volume, on stderr by default.

    Output voxels per second is the figure users compare tile sizes and machines by (the
    original printed "MPix/s"); the ETA assumes the remaining tiles run at the mean speed.
    At a terminal the line is redrawn in place at most every ``interval`` seconds (and at
    the end); elsewhere a new line at most every ``log_interval`` seconds, so thousands of
    small tiles do not flood a log file.
    """

    def __init__(
        self,
        stream: TextIO | None = None,
        width: int = 30,
        interval: float = 0.5,
        log_interval: float = 30.0,
    ) -> None:
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


def build_progress(progress: bool | ProgressCallback | None) -> ProgressCallback | None:
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
