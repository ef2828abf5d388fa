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

from ..axes import CHANNEL, AxesView, image_axes_ok, reorder, spatial_in_user_order, user_axes
from ..commands import command_parser
from ..data.plugins import SOURCES
from ..data.stores import (
    dimension_axes,
    is_ome_group,
    level_transform,
    ome_axes,
    ome_multiscale,
)
from ..errors import UserError
from ..predict.settings import find_param_file
from ..predict.volume import only_dataset, split_spec
from . import contingency, metrics


class EvaluationError(UserError):
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
    p.add_argument("--split", choices=SOURCES, help="evaluate SAVE_DIR's net")
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
    p.add_argument(
        "--segments",
        action="store_true",
        help="PREDICTION is a segmentation (IDs, e.g. elektronn-segment's FILE.h5:KEY or "
        "IMAGE.zarr/labels/NAME): score it against ID labels (--gt ids) block by block: VOI "
        "split/merge in nats, adapted Rand error, object precision/recall/F1 at IoU 0.5",
    )
    p.add_argument("--boundary-class", type=int, default=1, help="class of the boundaries")
    p.add_argument(
        "--per-slice",
        action=argparse.BooleanOptionalAction,
        help="segment each z slice on its own (default for the prediction of a 2D net, whose "
        "thin sections would merge into a few 3D segments); --no-per-slice segments in 3D",
    )
    p.add_argument("--json", help="also write the scores to this JSON file")
    return p


def open_array(spec: str, role: str, channels: bool) -> tuple[AxesView, dict[str, Any]]:
    """The array of an h5 / zarr / OME-Zarr spec in user order, ``(c,) x, y[, z]``, and its
    attributes (an OME-Zarr prediction's offset from its metadata). Stored axis orders are
    read from the store's metadata; arrays without names are in user order."""
    path, key = split_spec(spec, None)
    if not path.exists():
        raise EvaluationError(f"The {role} '{path}' does not exist.")
    if path.is_dir() or path.suffix == ".zarr":
        return open_zarr(path, key, role, channels)
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
    data = f[key]
    names = plain_names(data.ndim, channels, role)
    return AxesView(data, names, names), dict(data.attrs)


def plain_names(ndim: int, channels: bool, role: str) -> str:
    """The user-order names of an array without axis names: ``(c,) x, y[, z]``."""
    n_spatial = ndim - channels
    if n_spatial not in (2, 3):
        layout = "(n_lab, x, y[, z])" if channels else "(x, y[, z])"
        raise EvaluationError(f"The {role} has {ndim} axes; expected {layout} in user order.")
    return CHANNEL * channels + user_axes(n_spatial)


def open_zarr(
    path: Path, key: str | None, role: str, channels: bool
) -> tuple[AxesView, dict[str, Any]]:
    """A zarr array in the order its names say, or level 0 of an OME-Zarr image: an
    elektronn prediction's valid region (its offset from the ``elektronn`` attributes), else
    the image with the offset its translation gives."""
    import zarr

    try:
        node = zarr.open(str(path), mode="r")
        node = node[key] if key else node
    except (KeyError, FileNotFoundError, ValueError):
        raise EvaluationError(f"The {role} zarr store '{path}' has no array '{key}'.") from None
    attrs = dict(node.attrs)
    if is_ome_group(node):
        return ome_level0(node, attrs, f"The {role} '{path}'", channels)
    names = dimension_axes(node) or plain_names(node.ndim, channels, role)
    return AxesView(node, names, CHANNEL * channels + spatial_in_user_order(names)), attrs


def ome_level0(
    group: Any, attrs: dict[str, Any], where: str, channels: bool
) -> tuple[AxesView, dict[str, Any]]:
    """Level 0 of an OME-Zarr image in user order, with its offset in voxels."""
    multiscale = ome_multiscale(group, where, EvaluationError)
    axes = ome_axes(multiscale)
    if not image_axes_ok(axes):
        raise EvaluationError(f"{where} has axes ({', '.join(axes)}); expected c, z, y, x.")
    level = multiscale.datasets[0]
    view = AxesView(group[level.path], axes, CHANNEL * channels + spatial_in_user_order(axes))
    region = attrs.get("elektronn", {})
    if "valid_offset" in region:
        offset, size = region["valid_offset"], region["valid_shape"]
        valid = view.mirrored_window((0, *offset), (view.shape[0], *size))  # inside: no mirror
        return valid, {**attrs, **region, "offset": list(offset)}
    scale, shift = level_transform(level.coordinateTransformations, len(axes))
    voxels = [t / s for t, s in zip(shift, scale, strict=True)]
    offset = [round(v) for v in reorder(voxels, axes, spatial_in_user_order(axes))]
    return view, {**attrs, **region, "offset": offset}


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
    return np.asarray(labels_under(labels, pred_shape, offset)[...])


def labels_under(labels: AxesView, pred_shape: tuple, offset: tuple) -> AxesView:
    """A view of the labels under a prediction ``(n_lab, ...)`` at ``offset`` (nothing read
    yet), or an error naming both shapes and the offset."""
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
    return labels.mirrored_window(offset, spatial)  # inside the labels: nothing mirrored


def read_prediction(data: Any, attrs: dict[str, Any]) -> np.ndarray:
    """The prediction as float32 probabilities (``--dtype uint8`` outputs are rescaled)."""
    scale = float(attrs.get("uint8_scale", 1))
    return np.asarray(data, dtype=np.float32) / np.float32(scale)


def score(
    args: argparse.Namespace, prob: np.ndarray, labels: np.ndarray, per_slice: bool
) -> dict[str, Any]:
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
        boundary = prob[args.boundary_class]
        result["segmentation"] = segmentation_scores(args, boundary, labels, per_slice)
    return result


def slice_wise(args: argparse.Namespace, attrs: dict[str, Any], n_spatial: int) -> bool:
    """``--per-slice``, by default for a 3D volume predicted by a 2D net (its sections are
    thick: 3D components would merge whole cells through them)."""
    if args.per_slice is not None:
        return args.per_slice
    return n_spatial == 3 and int(attrs.get("net_dims", 3)) == 2


def segmentation_scores(
    args: argparse.Namespace, boundary: np.ndarray, labels: np.ndarray, per_slice: bool
) -> dict[str, Any]:
    """Segmentation scores of the whole volume, or the mean over z slices (per slice)."""
    truth = metrics.truth_segments(labels, args.gt)
    if not per_slice or boundary.ndim < 3:
        return {
            **metrics.segmentation(boundary, truth, args.threshold, args.segmentation),
            "segmented": "in 3D" if boundary.ndim == 3 else "in 2D",
        }
    slices = [
        metrics.segmentation(
            boundary[..., z],
            metrics.truth_segments(labels[..., z], args.gt),
            args.threshold,
            args.segmentation,
        )
        for z in range(boundary.shape[-1])
    ]
    mean = mean_of(slices)
    mean.update(
        n_voxels=sum(r["n_voxels"] for r in slices),
        n_segments=sum(r["n_segments"] for r in slices),
        segmented=f"in {len(slices)} z slices, each on its own (scores: their mean)",
    )
    return mean


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
        head = f"{group} (baseline: {base.get('name', '')}; {values.get('n_voxels', '')} voxels"
        if "n_segments" in values:
            head += f"; {values['n_segments']} segments {values.get('segmented', '')}"
        rows.append(head + ")")
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
    pred, attrs = open_array(args.prediction, "prediction", channels=True)
    labels, _ = open_array(args.labels, "labels", channels=False)
    offset = prediction_offset(attrs, args.offset, len(pred.shape) - 1)
    truth = cropped_labels(labels, tuple(pred.shape), offset)
    per_slice = slice_wise(args, attrs, len(pred.shape) - 1)
    return score(args, read_prediction(pred, attrs), truth, per_slice)


#: Voxels read at a time when segments are scored (x, y, z).
SCORE_BLOCK = (256, 256, 64)


def evaluate_segments(args: argparse.Namespace) -> dict[str, Any]:
    """Scores of a segmentation (IDs) against ID labels, from a contingency table filled a
    block at a time, so volumes of any size score in the memory of their (truth, segment)
    pairs."""
    if not args.labels or args.gt != "ids":
        raise EvaluationError(
            "--segments scores a segmentation (IDs) against ID labels: give PREDICTION and "
            "LABELS with --gt ids."
        )
    segments, attrs = open_array(args.prediction, "segmentation", channels=False)
    labels, _ = open_array(args.labels, "labels", channels=False)
    offset = prediction_offset(attrs, args.offset, len(segments.shape))
    truth = labels_under(labels, (1, *segments.shape), offset)
    if args.per_slice and len(segments.shape) == 3:
        slices = [segment_scores(truth, segments, z) for z in range(segments.shape[-1])]
        return {"segments": {**mean_of(slices), "segmented": f"{len(slices)} z slices scored "
                             "on their own (their mean)"}}  # fmt: skip
    return {"segments": segment_scores(truth, segments, None)}


def segment_scores(truth: AxesView, segments: AxesView, z: int | None) -> dict[str, Any]:
    """VOI in nats, adapted Rand error and object scores of the whole volume or slice ``z``,
    beside the one-segment baseline."""
    if z is not None:
        truth = truth.mirrored_window((0, 0, z), (*truth.shape[:2], 1))
        segments = segments.mirrored_window((0, 0, z), (*segments.shape[:2], 1))
    table = contingency.table_of(truth, segments, SCORE_BLOCK[: len(truth.shape)])
    baseline = table.one_segment()
    return {
        **table.scores("nats"), **table.objects(), "n_voxels": table.voxels,
        "baseline": {"name": "one segment everywhere", **baseline.scores("nats"),
                     **baseline.objects()},
    }  # fmt: skip


def main(argv: list[str] | None = None) -> int:
    """``elektronn-evaluate``; returns the exit code (2 for bad input, with one paragraph)."""
    args = parser().parse_args(argv)
    start = time.perf_counter()
    try:
        if args.split:
            from .split import evaluate_split

            scores = evaluate_split(find_param_file(args.prediction), args.split)
        elif args.segments:
            scores = evaluate_segments(args)
        else:
            scores = evaluate_files(args)
    except UserError as exc:
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
