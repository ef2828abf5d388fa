"""Optional TensorBoard logging of the training history and the preview predictions.

Active only where the ``tensorboard`` package is installed (``pip install tensorboard``);
elektronn never depends on it, and without it :func:`build_logger` returns None and training
writes exactly the files it always writes. With it, every history step adds the values of the
status line (losses, errors, learning rate, speed) and every preview adds its images to
``<save_dir>/tensorboard/``, so that many runs can be compared in one browser tab::

    tensorboard --logdir ~/CNN_Training/

The x axis is the update step. A resumed run appends to the same folder; events of the
stopped run beyond the step it resumes from are dropped (``purge_step``), so the curves never
fold back on themselves.

:class:`TensorBoardLogger` is a :class:`~elektronn.train.loggers.RunLogger`; its values and
their names come from :func:`~elektronn.train.loggers.history_values`, so TensorBoard shows
the same numbers as the printed status line, the ``.npy`` logs in ``Backup/`` and MLflow.
The ``loggers`` option without ``"tensorboard"`` switches it off.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import numpy as np

from .loggers import Outcome, finite, history_values

LOG_FOLDER = "tensorboard"
"""Sub-folder of the save directory that holds the event files."""

_PREVIEW_NAME = re.compile(r"-pred-(?P<cube>\d+)-c(?P<cls>\d+)-z(?P<z>\d+)-")


def available() -> bool:
    """Whether TensorBoard logging can be used (``tensorboard`` and torch's writer import)."""
    try:
        import tensorboard  # noqa: F401
        from torch.utils.tensorboard import SummaryWriter  # noqa: F401
    except ImportError:  # also ModuleNotFoundError, and torch's own check of the version
        return False
    return True


def build_logger(save_dir: str | Path, enabled: bool = True) -> TensorBoardLogger | None:
    """A logger writing to ``<save_dir>/tensorboard/``, or None if disabled or not installed.

    Nothing is created on disk until the first value is logged.
    """
    if not enabled or not available():
        return None
    return TensorBoardLogger(Path(save_dir) / LOG_FOLDER)


class TensorBoardLogger:
    """Writes the history step values and preview images of one run as TensorBoard events.

    The writer is opened lazily at the first call, after the background batch workers were
    forked, so they never inherit its flushing thread; its ``purge_step`` is that first
    step, which discards stale events of a run that is being resumed.

    Parameters
    ----------
    log_dir
        Folder of the event files (created on the first call).
    """

    name = "TensorBoard"

    def __init__(self, log_dir: str | Path) -> None:
        self.log_dir = Path(log_dir)
        self._writer: Any = None

    def _open(self, step: int) -> Any:
        if self._writer is None:
            from torch.utils.tensorboard import SummaryWriter

            self._writer = SummaryWriter(str(self.log_dir), purge_step=step)
        return self._writer

    def log_history(self, history: Any, step: int, its_per_s: float | None = None) -> None:
        """Add the newest row of the ``history`` and ``errors`` logs at ``step``.

        Parameters
        ----------
        history
            The trainer's :class:`~elektronn.train.history.History` (its ``rows``).
        step
            The update step of the history step (the status line's first number).
        its_per_s
            Training speed in update steps per second, logged as ``speed/steps_per_s``.
        """
        self.log_values(history_values(history, its_per_s), step)

    def log_values(self, values: dict[str, float | None], step: int) -> None:
        """Add scalar values at ``step``; None and NaN (e.g. no validation data) are skipped."""
        values = finite(values)
        if not values:
            return
        writer = self._open(step)
        for tag, value in values.items():
            writer.add_scalar(tag, value, step)
        writer.flush()

    def log_images(self, paths: Iterable[str | Path], step: int) -> None:
        """Add PNG files (e.g. the preview predictions) as images at ``step``.

        Preview files ``<save_name>-pred-<cube>-c<class>-z<z>-<hours>hrs.png`` get the tag
        ``preview/cube<cube>/class<class>/z<z>``, so TensorBoard's step slider shows how one
        slice's prediction develops; any other file is tagged ``images/<file name>``.
        """
        paths = [Path(p) for p in paths]
        if not paths:
            return
        writer = self._open(step)
        for path in paths:
            writer.add_image(image_tag(path), read_png(path), step, dataformats="HWC")
        writer.flush()

    def close(self, outcome: Outcome = "FINISHED") -> None:
        """Write everything and close the event file (the end of training, however it ended)."""
        if self._writer is not None:
            self._writer.close()
            self._writer = None


def image_tag(path: Path) -> str:
    """``preview/cube0/class1/z14`` for a preview file, ``images/<name>`` otherwise."""
    match = _PREVIEW_NAME.search(path.name)
    if match is None:
        return f"images/{path.stem}"
    return "preview/cube{cube}/class{cls}/z{z}".format(**match.groupdict())


def read_png(path: Path) -> np.ndarray:
    """A PNG as ``(height, width, 3)`` float32 in [0, 1] (alpha dropped, grey expanded)."""
    from matplotlib import image

    array = np.asarray(image.imread(str(path)), dtype=np.float32)
    if array.ndim == 2:
        array = array[:, :, None]
    array = array[:, :, :3]
    if array.shape[2] != 3:  # grey, or grey + alpha
        array = np.repeat(array[:, :, :1], 3, axis=2)
    return np.ascontiguousarray(array)
