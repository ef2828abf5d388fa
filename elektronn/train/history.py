"""Training history: the per-step timeline, per-history-step values and errors.

The arrays are written to ``Backup/`` as ``<save_name>.timeline.npy``, ``.history.npy``,
``.errors.npy`` (and ``.CGtimeline.npy`` when CG was used), with the original's columns, so
plots can be re-made from the files alone (``python -m elektronn.train.plots SAVE_DIR``).
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

TIMELINE_COLUMNS = ("step", "time_s", "loss_smoothed", "loss", "batch_mean_label")
HISTORY_COLUMNS = (
    "step", "time_s", "loss_smoothed", "loss", "train_loss", "valid_loss", "loss_diff", "lr",
)  # fmt: skip
ERRORS_COLUMNS = ("step", "time_s", "train_error", "valid_error")
CG_COLUMNS = ("loss", "step_size", "coefficient", "evaluations")

KINDS = {
    "timeline": TIMELINE_COLUMNS,
    "history": HISTORY_COLUMNS,
    "errors": ERRORS_COLUMNS,
    "CGtimeline": CG_COLUMNS,
}


def atomic_save_npy(path: Path, array: np.ndarray) -> None:
    """Write ``array`` to ``path`` via a temporary file, so a crash never leaves half a file."""
    tmp = path.with_name(path.name + ".tmp")
    with open(tmp, "wb") as f:
        np.save(f, array)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)


class History:
    """Rows of the four logs, kept as growing float arrays (40 bytes per timeline row).

    Checkpoints do not carry the logs: a resumed run reads them back from ``Backup/``
    (:meth:`load`), which is written together with every ``-LAST`` backup.
    """

    def __init__(self) -> None:
        self._arrays = {kind: np.empty((64, len(cols))) for kind, cols in KINDS.items()}
        self._length = dict.fromkeys(KINDS, 0)

    def add(self, kind: str, *values: float) -> None:
        """Append one row; the values follow the columns of ``KINDS[kind]``."""
        assert len(values) == len(KINDS[kind]), f"{kind} takes {KINDS[kind]}"
        n = self._length[kind]
        if n == len(self._arrays[kind]):
            self._arrays[kind] = np.concatenate(
                [self._arrays[kind], np.empty_like(self._arrays[kind])]
            )
        self._arrays[kind][n] = values
        self._length[kind] = n + 1

    def array(self, kind: str) -> np.ndarray:
        """The rows so far (a view: copy it to keep it)."""
        return self._arrays[kind][: self._length[kind]]

    def last(self, kind: str) -> np.ndarray | None:
        """The newest row, None before the first."""
        n = self._length[kind]
        return self._arrays[kind][n - 1] if n else None

    def replace(self, kind: str, rows: np.ndarray) -> None:
        """Set a whole log (as read back from ``Backup/``)."""
        rows = np.asarray(rows, dtype=np.float64).reshape(-1, len(KINDS[kind]))
        self._arrays[kind] = np.concatenate([rows, np.empty((64, rows.shape[1]))])
        self._length[kind] = len(rows)

    def save(self, backup_dir: Path, save_name: str) -> None:
        """Write every non-empty log to ``backup_dir``."""
        for kind, n in self._length.items():
            if n:
                atomic_save_npy(backup_dir / f"{save_name}.{kind}.npy", self.array(kind))

    def load(self, backup_dir: Path, save_name: str, before_step: int, cg_rows: int) -> None:
        """Read the logs of a run back, keeping rows of steps before ``before_step`` and the
        first ``cg_rows`` rows of the CG timeline (which has no step column)."""
        for kind, rows in load_history(backup_dir, save_name).items():
            self.replace(
                kind, rows[:cg_rows] if kind == "CGtimeline" else rows[rows[:, 0] < before_step]
            )


def load_history(backup_dir: Path, save_name: str) -> dict[str, np.ndarray]:
    """The logs present in ``backup_dir`` (missing ones are left out)."""
    logs = {}
    for kind in KINDS:
        path = backup_dir / f"{save_name}.{kind}.npy"
        if path.is_file():
            logs[kind] = np.load(path)
    return logs
