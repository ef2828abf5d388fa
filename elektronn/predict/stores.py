"""Input and output stores of ``elektronn-predict``: h5, zarr v2/v3 arrays and OME-Zarr images.

Every input is seen in *user order* ``(ch, x, y[, z])`` through an :class:`AxesView`, whatever
order the store declares: OME-Zarr axes metadata, a zarr v3 array's ``dimension_names``, or
(h5 and unnamed zarr arrays) the training data's rule, ``(x, y, z)`` or ``(ch, x, y, z)``.
An :class:`InputSource` is a small picklable description, so Dask workers open the store
themselves and no array travels through the scheduler.

A ``.zarr`` OUTPUT is an OME-Zarr image (NGFF 0.5, zarr v3) with axes ``(c, [z,] y, x)`` on
the input's grid: the same spatial shape, ``scale`` = the voxel size, ``translation`` = the
input's, the input's units, and channel names (``omero``), so viewers overlay the prediction
on the raw data and name its layers. Its metadata is written by ome-zarr-py; the valid region
(what the net predicted) is in the ``elektronn`` attributes.
"""

from __future__ import annotations

import itertools
import os
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import h5py
import numpy as np

from ..axes import AxesView, image_axes_ok, plain_axes, reorder
from ..data.stores import (
    dimension_axes,
    is_ome_group,
    is_zarr,
    level_transform,
    ome_axes,
    ome_multiscale,
)
from .errors import PredictionError

#: The output's array (level 0) and its record of finished blocks, inside the image group.
LEVEL0, DONE = "0", "elektronn-done"


def input_axes(ndim: int, n_dim: int, n_ch: int) -> str:
    """Axis names of an input without axis metadata (:func:`~elektronn.axes.plain_axes`)."""
    axes = plain_axes(ndim, n_dim, n_ch)
    if axes is None:
        layouts = (
            "(x, y, z) or (ch, x, y, z)" if n_dim == 3 else "(x, y), (x, y, z) or (ch, x, y, z)"
        )
        raise PredictionError(
            f"The input has {ndim} axes and no axis names, but a {n_dim}D net with {n_ch} "
            f"channel(s) reads {layouts} (user order{', ch = ' + str(n_ch) if n_ch > 1 else ''}); "
            f"name the axes of another order with --axes (e.g. --axes zyx)."
        )
    return axes


@dataclass(frozen=True)
class InputSource:
    """Where the input lives and how its axes are named; picklable, opened by each worker.

    Attributes
    ----------
    path, key
        The h5 file or zarr store and the dataset / array inside it (None: the store itself).
    axes
        Stored axis names, e.g. ``"czyx"`` (OME-Zarr) or ``"xyz"`` (h5).
    voxel_size, translation, units
        Physical voxel size, origin and unit (None: unknown) in user order (x, y[, z]), from
        OME metadata (else 1, 0, None).
    """

    path: str
    key: str | None
    axes: str
    voxel_size: tuple[float, ...]
    translation: tuple[float, ...]
    units: tuple[str | None, ...] = ()

    def open(self) -> AxesView:
        """The input in user order ``(c, x, y[, z])`` (h5 files stay open in this process)."""
        return AxesView(open_array(Path(self.path), self.key), self.axes)


_H5_FILES: dict[tuple[str, int], h5py.File] = {}


def open_array(path: Path, key: str | None) -> Any:
    """The array ``key`` of an h5 file or zarr store, read-only."""
    if is_zarr(path):
        node = open_zarr_node(path, key)
        if not hasattr(node, "shape"):
            names = ", ".join(repr(k) for k in node.keys()) or "none"
            raise PredictionError(
                f"'{path}{':' + key if key else ''}' is a zarr group, not an array, and has no "
                f"OME-Zarr multiscales metadata; name the array as INPUT.zarr:KEY "
                f"(its members: {names})."
            )
        return node
    handle = _H5_FILES.get((str(path), os.getpid()))
    if handle is None:
        handle = _H5_FILES[str(path), os.getpid()] = h5py.File(path, "r")
    return handle[key]


def open_zarr_node(path: Path, key: str | None, mode: str = "r") -> Any:
    """A zarr group or array (``key`` inside the store), with a readable error."""
    import zarr

    try:
        node = zarr.open(str(path), mode=mode)
        return node[key] if key else node
    except (KeyError, FileNotFoundError, ValueError) as exc:
        raise PredictionError(
            f"The zarr store '{path}' has no array or group '{key or '/'}' ({exc})."
        ) from None


def ome_source(path: Path, key: str | None, group: Any, level: int) -> InputSource:
    """An OME-Zarr image's level ``level``, its axes, voxel size and translation.

    The metadata is parsed and validated by ome-zarr-models (NGFF 0.4 and 0.5).
    """
    where = f"{path}{':' + key if key else ''}"
    multiscale = ome_multiscale(group, f"The input '{where}'", PredictionError)
    axes = ome_axes(multiscale)
    if not image_axes_ok(axes):
        raise PredictionError(
            f"The OME-Zarr input '{where}' has axes ({', '.join(axes)}), but prediction reads "
            f"images with the axes x, y and optionally z and c (channel), no t or others. "
            f"Select the time point or position into an image of its own."
        )
    if not 0 <= level < len(multiscale.datasets):
        raise PredictionError(
            f"--level {level}: the OME-Zarr input '{where}' has levels 0..."
            f"{len(multiscale.datasets) - 1}."
        )
    dataset = multiscale.datasets[level]
    scale, translation = level_transform(dataset.coordinateTransformations, len(axes))
    spatial = [axes.index(a) for a in "xyz" if a in axes]
    array_key = f"{key.rstrip('/')}/{dataset.path}" if key else dataset.path
    units = tuple(multiscale.axes[i].unit for i in spatial)
    return InputSource(
        str(path),
        array_key,
        axes,
        tuple(scale[i] for i in spatial),
        tuple(translation[i] for i in spatial),
        units,
    )


def input_source(
    path: Path, key: str | None, level: int, n_dim: int, n_ch: int, axes: str | None = None
) -> InputSource:
    """Describe INPUT (h5 ``file.h5:key``, a zarr array, or an OME-Zarr image); ``axes``
    names the axes of an array without axis metadata (default: the training rule)."""
    if not path.exists():
        raise PredictionError(f"The input file '{path}' does not exist.")
    if is_zarr(path):
        node = open_zarr_node(path, key)
        if is_ome_group(node):
            return ome_source(path, key, node, level)
        array = open_array(path, key)
        named = dimension_axes(array) or axes or input_axes(array.ndim, n_dim, n_ch)
        return plain_source(path, key, named)
    raise PredictionError(f"'{path}' is not a zarr store.")


def plain_source(path: Path, key: str | None, axes: str) -> InputSource:
    """An input without physical metadata: voxel size 1, origin 0."""
    n = sum(a in axes for a in "xyz")
    return InputSource(str(path), key, axes, (1.0,) * n, (0.0,) * n, (None,) * n)


def output_axes(n_spatial: int) -> str:
    """Stored axes of the OME-Zarr output: ``czyx`` (3D) or ``cyx`` (2D), NGFF's order."""
    return "czyx" if n_spatial == 3 else "cyx"


@dataclass(frozen=True)
class OutputStore:
    """The OME-Zarr output image: level 0 seen in user order, and its done record."""

    path: str
    axes: str

    def level0(self) -> AxesView:
        return AxesView(open_zarr_node(Path(self.path), LEVEL0, mode="r+"), self.axes)

    @property
    def done(self) -> str:
        """The path of the record of finished blocks (kept by :mod:`elektronn.blockwise`)."""
        return str(Path(self.path) / DONE)


def stored_order(user: Sequence[Any], axes: str) -> tuple[Any, ...]:
    """Per-axis values in user order ``(c, x, y[, z])`` -> the store's ``axes`` order."""
    return reorder(user, "c" + "xyz"[: len(user) - 1], axes)


@dataclass(frozen=True)
class OutputPlan:
    """What the output image must be: checked against an existing store before resuming.

    ``shape`` and ``block`` are in user order ``(c, x, y[, z])``; ``voxel_size``,
    ``translation`` (of level 0) and ``units`` per spatial axis in user order;
    ``channels`` names each channel; ``settings`` (the ``elektronn`` attributes) record the
    prediction, including its valid region.
    """

    shape: tuple[int, ...]
    dtype: str
    block: tuple[int, ...]
    voxel_size: tuple[float, ...]
    translation: tuple[float, ...]
    units: tuple[str | None, ...]
    channels: tuple[str, ...]
    settings: dict

    @property
    def axes(self) -> str:
        return output_axes(len(self.shape) - 1)


def create_output_store(path: Path, plan: OutputPlan) -> OutputStore:
    """A new OME-Zarr image (zarr v3, NGFF 0.5) for ``plan``; chunks are the blocks."""
    import zarr

    axes = plan.axes
    root = zarr.open_group(str(path), mode="w", zarr_format=3)
    root.create_array(
        LEVEL0,
        shape=stored_order(plan.shape, axes),
        chunks=stored_order(plan.block, axes),
        dtype=plan.dtype,
        fill_value=0,
        dimension_names=list(axes),
    )
    write_ome_metadata(root, plan, levels=1)
    root.attrs["elektronn"] = plan.settings
    return OutputStore(str(path), axes)


def write_ome_metadata(root: Any, plan: OutputPlan, levels: int) -> None:
    """NGFF multiscales metadata through ome-zarr-py: named, typed axes, scale, translation.

    Level ``k`` is down-sampled 2^k times in y and x (the mean of 2 x 2 voxels, whose centre
    lies half a voxel further), like ome-zarr-py's own scaler.
    """
    from ome_zarr.format import FormatV05
    from ome_zarr.writer import write_multiscales_metadata

    axes = plan.axes
    datasets = []
    for k in range(levels):
        factor = [1.0] + [2.0**k if a in "xy" else 1.0 for a in "xyz"[: len(plan.voxel_size)]]
        size = [1.0, *plan.voxel_size]
        origin = [0.0, *plan.translation]
        shift = [o + (f - 1) / 2 * s for o, f, s in zip(origin, factor, size)]
        datasets.append(
            {
                "path": str(k),
                "coordinateTransformations": [
                    {
                        "type": "scale",
                        "scale": list(stored_order([s * f for s, f in zip(size, factor)], axes)),
                    },
                    {"type": "translation", "translation": list(stored_order(shift, axes))},
                ],
            }
        )
    units = dict(zip("xyz", plan.units))
    ome_axes = [
        {"name": a, "type": "channel"}
        if a == "c"
        else {"name": a, "type": "space", **({"unit": units[a]} if units.get(a) else {})}
        for a in axes
    ]
    write_multiscales_metadata(root, datasets, fmt=FormatV05(), axes=ome_axes, name="prob")
    root.attrs["ome"] = {**root.attrs["ome"], "omero": omero_channels(plan)}


def omero_channels(plan: OutputPlan) -> dict:
    """The ``omero`` channel list: a name (viewers name the layers by it), a colour and the
    display window of probabilities (0-1, or 0-255 for uint8)."""
    top = 255 if plan.dtype == "uint8" else 1
    colours = ("FF00FF", "00FF00", "00FFFF", "FFFF00", "FF0000", "0000FF")
    return {
        "channels": [
            {
                "label": name,
                "color": colours[i % len(colours)],
                "active": True,
                "window": {"min": 0, "max": top, "start": 0, "end": top},
            }
            for i, name in enumerate(plan.channels)
        ]
    }


def open_output_store(path: Path, plan: OutputPlan) -> OutputStore:
    """The existing output image, refused when it was made for another prediction."""
    import zarr

    try:
        root = zarr.open_group(str(path), mode="r")
        array = root[LEVEL0]
        settings = dict(root.attrs.get("elektronn", {}))
    except (KeyError, FileNotFoundError, ValueError, TypeError):
        raise PredictionError(
            f"OUTPUT '{path}' exists but is not an elektronn prediction store (no '{LEVEL0}' "
            f"array). Use --overwrite to replace it, or choose a new OUTPUT."
        ) from None
    found = dict(
        shape=tuple(array.shape), dtype=str(array.dtype), chunks=tuple(array.chunks), **settings
    )
    wanted = dict(
        shape=stored_order(plan.shape, plan.axes),
        dtype=plan.dtype,
        chunks=stored_order(plan.block, plan.axes),
        **plan.settings,
    )
    differ = [k for k in wanted if normalised(found.get(k)) != normalised(wanted[k])]
    if differ:
        what = "; ".join(f"{k} {found.get(k)!r} (now {wanted[k]!r})" for k in differ)
        raise PredictionError(
            f"OUTPUT '{path}' exists from another prediction: {what}. Resuming would mix "
            f"the two; use --overwrite to start afresh, or choose a new OUTPUT."
        )
    return OutputStore(str(path), plan.axes)


def normalised(value: Any) -> Any:
    """Tuples and lists compare alike (zarr attributes come back as lists)."""
    if isinstance(value, (list, tuple)):
        return [normalised(v) for v in value]
    return value


def write_pyramid(store: OutputStore, plan: OutputPlan, levels: int) -> None:
    """Levels 1..``levels``: each the 2 x 2 mean in y and x of the one before, chunk by
    chunk (so memory stays at a few chunks), then the metadata naming all levels."""
    import zarr

    root = zarr.open_group(store.path, mode="r+")
    source = root[LEVEL0]
    for k in range(1, levels + 1):
        shape = tuple(-(-n // 2) if a in "xy" else n for n, a in zip(source.shape, store.axes))
        target = root.create_array(
            str(k),
            shape=shape,
            chunks=source.chunks,
            dtype=source.dtype,
            fill_value=0,
            dimension_names=list(store.axes),
            overwrite=True,
        )
        for box in chunk_boxes(shape, source.chunks):
            wide = tuple(
                slice(2 * s.start, 2 * s.stop) if a in "xy" else s for s, a in zip(box, store.axes)
            )
            target[box] = halve_yx(np.asarray(source[wide]), store.axes, target.dtype)
        source = target
    write_ome_metadata(root, plan, levels=levels + 1)


def chunk_boxes(shape: Sequence[int], chunks: Sequence[int]) -> Iterator[tuple[slice, ...]]:
    """The chunk grid of an array as boxes (clipped at its end)."""
    ranges = [range(0, n, c) for n, c in zip(shape, chunks, strict=True)]
    for starts in itertools.product(*ranges):
        yield tuple(slice(s, min(s + c, n)) for s, c, n in zip(starts, chunks, shape))


def halve_yx(block: np.ndarray, axes: str, dtype: np.dtype) -> np.ndarray:
    """Mean of 2 x 2 voxels in y and x (an odd edge repeats its last voxel)."""
    out = block.astype(np.float32)
    for axis in (axes.index("y"), axes.index("x")):
        if out.shape[axis] % 2:
            edge = np.take(out, [-1], axis=axis)
            out = np.concatenate([out, edge], axis=axis)
        pairs = out.shape[axis] // 2
        out = out.reshape(*out.shape[:axis], pairs, 2, *out.shape[axis + 1 :]).mean(axis + 1)
    return np.rint(out).astype(dtype) if np.dtype(dtype).kind == "u" else out.astype(dtype)
