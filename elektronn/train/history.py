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
    "step",
    "time_s",
    "loss_smoothed",
    "loss",
    "train_loss",
    "valid_loss",
    "loss_diff",
    "lr",
)
ERRORS_COLUMNS = ("step", "time_s", "train_error", "valid_error")
CG_COLUMNS = ("loss", "step_size", "coefficient", "evaluations")

KINDS = {
    "timeline": TIMELINE_COLUMNS,
    "history": HISTORY_COLUMNS,
    "errors": ERRORS_COLUMNS,
    "CGtimeline": CG_COLUMNS,
}


def flush_to_disk(f) -> None:
    """Push what was written to ``f`` through the OS caches onto the disk."""
    f.flush()
    os.fsync(f.fileno())


def atomic_save_npy(path: Path, array: np.ndarray) -> None:
    """Write ``array`` to ``path`` via a temporary file, so a crash never leaves half a file."""
    tmp = path.with_name(path.name + ".tmp")
    with open(tmp, "wb") as f:
        np.save(f, array)
        flush_to_disk(f)
    os.replace(tmp, path)


def append_rows_npy(path: Path, rows: np.ndarray) -> None:
    """Append ``rows`` to the 2-D ``.npy`` file ``path`` (of the same dtype) in place.

    The rows are written (and synced) first, the row count in the header last: a process
    killed in between leaves a file that still reads as before (``np.load`` reads only the
    rows the header counts). ``np.save`` leaves room in the header for the row count to grow.
    """
    npy = np.lib.format
    with open(path, "r+b") as f:
        version_1 = npy.read_magic(f) == (1, 0)
        header_start = f.tell() + (2 if version_1 else 4)  # after the header-length field
        read_header = npy.read_array_header_1_0 if version_1 else npy.read_array_header_2_0
        shape, fortran, dtype = read_header(f)
        data_start = f.tell()
        if fortran or dtype != rows.dtype or len(shape) != 2 or shape[1] != rows.shape[1]:
            raise OSError(
                f"{path} is not this run's log (it holds {dtype} {shape}, expected rows of "
                f"{rows.shape[1]} {rows.dtype}); move it away and resume"
            )
        f.seek(data_start + shape[0] * rows.shape[1] * rows.itemsize)
        f.write(np.ascontiguousarray(rows).tobytes())
        f.truncate()
        flush_to_disk(f)
        n_rows = shape[0] + len(rows)
        header = str(
            {
                "descr": npy.dtype_to_descr(dtype),
                "fortran_order": False,
                "shape": (n_rows, shape[1]),
            }
        )
        size = data_start - header_start
        if len(header) >= size:
            raise OSError(f"{path}: no room in the .npy header for {n_rows} rows")
        f.seek(header_start)
        f.write((header.ljust(size - 1) + "\n").encode("latin1"))
        flush_to_disk(f)


class History:
    """Rows of the four logs. New rows wait in memory only until :meth:`save` appends them
    to the files in ``Backup/``, so a run of millions of steps keeps neither the whole
    timeline in memory nor rewrites it with every backup.

    Checkpoints do not carry the logs: a resumed run reads them back from ``Backup/``
    (:meth:`load`), which is written together with every ``-LAST`` backup.
    """

    def __init__(self) -> None:
        self._unsaved: dict[str, list] = {kind: [] for kind in KINDS}
        self._count = dict.fromkeys(KINDS, 0)
        self._last: dict[str, np.ndarray | None] = dict.fromkeys(KINDS)
        self._file_is_ours = dict.fromkeys(KINDS, False)  # appended to, not replaced, on save

    def add(self, kind: str, *values: float) -> None:
        """Append one row; the values follow the columns of ``KINDS[kind]``."""
        assert len(values) == len(KINDS[kind]), f"{kind} takes {KINDS[kind]}"
        self._unsaved[kind].append(values)
        self._count[kind] += 1
        self._last[kind] = np.asarray(values, dtype=np.float64)

    def count(self, kind: str) -> int:
        """Rows so far, saved or not."""
        return self._count[kind]

    def last(self, kind: str) -> np.ndarray | None:
        """The newest row, None before the first."""
        return self._last[kind]

    def save(self, backup_dir: Path, save_name: str) -> None:
        """Write the new rows of every log to ``backup_dir``: a log's first save replaces
        any file of an earlier run, later saves append."""
        for kind, rows in self._unsaved.items():
            if not rows:
                continue
            block = np.vstack(rows).astype(np.float64, copy=False)
            path = backup_dir / f"{save_name}.{kind}.npy"
            if self._file_is_ours[kind]:
                append_rows_npy(path, block)
            else:
                atomic_save_npy(path, block)
                self._file_is_ours[kind] = True
            rows.clear()

    def load(self, backup_dir: Path, save_name: str, before_step: int, cg_rows: int) -> None:
        """Read the logs of a run back, keeping rows of steps before ``before_step`` and the
        first ``cg_rows`` rows of the CG timeline (which has no step column); the next
        :meth:`save` writes them anew, so rows after the checkpoint are dropped on disk too."""
        logs = load_history(backup_dir, save_name)
        for kind, columns in KINDS.items():
            rows = logs.get(kind, np.empty((0, len(columns))))
            kept = rows[:cg_rows] if kind == "CGtimeline" else rows[rows[:, 0] < before_step]
            self._unsaved[kind] = [kept] if len(kept) else []
            self._count[kind] = len(kept)
            self._last[kind] = kept[-1].copy() if len(kept) else None
            self._file_is_ours[kind] = False


def load_history(backup_dir: Path, save_name: str) -> dict[str, np.ndarray]:
    """The logs present in ``backup_dir`` (missing ones are left out)."""
    logs = {}
    for kind in KINDS:
        path = backup_dir / f"{save_name}.{kind}.npy"
        if path.is_file():
            logs[kind] = np.load(path)
    return logs
