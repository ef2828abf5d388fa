"""``elektronn-evaluate``: score a prediction against labels, or a trained net over a data split.

``elektronn-evaluate PREDICTION LABELS`` reads both arrays (h5 ``FILE.h5[:KEY]``, zarr or
OME-Zarr) in user order: the prediction ``(n_lab, x, y[, z])`` as ``elektronn-predict`` writes
it, the labels ``(x, y[, z])``. The prediction's ``offset`` attribute (or ``--offset``) says
which label voxel its first voxel belongs to; the labels are cropped to the prediction.

``elektronn-evaluate SAVE_DIR --split test`` runs the trained img-scalar / vect-scalar net
over every example of a split of its data class (e.g. the 10,000 MNIST test images).
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import time
from pathlib import Path
from typing import Any

import h5py
import numpy as np

from ..commands import command_parser
from ..data.errors import DataError
from ..net.paramfile import ParamFileError
from ..predict.errors import PredictionError
from ..predict.settings import find_param_file
from ..predict.volume import only_dataset, split_spec
from . import metrics


class EvaluationError(Exception):
    """Bad input to ``elektronn-evaluate`` (one readable paragraph)."""


def parser() -> argparse.ArgumentParser:
    p = command_parser(
        prog="elektronn-evaluate",
        description="Score a dense prediction against labels (user order x, y, z), each "
        "number beside its trivial baseline; or, with --split, a trained net over a whole "
        "split of its data class.",
    )
    p.add_argument("prediction", help="PREDICTION.h5[:KEY] (or .zarr), or SAVE_DIR with --split")
    p.add_argument("labels", nargs="?", help="LABELS.h5[:KEY] (or .zarr)")
    p.add_argument("--split", choices=("train", "valid", "test"), help="evaluate SAVE_DIR's net")
    p.add_argument("--offset", help="X,Y[,Z]: label voxel of the prediction's first voxel")
    p.add_argument("--threshold", type=float, default=0.5, help="on class 1 / boundary (0.5)")
    p.add_argument(
        "--gt",
        choices=("classes", "boundary", "ids"),
        default="classes",
        help="labels are classes, a boundary map (1 = boundary; adds segmentation scores) or "
        "segment IDs (segmentation scores only); float labels mean regression",
    )
    p.add_argument(
        "--segmentation",
        choices=("components", "watershed"),
        default="components",
        help="segments: components of the thresholded interior, or a watershed seeded by them",
    )
    p.add_argument("--boundary-class", type=int, default=1, help="class of the boundaries")
    p.add_argument("--per-slice", action="store_true", help="segment each z slice on its own")
    p.add_argument("--json", help="also write the scores to this JSON file")
    return p


def open_array(spec: str, role: str) -> tuple[Any, dict[str, Any]]:
    """The array of an h5 / zarr / OME-Zarr spec and its attributes (kept open by h5py)."""
    path, key = split_spec(spec, None)
    if not path.exists():
        raise EvaluationError(f"The {role} '{path}' does not exist.")
    if path.is_dir() or path.suffix == ".zarr":
        return open_zarr(path, key, role)
    try:
        f = h5py.File(path, "r")
    except OSError as exc:
        raise EvaluationError(f"The {role} file '{path}' cannot be read as HDF5: {exc}.") from None
    key = key or only_dataset(f)
    if key is None or not isinstance(f.get(key), h5py.Dataset):
        keys = ", ".join(map(repr, f.keys())) or "none"
        raise EvaluationError(
            f"The {role} file '{path}' has no dataset {key!r} (keys: {keys}); give FILE.h5:KEY."
        )
    return f[key], dict(f[key].attrs)


def open_zarr(path: Path, key: str | None, role: str) -> tuple[Any, dict[str, Any]]:
    """A zarr array, or level 0 of an OME-Zarr image (its translation becomes the offset)."""
    import zarr

    node = zarr.open(str(path), mode="r")
    attrs = dict(node.attrs)
    multiscales = attrs.get("multiscales") or attrs.get("ome", {}).get("multiscales")
    if multiscales and key is None:
        level = multiscales[0]["datasets"][0]
        array = node[level["path"]]
        transforms = {t["type"]: t for t in level.get("coordinateTransformations", [])}
        if "translation" in transforms:
            scale = transforms.get("scale", {}).get("scale", [1] * array.ndim)
            shift = [t / s for t, s in zip(transforms["translation"]["translation"], scale)]
            attrs["offset"] = [round(v) for v in shift[1:]]  # the channel axis first
        return array, attrs
    try:
        array = node[key] if key else node
    except KeyError:
        raise EvaluationError(f"The {role} zarr store '{path}' has no array '{key}'.") from None
    return array, {**attrs, **dict(array.attrs)}


def prediction_offset(attrs: dict[str, Any], option: str | None, n_spatial: int) -> tuple:
    """The offset of ``--offset``, else the prediction's recorded one."""
    if option is not None:
        try:
            offset = tuple(int(v) for v in option.split(","))
        except ValueError:
            offset = ()
        if len(offset) != n_spatial:
            raise EvaluationError(
                f"--offset {option!r} must be {n_spatial} integers X,Y{',Z' * (n_spatial > 2)}."
            )
        return offset
    if "offset" not in attrs:
        raise EvaluationError(
            "The prediction has no 'offset' attribute (elektronn-predict records it), so it is "
            "unknown which label voxels it covers; give --offset X,Y[,Z] (0,0,0 if the "
            "prediction covers the labels from their first voxel)."
        )
    return tuple(int(v) for v in attrs["offset"])


def cropped_labels(labels: Any, pred_shape: tuple, offset: tuple) -> np.ndarray:
    """The labels under the prediction, or an error naming both shapes and the offset."""
    spatial = pred_shape[1:]
    fits = len(labels.shape) == len(spatial) and all(
        o >= 0 and o + n <= m for o, n, m in zip(offset, spatial, labels.shape)
    )
    if not fits:
        raise EvaluationError(
            f"Labels of shape {tuple(labels.shape)} and a prediction of shape "
            f"{tuple(pred_shape)} (n_lab, x, y[, z]) at offset {offset} do not fit: the "
            f"prediction must lie inside the labels. Check the files, their axis order "
            f"(user order x, y, z) and --offset."
        )
    return np.asarray(labels[tuple(slice(o, o + n) for o, n in zip(offset, spatial))])


def read_prediction(data: Any, attrs: dict[str, Any]) -> np.ndarray:
    """The prediction as float32 probabilities (``--dtype uint8`` outputs are rescaled)."""
    scale = float(attrs.get("uint8_scale", 1))
    return np.asarray(data, dtype=np.float32) / np.float32(scale)


def score(args: argparse.Namespace, prob: np.ndarray, labels: np.ndarray) -> dict[str, Any]:
    """The scores that fit the labels (see ``--gt``)."""
    if np.issubdtype(labels.dtype, np.floating):
        if prob.shape[0] != 1:
            raise EvaluationError(
                f"Float labels mean regression, but the prediction has {prob.shape[0]} channels "
                f"(one output expected); give integer class labels for classification."
            )
        return {"regression": metrics.regression(prob[0], labels)}
    result: dict[str, Any] = {}
    if args.gt != "ids":
        result["classification"] = metrics.classification(prob, labels, args.threshold)
    if args.gt != "classes":
        result["segmentation"] = segmentation_scores(args, prob[args.boundary_class], labels)
    return result


def segmentation_scores(args: argparse.Namespace, boundary: np.ndarray, labels: np.ndarray):
    """Segmentation scores of the whole volume, or the mean over z slices (``--per-slice``)."""
    truth = metrics.truth_segments(labels, args.gt)
    if not args.per_slice or boundary.ndim < 3:
        return metrics.segmentation(boundary, truth, args.threshold, args.segmentation)
    slices = [
        metrics.segmentation(
            boundary[..., z],
            metrics.truth_segments(labels[..., z], args.gt),
            args.threshold,
            args.segmentation,
        )  # fmt: skip
        for z in range(boundary.shape[-1])
    ]
    return mean_of(slices)


def mean_of(results: list[dict[str, Any]]) -> dict[str, Any]:
    """Numbers averaged over results of the same layout (other entries from the first)."""
    first = results[0]
    mean: dict[str, Any] = {}
    for key, value in first.items():
        if isinstance(value, dict):
            mean[key] = mean_of([r[key] for r in results])
        elif isinstance(value, (int, float)) and not isinstance(value, bool):
            mean[key] = float(np.mean([r[key] for r in results]))
        else:
            mean[key] = value
    return mean


def table(scores: dict[str, Any]) -> list[str]:
    """Printable rows: metric, value, baseline."""
    rows = [f"{'metric':<34} {'model':>10} {'baseline':>10}"]
    for group, values in scores.items():
        base = values.get("baseline", {})
        rows.append(f"{group} ({base.get('name', '')}; {values.get('n_voxels', '')} voxels)")
        for key, value in values.items():
            if isinstance(value, float):
                rows.append(f"  {key:<32} {value:>10.5f} {_number(base.get(key)):>10}")
        for c, per_class in values.get("classes", {}).items():
            for key, value in per_class.items():
                other = base.get("classes", {}).get(c, {}).get(key)
                rows.append(f"  class {c} {key:<24} {_number(value):>10} {_number(other):>10}")
    return rows


def _number(value: Any) -> str:
    if value is None:
        return ""
    return "nan" if math.isnan(value) else f"{value:.5f}"


def evaluate_files(args: argparse.Namespace) -> dict[str, Any]:
    """Scores of PREDICTION against LABELS."""
    if not args.labels:
        raise EvaluationError("Give PREDICTION and LABELS (or SAVE_DIR --split test).")
    pred, attrs = open_array(args.prediction, "prediction")
    labels, _ = open_array(args.labels, "labels")
    if len(pred.shape) not in (3, 4):
        raise EvaluationError(
            f"The prediction has shape {tuple(pred.shape)}; expected (n_lab, x, y[, z])."
        )
    offset = prediction_offset(attrs, args.offset, len(pred.shape) - 1)
    truth = cropped_labels(labels, tuple(pred.shape), offset)
    return score(args, read_prediction(pred, attrs), truth)


def main(argv: list[str] | None = None) -> int:
    """``elektronn-evaluate``; returns the exit code (2 for bad input, with one paragraph)."""
    args = parser().parse_args(argv)
    start = time.perf_counter()
    try:
        if args.split:
            from .split import evaluate_split

            scores = evaluate_split(find_param_file(args.prediction), args.split)
        else:
            scores = evaluate_files(args)
    except (EvaluationError, PredictionError, ParamFileError, DataError) as exc:
        print(f"elektronn-evaluate: error: {exc}", file=sys.stderr)
        return 2
    for row in table(scores):
        print(row)
    print(f"Evaluated in {time.perf_counter() - start:.1f} s.")
    if args.json:
        Path(args.json).write_text(json.dumps(scores, indent=2, default=float) + "\n")
        print(f"Wrote {args.json}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
