"""Output streams that outlive their reader: ``elektronn-train cfg.py | tee log`` and Ctrl+C.

Ctrl+C reaches every process of the pipeline, so ``tee`` ends while training goes on (the
trainer opens its console or stops cleanly with the final save). Python ignores SIGPIPE, so
the next ``print`` raised ``BrokenPipeError`` and ended the run without ``_end.param``. With
:func:`survive_broken_pipes`, a stream whose reader went away is pointed at ``/dev/null``
(so no later flush fails, not even at exit) and its text goes on to the fallback: stdout to
stderr (still the terminal after ``| tee``), stderr nowhere.
"""

from __future__ import annotations

import io
import os
import sys
from typing import TextIO


class SurvivingStream(io.TextIOBase):
    """A text stream that moves to ``fallback`` when writing to ``stream`` breaks a pipe."""

    def __init__(self, stream: TextIO, name: str, fallback: TextIO | None) -> None:
        self._stream = stream
        self._name = name
        self._fallback = fallback
        self._broken = False

    def write(self, text: str) -> int:
        if not self._broken:
            try:
                return self._stream.write(text)
            except BrokenPipeError:
                self._give_up()
        return self._fallback.write(text) if self._fallback is not None else len(text)

    def flush(self) -> None:
        if not self._broken:
            try:
                self._stream.flush()
            except BrokenPipeError:
                self._give_up()
        elif self._fallback is not None:
            self._fallback.flush()

    def fileno(self) -> int:
        if self._broken and self._fallback is not None:
            return self._fallback.fileno()
        return self._stream.fileno()

    def isatty(self) -> bool:
        return not self._broken and self._stream.isatty()

    def writable(self) -> bool:
        return True

    @property
    def encoding(self) -> str:  # type: ignore[override]
        return self._stream.encoding

    def _give_up(self) -> None:
        """Point the broken descriptor at /dev/null, drop its buffer, say where output goes."""
        self._broken = True
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, self._stream.fileno())
        os.close(devnull)
        try:
            self._stream.flush()  # the text that did not get through goes to /dev/null
        except OSError:
            pass
        if self._fallback is not None:
            self._fallback.write(
                f"elektronn: the reader of {self._name} went away (e.g. 'tee' ended on Ctrl+C); "
                f"training goes on, its output continues here.\n"
            )


def survive_broken_pipes() -> None:
    """Replace ``sys.stdout`` and ``sys.stderr`` with streams that survive a closed pipe."""
    if isinstance(sys.stderr, SurvivingStream) or sys.stdout is None or sys.stderr is None:
        return
    sys.stderr = SurvivingStream(sys.stderr, "stderr", None)
    sys.stdout = SurvivingStream(sys.stdout, "stdout", sys.stderr)
