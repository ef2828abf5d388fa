"""Lines a command redraws at a terminal, and the short durations they show."""

from __future__ import annotations

from typing import TextIO


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
