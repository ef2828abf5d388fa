"""Output streams that outlive their reader: ``elektronn-train cfg.py | tee log`` and Ctrl+C.

Ctrl+C reaches every process of the pipeline, so ``tee`` ends while training goes on (the
trainer opens its console or stops cleanly with the final save). Python ignores SIGPIPE, so
the next ``print`` raised ``BrokenPipeError`` and ended the run without ``_end.param`` (as
``EIO`` does once a closed terminal or a dropped ssh session hung up the run's terminal). With
:func:`survive_broken_pipes`, a stream whose reader went away is pointed at ``/dev/null``
(so no later flush fails, not even at exit) and its text goes on to the fallback: stdout to
stderr (still the terminal after ``| tee``), stderr nowhere.

The same streams copy everything they are given into a :class:`RunLog` when one is passed:
``elektronn-train`` keeps ``<save_name>.log`` in the save directory that way (lines printed
before the directory exists are held back and written at the start of the file).
"""

from __future__ import annotations

import errno
import io
import os
import sys
from pathlib import Path
from typing import TextIO


class RunLog:
    """A copy of the terminal output in a file, e.g. ``<save_name>.log``.

    Not active until :meth:`start` (so programs that never open a log keep nothing); then
    the text is held in memory until :meth:`open` names the file, and written through (and
    flushed at once, so forked workers inherit no unwritten text) until :meth:`close`.
    """

    def __init__(self) -> None:
        self._held: list[str] | None = None
        self._file: TextIO | None = None

    def start(self) -> None:
        """Hold the text written from now on until the file is opened."""
        if self._file is None:
            self._held = []

    def write(self, text: str) -> None:
        if self._file is not None:
            self._file.write(text)
            self._file.flush()
        elif self._held is not None:
            self._held.append(text)

    def open(self, path: Path, append: bool) -> None:
        """Write the held text, and everything from now on, to ``path`` (if started)."""
        if self._held is None:
            return
        self._file = open(path, "a" if append else "w", encoding="utf-8")
        self._file.write("".join(self._held))
        self._file.flush()
        self._held = None

    def close(self) -> None:
        """Stop copying; the file is complete."""
        if self._file is not None:
            self._file.close()
        self._file, self._held = None, None


#: The log of ``elektronn-train``: ``<save_name>.log`` in the save directory.
RUN_LOG = RunLog()


def reader_gone(error: OSError) -> bool:
    """Nobody reads the stream any more: its pipe was closed (EPIPE), or its terminal hung
    up (EIO: a closed terminal window, a dropped ssh session)."""
    return error.errno in (errno.EPIPE, errno.EIO)


class SurvivingStream(io.TextIOBase):
    """A text stream that moves to ``fallback`` when writing to ``stream`` breaks a pipe.

    Text it writes itself is copied to ``log`` (text moved to ``fallback`` is copied there).
    """

    def __init__(self, stream: TextIO, name: str, fallback: TextIO | None,
                 log: RunLog | None = None) -> None:  # fmt: skip
        self._stream = stream
        self._name = name
        self._fallback = fallback
        self._broken = False
        self._log = log

    def write(self, text: str) -> int:
        if not self._broken:
            try:
                written = self._stream.write(text)
                self._copy(text)
                return written
            except OSError as exc:
                if not reader_gone(exc):
                    raise
                self._give_up()
        if self._fallback is not None:
            return self._fallback.write(text)
        self._copy(text)
        return len(text)

    def _copy(self, text: str) -> None:
        if self._log is not None:
            self._log.write(text)

    def flush(self) -> None:
        if not self._broken:
            try:
                self._stream.flush()
            except OSError as exc:
                if not reader_gone(exc):
                    raise
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
                f"elektronn: the reader of {self._name} went away (e.g. 'tee' ended on Ctrl+C, "
                f"or the terminal closed); "
                f"training goes on, its output continues here.\n"
            )


def survive_broken_pipes(log: RunLog | None = None) -> None:
    """Replace ``sys.stdout`` and ``sys.stderr`` with streams that survive a closed pipe,
    copying what they write to ``log`` (started here) when one is given."""
    if log is not None:
        log.start()
    if isinstance(sys.stderr, SurvivingStream) or sys.stdout is None or sys.stderr is None:
        return
    sys.stderr = SurvivingStream(sys.stderr, "stderr", None, log)
    sys.stdout = SurvivingStream(sys.stdout, "stdout", sys.stderr, log)
