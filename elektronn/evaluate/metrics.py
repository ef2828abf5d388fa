"""Scores of a dense prediction against labels, each beside its trivial baseline.

Arrays are cropped to the same region before they arrive here; negative labels mean
"unlabelled" and are left out of every pixel score. The segmentation scores (adapted Rand
error, variation of information) come from scikit-image, not re-implemented.
"""

from __future__ import annotations

from typing import Any

import numpy as np

#: Bins of the probability histogram from which the error at every threshold is read.
N_BINS = 1000


def class_scores(predicted: np.ndarray, labels: np.ndarray, n_lab: int) -> dict[str, Any]:
    """Pixel error and per-class precision / recall / F1 (Dice) / IoU of a class map."""
    counts = np.bincount(labels * n_lab + predicted, minlength=n_lab * n_lab)
    confusion = counts.reshape(n_lab, n_lab).astype(np.float64)  # [true, predicted]
    hits = np.diag(confusion)
    n_true, n_pred = confusion.sum(axis=1), confusion.sum(axis=0)
    with np.errstate(invalid="ignore", divide="ignore"):
        precision, recall = hits / n_pred, hits / n_true
        f1 = 2 * hits / (n_true + n_pred)
        iou = hits / (n_true + n_pred - hits)
    per_class = {
        str(c): {"precision": precision[c], "recall": recall[c], "f1": f1[c], "iou": iou[c]}
        for c in range(n_lab)
    }
    return {"pixel_error": 1.0 - hits.sum() / max(confusion.sum(), 1.0), "classes": per_class}


def best_threshold(prob: np.ndarray, labels: np.ndarray) -> tuple[float, float]:
    """The threshold on class 1's probability with the lowest pixel error (two classes).

    Read from histograms of the probabilities of both classes, so every threshold costs the
    same one pass over the data.
    """
    bins = np.minimum((prob * N_BINS).astype(np.int64), N_BINS - 1)
    positive = np.bincount(bins[labels == 1], minlength=N_BINS)
    negative = np.bincount(bins[labels == 0], minlength=N_BINS)
    # threshold t = k / N_BINS: predicted 1 where bin >= k
    missed = np.concatenate([[0], np.cumsum(positive)])[:-1]
    false_alarms = negative.sum() - np.concatenate([[0], np.cumsum(negative)])[:-1]
    errors = (missed + false_alarms) / max(labels.size, 1)
    k = int(np.argmin(errors))
    return k / N_BINS, float(errors[k])


def classification(prob: np.ndarray, labels: np.ndarray, threshold: float) -> dict[str, Any]:
    """Scores of class probabilities ``(n_lab, ...)`` against integer labels ``(...)``.

    Two classes: class 1 where its probability is at least ``threshold``; more: arg-max.
    The baseline predicts the majority class everywhere.
    """
    n_lab = prob.shape[0]
    keep = (labels >= 0) & (labels < n_lab)
    truth = labels[keep].astype(np.int64)
    if n_lab == 2:
        p1 = prob[1][keep]
        predicted = (p1 >= threshold).astype(np.int64)
    else:
        predicted = prob.argmax(axis=0)[keep].astype(np.int64)
    scores = class_scores(predicted, truth, n_lab)
    scores["threshold"] = threshold if n_lab == 2 else None
    if n_lab == 2:
        scores["best_threshold"], scores["best_pixel_error"] = best_threshold(p1, truth)
    majority = int(np.bincount(truth, minlength=n_lab).argmax())
    scores["baseline"] = class_scores(np.full_like(truth, majority), truth, n_lab)
    scores["baseline"]["name"] = f"majority class {majority} everywhere"
    scores["n_voxels"] = int(truth.size)
    return scores


def regression(pred: np.ndarray, target: np.ndarray) -> dict[str, Any]:
    """MSE and MAE, beside the baseline that predicts the labels' mean everywhere."""
    diff = pred.astype(np.float64) - target
    centred = target - target.mean()
    return {
        "mse": float(np.mean(diff**2)),
        "mae": float(np.mean(np.abs(diff))),
        "baseline": {
            "name": "the labels' mean everywhere",
            "mse": float(np.mean(centred**2)),
            "mae": float(np.mean(np.abs(centred))),
        },
        "n_voxels": int(target.size),
    }


def segment(boundary: np.ndarray, threshold: float, method: str) -> np.ndarray:
    """Segments of a boundary probability map: connected components of the interior
    (``p < threshold``), optionally grown over the boundaries by a seeded watershed."""
    from scipy import ndimage

    seeds, _ = ndimage.label(boundary < threshold)
    if method == "components":
        return seeds
    from skimage.segmentation import watershed

    return watershed(boundary, markers=seeds)


def segmentation(
    boundary: np.ndarray, truth: np.ndarray, threshold: float, method: str
) -> dict[str, Any]:
    """Adapted Rand error and variation of information (split, merge) of the segments.

    ``truth`` is a segmentation (0 = boundary/background, ignored); the baseline is one
    segment covering everything (what predicting the majority class, interior, gives).
    """
    from skimage.metrics import adapted_rand_error, variation_of_information

    def scores(seg: np.ndarray) -> dict[str, float]:
        are, precision, recall = adapted_rand_error(truth, seg, ignore_labels=(0,))
        split, merge = variation_of_information(truth, seg, ignore_labels=(0,))
        return {
            "adapted_rand_error": float(are),
            "rand_precision": float(precision),
            "rand_recall": float(recall),
            "voi_split": float(split),
            "voi_merge": float(merge),
        }

    seg = segment(boundary, threshold, method)
    result = scores(seg)
    result.update(
        method=method, n_segments=int(len(np.unique(seg[seg > 0]))), n_voxels=int(seg.size)
    )
    result["baseline"] = {"name": "one segment everywhere", **scores(np.ones_like(seg))}
    return result


def truth_segments(labels: np.ndarray, kind: str) -> np.ndarray:
    """Ground-truth segments: IDs as they are, or the components of a boundary map's 0s."""
    if kind == "ids":
        return labels.astype(np.int64)
    from scipy import ndimage

    return ndimage.label(labels == 0)[0]
