"""Segmentation scores from a contingency table accumulated block by block.

The table counts the voxels of each (truth ID, segment ID) pair; it grows with the number of
pairs, not with the voxels, so two volumes of any size on disk are scored a block at a time
(:func:`score_arrays`). The scores equal scikit-image's ``adapted_rand_error`` and
``variation_of_information`` with ``ignore_labels=(0,)`` (truth 0 is unlabelled: its voxels
are left out); the tests compare them to 1e-9. The variation of information is in bits by
default, as scikit-image computes it (``log2``), or in nats (``unit="nats"``).
"""

from __future__ import annotations

import itertools
from collections.abc import Iterator, Sequence
from typing import Any

import numpy as np

from ..errors import UserError


class IDError(UserError):
    """An array where segment IDs are expected holds floats or negative values."""


def check_ids(values: np.ndarray, role: str) -> None:
    """IDs are integers >= 0 (0 = unlabelled / background)."""
    if values.dtype.kind not in "ui":
        raise IDError(
            f"The {role} has dtype {values.dtype}, but segment IDs are integers (0 = "
            f"unlabelled); a probability map is segmented first (elektronn-segment)."
        )
    if values.dtype.kind == "i" and values.size and values.min() < 0:
        raise IDError(
            f"The {role} holds negative IDs (down to {values.min()}); segment IDs are "
            f"integers >= 0 (0 = unlabelled)."
        )


class ContingencyTable:
    """Voxel counts of (truth, segment) ID pairs, truth 0 left out; :meth:`add` a block at a
    time, then :meth:`scores`."""

    def __init__(self) -> None:
        self.truth = np.zeros(0, np.uint64)
        self.segment = np.zeros(0, np.uint64)
        self.count = np.zeros(0, np.int64)
        self.segment_sizes: dict[int, int] = {}

    def add(self, truth: np.ndarray, segments: np.ndarray) -> None:
        """Count the voxel pairs of one block (two arrays of one shape)."""
        if truth.shape != segments.shape:
            raise IDError(
                f"Truth and segmentation blocks differ in shape: {truth.shape} and "
                f"{segments.shape}."
            )
        check_ids(truth, "ground truth")
        check_ids(segments, "segmentation")
        segment_ids, segment_index = np.unique(segments.ravel(), return_inverse=True)
        for i, c in zip(segment_ids.tolist(), np.bincount(segment_index).tolist(), strict=True):
            self.segment_sizes[i] = self.segment_sizes.get(i, 0) + c
        kept = truth.ravel() != 0
        truth_ids, truth_index = np.unique(truth.ravel()[kept], return_inverse=True)
        key = truth_index.astype(np.int64) * len(segment_ids) + segment_index[kept]
        pair_keys, counts = pair_counts(key, len(truth_ids) * len(segment_ids))
        pairs = np.stack(
            [
                truth_ids[pair_keys // len(segment_ids)].astype(np.uint64),
                segment_ids[pair_keys % len(segment_ids)].astype(np.uint64),
            ],
            1,
        )
        merged = np.concatenate([np.stack([self.truth, self.segment], 1), pairs])
        weights = np.concatenate([self.count, counts])
        unique, inverse = np.unique(merged, axis=0, return_inverse=True)
        self.count = np.bincount(inverse.ravel(), weights, len(unique)).astype(np.int64)
        self.truth, self.segment = unique[:, 0], unique[:, 1]

    @property
    def voxels(self) -> int:
        return int(self.count.sum())

    def scores(self, unit: str = "bits") -> dict[str, Any]:
        """Adapted Rand error (with its precision and recall) and the variation of
        information, split (``H(segment | truth)``) and merge (``H(truth | segment)``), in
        ``unit``: ``"bits"`` (log2, as scikit-image) or ``"nats"`` (natural log)."""
        log = {"bits": np.log2, "nats": np.log}[unit]
        n = self.count.astype(np.float64)
        total = n.sum()
        if total == 0:
            raise IDError("The ground truth is 0 (unlabelled) everywhere; nothing to score.")
        rows = np.bincount(np.unique(self.truth, return_inverse=True)[1].ravel(), n)
        cols = np.bincount(np.unique(self.segment, return_inverse=True)[1].ravel(), n)
        pairs = n @ n - total
        sum_rows, sum_cols = rows @ rows - total, cols @ cols - total
        p = n / total
        p_truth = (rows / total)[np.unique(self.truth, return_inverse=True)[1].ravel()]
        p_segment = (cols / total)[np.unique(self.segment, return_inverse=True)[1].ravel()]
        return {
            "adapted_rand_error": float(1.0 - pairs / (0.5 * sum_rows + 0.5 * sum_cols)),
            "rand_precision": float(pairs / sum_rows),
            "rand_recall": float(pairs / sum_cols),
            "voi_split": float(-(p * log(p / p_truth)).sum()),
            "voi_merge": float(-(p * log(p / p_segment)).sum()),
            "voi_unit": unit,
        }

    def one_segment(self) -> ContingencyTable:
        """The table of the baseline that puts every voxel into one segment."""
        table = ContingencyTable()
        table.truth, inverse = np.unique(self.truth, return_inverse=True)
        table.count = np.bincount(inverse.ravel(), self.count).astype(np.int64)
        table.segment = np.ones(len(table.truth), np.uint64)
        table.segment_sizes = {1: sum(self.segment_sizes.values())}
        return table

    def objects(self, iou: float = 0.5) -> dict[str, Any]:
        """Object precision, recall and F1: a truth object is found, and a segment is right,
        where the two overlap with an intersection over union of at least ``iou``; truth 0
        and segment 0 are background."""
        truth_ids, inverse = np.unique(self.truth, return_inverse=True)
        truth_sizes = np.bincount(inverse.ravel(), self.count)[inverse.ravel()]
        segment_sizes = np.array([self.segment_sizes.get(int(i), 0) for i in self.segment])
        union = truth_sizes + segment_sizes - self.count
        matched = (self.segment != 0) & (self.count >= iou * union)
        n_truth = len(truth_ids)
        n_segments = sum(1 for i, n in self.segment_sizes.items() if i != 0 and n)
        right = len(np.unique(self.segment[matched]))
        precision = right / n_segments if n_segments else 0.0
        recall = len(np.unique(self.truth[matched])) / n_truth if n_truth else 0.0
        f1 = 2 * precision * recall / (precision + recall) if right else 0.0
        return {
            "object_precision": precision,
            "object_recall": recall,
            "object_f1": f1,
            "object_iou": iou,
            "n_objects": n_truth,
            "n_segments": n_segments,
        }


def pair_counts(key: np.ndarray, n_keys: int) -> tuple[np.ndarray, np.ndarray]:
    """The keys present and their counts: a histogram when the keys are few (no sort)."""
    if n_keys <= 4 * key.size:
        counts = np.bincount(key, minlength=n_keys)
        present = np.flatnonzero(counts)
        return present, counts[present]
    return np.unique(key, return_counts=True)


def boxes(shape: Sequence[int], block: Sequence[int]) -> Iterator[tuple[slice, ...]]:
    """The blocks of an array of ``shape``, clipped at its end."""
    ranges = [range(0, n, b) for n, b in zip(shape, block, strict=True)]
    for starts in itertools.product(*ranges):
        yield tuple(slice(s, min(s + b, n)) for s, b, n in zip(starts, block, shape))


def score_arrays(
    truth: Any, segments: Any, block: Sequence[int], unit: str = "bits"
) -> dict[str, Any]:
    """Scores of two arrays of one shape (numpy, h5py, zarr: anything sliced like numpy),
    read ``block`` voxels at a time: memory holds two blocks and the table of pairs."""
    table = table_of(truth, segments, block)
    return {**table.scores(unit), "n_voxels": table.voxels}


def table_of(truth: Any, segments: Any, block: Sequence[int]) -> ContingencyTable:
    """The contingency table of two arrays of one shape, read ``block`` voxels at a time."""
    if tuple(truth.shape) != tuple(segments.shape):
        raise IDError(
            f"Ground truth of shape {tuple(truth.shape)} and a segmentation of shape "
            f"{tuple(segments.shape)} cannot be compared voxel by voxel; crop them to one "
            f"region (same shape and offset)."
        )
    table = ContingencyTable()
    for box in boxes(truth.shape, block):
        table.add(np.asarray(truth[box]), np.asarray(segments[box]))
    return table
