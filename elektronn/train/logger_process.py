"""The run loggers (TensorBoard, MLflow) in a child process, off the training path.

Importing MLflow and creating its SQLite store took 2.5 s of the first history step on an idle
machine (12 s on a busy one), and importing TensorBoard's writer most of a second more: time
before the first status line in which nothing trained. :class:`LoggerProcess` is the one
:class:`~elektronn.train.loggers.RunLogger` the trainer holds; it starts
``python -m elektronn.train.logger_process`` at the first value and sends it every call as a
pickled message on the child's stdin, so training never waits for a logger to import, open
its store or write.

The child builds the loggers of ``loggers`` (:func:`~.tensorboard.build_logger`,
:func:`~.mlflow_log.build_logger`), calls each message on each of them, drops a logger that
fails with one line on stderr (as the trainer did), and ends when its stdin closes: after the
``close`` message with the run's outcome, or without it when the trainer died (the MLflow run
is then ``KILLED``). It ignores Ctrl+C, SIGTERM and SIGHUP sent to the terminal's process
group: the trainer decides when logging ends.
"""

from __future__ import annotations

import pickle
import signal
import subprocess
import sys
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from operator import methodcaller
from pathlib import Path
from typing import IO, Any

from . import mlflow_log, tensorboard
from .loggers import Outcome, call_each, history_values

CLOSE_TIMEOUT_S = 300
"""How long the end of training waits for the child to write what it was sent."""


@dataclass(frozen=True)
class LoggerSpec:
    """What the child needs to build the loggers of one run.

    Attributes
    ----------
    names
        The ``loggers`` option (``'tensorboard'``, ``'mlflow'``), without duplicates.
    save_dir, save_name
        Where the run writes (``tensorboard/``, ``mlruns/``) and the MLflow experiment's name.
    start_step
        The step a resumed run continues from (0: a new training).
    """

    names: tuple[str, ...]
    save_dir: Path
    save_name: str
    start_step: int = 0


def usable_names(names: Iterable[str]) -> tuple[str, ...]:
    """The logger names whose packages are installed, found without importing them (MLflow
    says in one line what it lacks); TensorBoard is checked in the child."""
    names = tuple(dict.fromkeys(names))
    return tuple(n for n in names if n != "mlflow" or mlflow_log.usable())


class LoggerProcess:
    """The run loggers of :class:`LoggerSpec` in a child process (a ``RunLogger``).

    Parameters
    ----------
    spec
        Which loggers, where.
    params
        Returns the resolved configuration; called at the first value (a resumed run has
        restored its state by then) and sent to the child for MLflow's parameters.
    """

    name = "Run logging"

    def __init__(self, spec: LoggerSpec, params: Callable[[], Mapping[str, Any]]) -> None:
        self.spec = spec
        self.params = params
        self.process: subprocess.Popen | None = None

    def _send(self, message: tuple) -> None:
        if self.process is None:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "elektronn.train.logger_process"], stdin=subprocess.PIPE
            )
            self._write(("start", self.spec, dict(self.params())))
        self._write(message)

    def _write(self, message: tuple) -> None:
        pickle.dump(message, self.process.stdin)
        self.process.stdin.flush()

    def log_history(self, history: Any, step: int, its_per_s: float | None = None) -> None:
        """The status-line values of the newest history step, sent to the loggers."""
        self._send(("log_values", history_values(history, its_per_s), step))

    def log_images(self, paths: Iterable[str | Path], step: int) -> None:
        """The preview PNGs just written (their paths), sent to the loggers."""
        self._send(("log_images", [str(p) for p in paths], step))

    def close(self, outcome: Outcome = "FINISHED") -> None:
        """Send the outcome and wait until the child has written everything (idempotent)."""
        process, self.process = self.process, None
        if process is None:
            return
        try:
            pickle.dump(("close", outcome), process.stdin)
            process.stdin.close()
        except BrokenPipeError:  # the child is gone; it said why on stderr
            pass
        try:
            process.wait(timeout=CLOSE_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            process.kill()
            print(
                f"Run logging did not finish within {CLOSE_TIMEOUT_S} s and was stopped.",
                file=sys.stderr,
                flush=True,
            )


def build_loggers(spec: LoggerSpec, params: Mapping[str, Any]) -> list[Any]:
    """The loggers of ``spec`` whose packages import (in the child)."""
    factories: dict[str, Callable[[], Any]] = {
        "tensorboard": lambda: tensorboard.build_logger(spec.save_dir),
        "mlflow": lambda: mlflow_log.build_logger(
            spec.save_dir, spec.save_name, lambda: params, spec.start_step
        ),
    }
    made = (factories[name]() for name in spec.names)
    return [logger for logger in made if logger is not None]


def serve(stream: IO[bytes]) -> None:
    """The child: build the loggers from the first message, then pass on every message until
    ``stream`` ends (closed by :meth:`LoggerProcess.close`, or by the trainer's death)."""
    loggers: list[Any] = []
    outcome: Outcome = "KILLED"
    while True:
        try:
            kind, *args = pickle.load(stream)
        except EOFError:
            break
        if kind == "start":
            try:
                loggers = build_loggers(*args)
            except Exception as exc:
                print(f"Run logging is off: {type(exc).__name__}: {exc}", file=sys.stderr)
        elif kind == "close":
            outcome = args[0]
        else:  # "log_values" or "log_images", with their arguments
            loggers = call_each(loggers, methodcaller(kind, *args))
    call_each(loggers, methodcaller("close", outcome))


def main() -> None:
    for signum in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
        signal.signal(signum, signal.SIG_IGN)
    serve(sys.stdin.buffer)


if __name__ == "__main__":
    main()
