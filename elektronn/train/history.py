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
    """Rows of the four logs, appended during training and saved as ``.npy`` files."""

    def __init__(self) -> None:
        self.rows: dict[str, list[list[float]]] = {kind: [] for kind in KINDS}

    def add(self, kind: str, *values: float) -> None:
        """Append one row; the values follow the columns of ``KINDS[kind]``."""
        assert len(values) == len(KINDS[kind]), f"{kind} takes {KINDS[kind]}"
        self.rows[kind].append([float(v) for v in values])

    def array(self, kind: str) -> np.ndarray:
        return np.array(self.rows[kind], dtype=np.float64).reshape(-1, len(KINDS[kind]))

    def save(self, backup_dir: Path, save_name: str) -> None:
        """Write every non-empty log to ``backup_dir``."""
        for kind, rows in self.rows.items():
            if rows:
                atomic_save_npy(backup_dir / f"{save_name}.{kind}.npy", self.array(kind))

    def state_dict(self) -> dict[str, list[list[float]]]:
        return {kind: [list(r) for r in rows] for kind, rows in self.rows.items()}

    def load_state_dict(self, state: dict[str, list[list[float]]]) -> None:
        self.rows = {kind: [list(r) for r in state.get(kind, [])] for kind in KINDS}


def load_history(backup_dir: Path, save_name: str) -> dict[str, np.ndarray]:
    """The logs present in ``backup_dir`` (missing ones are left out)."""
    logs = {}
    for kind in KINDS:
        path = backup_dir / f"{save_name}.{kind}.npy"
        if path.is_file():
            logs[kind] = np.load(path)
    return logs
