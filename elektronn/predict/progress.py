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


class ProgressBar:
    """``[#####-----]  52.0 %  1.84 Mvox/s  ETA 12.3s`` rewritten in place on a stream.

    Output voxels per second is the figure users compare tile sizes and machines by (the
    original printed "MPix/s"); the ETA assumes the remaining tiles run at the mean speed.
    """

    def __init__(self, stream: TextIO = sys.stderr, width: int = 30) -> None:
        self.stream = stream
        self.width = width

    def __call__(self, done: int, total: int, elapsed: float) -> None:
        fraction = done / total if total else 1.0
        speed = done / elapsed if elapsed > 0 else 0.0
        eta = (total - done) / speed if speed > 0 else float("nan")
        filled = int(round(fraction * self.width))
        bar = "#" * filled + "-" * (self.width - filled)
        line = f"\r[{bar}] {100 * fraction:5.1f} %  {speed / 1e6:7.3f} Mvox/s"
        if done < total:
            line += f"  ETA {format_seconds(eta)}"
        else:
            line += f"  done in {format_seconds(elapsed)}\n"
        self.stream.write(line)
        self.stream.flush()


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
