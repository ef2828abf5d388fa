"""Lines a command redraws at a terminal, and the short durations they show."""

from __future__ import annotations

from typing import TextIO


def format_seconds(seconds: float) -> str:
    """``Ns`` up to 5 min, ``Nm`` up to about an hour, else ``N.Nh``.

    The one duration format of every status line (training's ``t=`` and ETA, prediction's
    progress), short enough for a terminal line; it is the original ELEKTRONN's ``t=`` format.
    """
    if seconds <= 300:
        return f"{seconds:.0f}s"
    if seconds <= 4000:
        return f"{seconds / 60:.0f}m"
    return f"{seconds / 3600:.1f}h"


def draw_line(stream: TextIO, text: str, finished: bool) -> None:
    """``text`` rewritten in place at a terminal; a plain new line elsewhere (a log file, a
    pipe, ``nohup``), which never gets carriage returns."""
    tty = stream.isatty()
    start, end = ("\r", "\n" if finished else "") if tty else ("", "\n")
    stream.write(start + text + end)
    stream.flush()
