"""The contract of the optional run loggers (TensorBoard, MLflow) and the values they log.

A run logger receives what the trainer shows a person: the status-line values of every
history step and the preview images. The trainer holds a list of them (built by
:func:`elektronn.train.run.build_run_loggers` from the ``loggers`` option, each only where its
package is installed, and only on rank 0: one :class:`~.logger_process.LoggerProcess` that
runs them in a child process, so training never waits for them) and calls the three methods
of :class:`RunLogger`; a logger that raises is dropped with one line and training goes on.

Every logger logs the same quantities under the same names (:func:`history_values`), so
TensorBoard's tags and MLflow's metric keys agree, and both agree with the printed status
line and the ``.npy`` logs in ``Backup/``.
"""

from __future__ import annotations

import math
import sys
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any, Literal, Protocol

HISTORY_TAGS = {
    "loss_smoothed": "loss/smoothed",
    "loss": "loss/update",
    "train_loss": "loss/train",
    "valid_loss": "loss/valid",
    "loss_diff": "loss/change_by_update",
    "lr": "optimizer/learning_rate",
}
"""Columns of the ``history`` log → logged names."""

ERROR_TAGS = {"train_error": "error/train", "valid_error": "error/valid"}
"""Columns of the ``errors`` log → logged names."""

SPEED_TAG = "speed/steps_per_s"
"""Training speed in update steps per second."""

Outcome = Literal["FINISHED", "FAILED", "KILLED"]
"""How training ended: normally (also by Ctrl+C/SIGTERM or ``abort``), by an error, or
without the final save (the console's ``kill``, a third Ctrl+C)."""


class RunLogger(Protocol):
    """What the trainer calls on each run logger (rank 0 only).

    Implementations open their files lazily at the first call, after the background batch
    workers were forked, and write nothing before the first value.
    """

    name: str
    """For messages: ``TensorBoard``, ``MLflow``."""

    def log_history(self, history: Any, step: int, its_per_s: float | None = None) -> None:
        """The newest history step of ``history`` (a :class:`~.history.History`) at ``step``."""

    def log_images(self, paths: Iterable[str | Path], step: int) -> None:
        """PNG files just written (the preview predictions) at ``step``."""

    def close(self, outcome: Outcome = "FINISHED") -> None:
        """The end of training: write everything and close (idempotent)."""


def history_values(history: Any, its_per_s: float | None = None) -> dict[str, float]:
    """The newest ``history`` and ``errors`` rows (and the speed) as ``{name: value}``.

    None and NaN (e.g. no validation data, no learning rate for CG) are left out, so a
    logger never records a value that the status line does not show.
    """
    from .history import ERRORS_COLUMNS, HISTORY_COLUMNS

    values: dict[str, float | None] = {}
    for kind, columns, tags in (
        ("history", HISTORY_COLUMNS, HISTORY_TAGS),
        ("errors", ERRORS_COLUMNS, ERROR_TAGS),
    ):
        row = history.last(kind)
        if row is not None:
            values.update({tags[c]: v for c, v in zip(columns, row, strict=True) if c in tags})
    if its_per_s:
        values[SPEED_TAG] = its_per_s
    return finite(values)


def finite(values: dict[str, float | None]) -> dict[str, float]:
    """``values`` as floats, without None and NaN/inf."""
    return {
        name: float(v) for name, v in values.items() if v is not None and math.isfinite(float(v))
    }


def call_each(loggers: list[Any], call: Callable[[Any], object]) -> list[Any]:
    """``call`` each logger; one that fails is dropped with one line on stderr (a logger must
    not end hours of training), the others go on. Returns the loggers that are left."""
    left = []
    for logger in loggers:
        try:
            call(logger)
            left.append(logger)
        except Exception as exc:
            message = f"{logger.name} logging stopped: {type(exc).__name__}: {exc}"
            print(message, file=sys.stderr, flush=True)
    return left
