"""Label sanity before training: class shares, missing classes, the majority-class baseline.

Labels without class 1 trained to "train=00.00 %, valid=00.00 %", which reads as perfect:
always answering the one class present is right everywhere. So the shares of the training
labels are printed at start, classes 0..n_lab-1 that never occur are named (an error when
only one occurs), and the error of always answering the majority class -- the baseline a
net must beat -- is printed and drawn into the errors plot (``<save_name>.baseline.json`` in
``Backup/``, read by :mod:`elektronn.train.plots`).
"""

from __future__ import annotations

import json
import warnings
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .errors import DataError
from .source import DataSource


@dataclass(frozen=True)
class LabelCounts:
    """Voxels (or examples) per class 0..n_lab-1 of the training labels; negative ones apart."""

    counts: np.ndarray
    ignored: int

    @property
    def labelled(self) -> int:
        return int(self.counts.sum())

    @property
    def majority(self) -> int:
        return int(np.argmax(self.counts))

    @property
    def baseline_error(self) -> float:
        """Error in % of always answering the majority class."""
        return 100.0 * (1.0 - self.counts[self.majority] / self.labelled)


def count_labels(slabs: Iterable[np.ndarray], n_lab: int) -> LabelCounts:
    """Counts over label arrays; classes >= n_lab are refused earlier (``check_n_lab``)."""
    counts, ignored = np.zeros(n_lab, np.int64), 0
    for slab in slabs:
        values = np.asarray(slab).ravel()
        known = values[values >= 0].astype(np.int64)
        ignored += values.size - known.size
        counts += np.bincount(known, minlength=n_lab)[:n_lab]
    return LabelCounts(counts, ignored)


def check_training_labels(data: DataSource, n_lab: int, target: str) -> LabelCounts | None:
    """Print the class shares and the baseline; warn of missing classes, refuse a single one.

    Returns None where there are no classes (regression; affinity, whose labels are object
    IDs) or the data class hides its labels (``DataSource.training_labels`` returns None).
    """
    if target != "nll":
        return None
    slabs = data.training_labels()
    if slabs is None:
        return None
    stats = count_labels(slabs, n_lab)
    present = np.flatnonzero(stats.counts)
    if len(present) < 2:
        which = f"only class {present[0]}" if len(present) else "no class label at all"
        raise DataError(
            f"The training labels contain {which} "
            f"(n_lab={n_lab}; {stats.ignored} negative labels are ignored): a net that always "
            f"answers it has 0 % error and learns nothing. Check the label files (l_files) and "
            f"valid_cubes, or the data class's train_l."
        )
    print(share_line(stats))
    missing = sorted(set(range(n_lab)) - set(present.tolist()))
    if missing:
        warnings.warn(
            f"class(es) {', '.join(map(str, missing))} of n_lab={n_lab} never occur in the "
            f"training labels, so the net cannot learn them; check n_lab and the label files.",
            stacklevel=2,
        )
    print(
        f"Majority-class error: {stats.baseline_error:.2f} % (always answering class "
        f"{stats.majority}); train and valid errors that stay near it mean the net learns "
        f"nothing."
    )
    return stats


def share_line(stats: LabelCounts) -> str:
    """``Training labels: class 0 78.0 %, class 1 22.0 % (N labels; M negative ones ...)``."""
    shares = ", ".join(
        f"class {c} {100 * n / stats.labelled:.1f} %" for c, n in enumerate(stats.counts)
    )
    ignored = f"; {stats.ignored:,} negative ones ignored, not counted" if stats.ignored else ""
    return f"Training labels: {shares} ({stats.labelled:,} labels{ignored})."


def baseline_path(backup_dir: Path, save_name: str) -> Path:
    return Path(backup_dir) / f"{save_name}.baseline.json"


def write_baseline(backup_dir: Path, save_name: str, stats: LabelCounts) -> None:
    """Keep the baseline beside the logs, so plots (in their own process) can draw it."""
    record = {
        "majority_class": stats.majority,
        "error": stats.baseline_error,
        "counts": stats.counts.tolist(),
        "ignored": stats.ignored,
    }
    baseline_path(backup_dir, save_name).write_text(json.dumps(record))


def read_baseline(backup_dir: Path, save_name: str) -> dict | None:
    """The record of :func:`write_baseline`, or None (regression, older runs)."""
    path = baseline_path(backup_dir, save_name)
    return json.loads(path.read_text()) if path.is_file() else None
