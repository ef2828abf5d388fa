"""Predicting a volume of any size: :func:`predict_volume`, the Python entry point of
``elektronn-predict``.

An h5 OUTPUT is written tile by tile in user order ``(n_lab, x', y'[, z'])`` with an ``offset``
attribute: output voxel ``[c, i, j, k]`` is the probability of class ``c`` at input voxel
``[i + ox, j + oy, k + oz]`` (the net's offset, or zeros with ``pad``, when the output covers
the whole input). A ``.zarr`` OUTPUT is an OME-Zarr image on the input's grid, predicted
block by block (:mod:`.blockrun`), resumable, optionally on Dask. Neither volume is ever held
in memory.
"""

from __future__ import annotations

import contextlib
import math
import sys
import time
from pathlib import Path
from typing import Any

import h5py
import numpy as np
import torch

from ..axes import CHANNEL, AxesView, image_axes_ok, is_stack, net_axes, reorder, user_axes
from ..blockwise import check_cluster_options
from ..h5files import H5Files
from .autotile import tuned_tile
from .dense import build_layout, dense_output_shape, predict_dense
from .errors import PredictionError
from .geometry import net_geometry
from .settings import PredictSettings, TrainedNet
from .stores import InputSource, input_axes, input_source, is_zarr, plain_source

DEFAULT_OUTPUT_KEY = "prob"


def split_spec(spec: str, default_key: str | None) -> tuple[Path, str | None]:
    """``file.h5:key`` -> (path, key); a spec without ``:key`` gives ``default_key``."""
    head, sep, tail = spec.rpartition(":")
    if sep and tail and not Path(spec).exists():
        return Path(head).expanduser(), tail
    return Path(spec).expanduser(), default_key


def only_dataset(f: h5py.File) -> str | None:
    """The name of the file's single dataset, None if there are several or none."""
    names: list[str] = []
    f.visititems(lambda name, obj: names.append(name) if isinstance(obj, h5py.Dataset) else None)
    return names[0] if len(names) == 1 else None


def h5_file(files: H5Files, path: Path, role: str) -> h5py.File:
    """``path`` opened once for the command; failing to open it is the ``role`` file's error."""
    try:
        return files.get(path)
    except OSError as exc:
        doing = "written" if role == "output" else "read"
        raise PredictionError(
            f"The {role} file '{path}' cannot be {doing} as HDF5: {exc}."
        ) from None


def open_h5_input(path: Path, key: str | None, files: H5Files) -> h5py.Dataset:
    """The input dataset of an h5 file, open for the duration of ``files``."""
    f = h5_file(files, path, "input")
    key = key or only_dataset(f)
    if key is None or not isinstance(f.get(key), h5py.Dataset):
        keys = ", ".join(repr(k) for k in f.keys()) or "none"
        wanted = f"has no dataset '{key}'" if key else "holds several datasets"
        raise PredictionError(
            f"The input file '{path}' {wanted}; its keys are: {keys}. "
            f"Name the dataset as INPUT.h5:KEY."
        )
    return f[key]


def describe_input(spec: str, level: int, trained: TrainedNet, axes: str | None) -> InputSource:
    """INPUT as an :class:`InputSource` that any process can open (h5, zarr, OME-Zarr);
    ``axes`` names the axes of an input without axis metadata (default: the training rule)."""
    path, key = split_spec(spec, None)
    if not path.exists():
        raise PredictionError(f"The input file '{path}' does not exist.")
    geometry = net_geometry(trained.net)
    if is_zarr(path):
        return input_source(path, key, level, geometry.n_dim, geometry.n_ch, axes)
    with contextlib.ExitStack() as stack:
        data = open_h5_input(path, key, H5Files(stack, None))
        named = checked_axes(axes, data.ndim) or input_axes(
            data.ndim, geometry.n_dim, geometry.n_ch
        )
        return plain_source(path, data.name, named)


def checked_axes(axes: str | None, ndim: int) -> str | None:
    """``--axes``: the input's axis names (x, y, optionally z and c), one per array axis."""
    if axes is None:
        return None
    if len(axes) != ndim or not image_axes_ok(axes):
        raise PredictionError(
            f"--axes {axes!r} must name each of the input's {ndim} axes in stored order with "
            f"x, y, optionally z and c (channel), each once: e.g. zyx for a (z, y, x) h5 "
            f"dataset (CREMI and most EM files), cxyz for (channel, x, y, z)."
        )
    return axes


def check_input_fits(trained: TrainedNet, raw_shape: tuple[int, ...], pad: bool) -> None:
    """Refuse, in user words, an input that the net's field of view does not fit into; the
    usual cause is an axis order other than (x, y, z)."""
    n = len(raw_shape) - 1
    fov = reorder(
        net_geometry(trained.net).fov, net_axes(trained.net.n_dim, n), user_axes(n), missing=1
    )
    small = [a for a, size, f in zip(user_axes(n), raw_shape[1:], fov, strict=True) if size < f]
    if small and not pad:
        names = ", ".join(user_axes(n))
        raise PredictionError(
            f"The input, read as ({names}) = {tuple(raw_shape[1:])}, is smaller than the net's "
            f"field of view ({names}) = {fov} along {', '.join(small)}: no voxel can be "
            f"predicted. If its axes are stored in another order, e.g. (z, y, x) as in CREMI "
            f"and most EM h5 files, name them with --axes zyx; to predict a small volume, "
            f"mirror-pad its border with --pad."
        )


def warn_about_float_range(raw: Any) -> None:
    """Floats are used as they are, integers scaled to [0, 1]: a float input far above 1 was
    most likely meant as 0-255 (training refuses such a mix of cubes)."""
    if not np.issubdtype(raw.dtype, np.floating):
        return
    n = len(raw.shape) - 1
    middle = tuple(
        slice(s // 2, s // 2 + 1) if a == "z" else slice(None)
        for a, s in zip(user_axes(n), raw.shape[1:])
    )
    high = float(np.max(raw[(slice(None), *middle)]))
    if high > 1.0:
        print(
            f"elektronn-predict: warning: the input is stored as floats with values up to "
            f"{high:g} (its middle slice); floats are used as they are, while integer images "
            f"(and the training images, if they were integers) are scaled to [0, 1]. If the "
            f"net was trained on such images, divide the input by its full-scale value (e.g. "
            f"255) or store it as integers, else the probabilities are meaningless.",
            file=sys.stderr,
        )


def create_output(
    spec: str, shape: tuple[int, ...], dtype: str, overwrite: bool, files: H5Files, source: Any
) -> h5py.Dataset:
    """The output dataset in an h5 file (created, or appended to), in 64-voxel chunks.

    ``source`` is the input dataset, which ``overwrite`` must never delete.
    """
    path, key = split_spec(spec, DEFAULT_OUTPUT_KEY)
    f = h5_file(files, path, "output")
    if key in f:
        if isinstance(source, h5py.Dataset) and source == f[key]:
            raise PredictionError(f"OUTPUT '{spec}' is the input dataset itself; choose a new KEY.")
        if not overwrite:
            raise PredictionError(
                f"The output file '{path}' already has '{key}'. Use --overwrite to replace it, "
                f"or write to OUTPUT.h5:OTHER_KEY."
            )
        del f[key]
    chunks = (1, *(min(n, 64) for n in shape[1:]))
    return f.create_dataset(key, shape=shape, dtype=dtype, chunks=chunks)


def user_offset(trained: TrainedNet, n_spatial: int, pad: bool) -> tuple[int, ...]:
    """The net's offset in user order (x, y[, z]); 0 along a 2D net's z, 0 with ``pad``."""
    net = net_axes(trained.net.n_dim, n_spatial)
    offset = reorder(net_geometry(trained.net).int_offset, net, user_axes(n_spatial), missing=0)
    return tuple(0 for _ in offset) if pad else offset


def write_attributes(
    dataset: h5py.Dataset,
    offset: tuple[int, ...],
    trained: TrainedNet,
    settings: PredictSettings,
    input_spec: str,
) -> None:
    """Record the frame convention next to the data (see the module docstring)."""
    dataset.attrs["offset"] = np.asarray(offset, dtype=np.int64)
    dataset.attrs["axis_order"] = CHANNEL + user_axes(len(offset))
    dataset.attrs["pad_raw"] = bool(settings.pad)
    dataset.attrs["uint8_scale"] = 255 if settings.dtype == "uint8" else 1
    dataset.attrs["model"] = str(trained.param_file)
    dataset.attrs["input"] = str(input_spec)
    dataset.attrs["channel_names"] = list(trained.channel_names(len(offset)))
    for name, value in trained.output_attributes(len(offset)).items():
        dataset.attrs[name] = np.asarray(value) if isinstance(value, list) else value


def predict_h5(
    trained: TrainedNet,
    input_spec: str,
    output: str,
    settings: PredictSettings,
    tile: tuple[int, ...] | None,
    axes: str | None,
) -> str:
    """Predict INPUT into an h5 OUTPUT tile by tile; the files stay open only for the run."""
    with contextlib.ExitStack() as stack:
        files = H5Files(stack, split_spec(output, DEFAULT_OUTPUT_KEY)[0])
        raw, data = open_input(input_spec, settings.level, files, trained, axes)
        check_input_fits(trained, raw.shape, settings.pad)
        warn_about_float_range(raw)
        n_spatial = len(raw.shape) - 1
        names = CHANNEL + user_axes(n_spatial)
        shape = dense_output_shape(
            trained.net, raw.shape, axes=names, pad_raw=settings.pad, channels=trained.channels
        )
        out = create_output(output, shape, settings.dtype, settings.overwrite, files, data)
        tile = fit_tile(tile, n_spatial, trained) or auto_tile(trained, settings, raw.shape)
        start = time.perf_counter()
        predict_dense(
            trained.net,
            raw,
            axes=names,
            tile_shape=tile,
            pad_raw=settings.pad,
            method=settings.method,
            target=trained.target,
            out=out,
            progress=settings.progress,
            standardisation=trained.standardisation,
            precision=settings.precision,
            channels=trained.channels,
        )
        seconds = time.perf_counter() - start
        offset = user_offset(trained, n_spatial, settings.pad)
        write_attributes(out, offset, trained, settings, input_spec)
        return (
            f"Wrote {shape} {settings.dtype} probabilities to {out.file.filename}:{out.name} "
            f"in {seconds:.1f} s ({math.prod(shape[1:]) / seconds / 1e6:.3f} Mvox/s). "
            f"Output voxel [c,{','.join('ijk'[:n_spatial])}] belongs to input voxel "
            f"[{','.join(f'{a}+{o}' for a, o in zip('ijk', offset))}]."
        )


def open_input(
    spec: str, level: int, files: H5Files, trained: TrainedNet, axes: str | None
) -> tuple[Any, Any]:
    """The input as ``(c, x, y[, z])`` and the dataset it views (an h5 dataset or a zarr
    array; h5 files stay open for the duration of ``files``)."""
    path, key = split_spec(spec, None)
    if not path.exists():
        raise PredictionError(f"The input file '{path}' does not exist.")
    if is_zarr(path):
        raw = describe_input(spec, level, trained, axes).open()
        return raw, raw.array
    data = open_h5_input(path, key, files)
    geometry = net_geometry(trained.net)
    named = checked_axes(axes, data.ndim) or input_axes(data.ndim, geometry.n_dim, geometry.n_ch)
    return AxesView(data, named), data


def net_frame(trained: TrainedNet, raw_shape: tuple[int, ...], pad: bool) -> tuple[int, ...]:
    """The output frame along the net's axes (internal order): what a tile can cover."""
    n = len(raw_shape) - 1
    layout = build_layout(net_geometry(trained.net), raw_shape, CHANNEL + user_axes(n), pad)
    return layout.out_shape[len(layout.out_shape) - layout.geometry.n_dim :]


def auto_tile(
    trained: TrainedNet, settings: PredictSettings, raw_shape: tuple[int, ...]
) -> tuple[int, ...] | None:
    """The fastest tile of a short timing cached in the save directory (:mod:`.autotile`),
    user order; a 2D net on a stack predicts one slice per batch."""
    tuned = tuned_tile(
        trained.net,
        trained.param_file,
        target=trained.target,
        method=settings.method,
        precision=settings.precision,
        max_out=net_frame(trained, raw_shape, settings.pad),
    )
    if tuned is None:
        return None
    n = len(raw_shape) - 1
    return reorder(tuned, net_axes(trained.net.n_dim, n), user_axes(n), missing=1)


def predict_volume(
    model: TrainedNet | str | Path,
    input: str,
    output: str,
    *,
    workers: int | None = None,
    scheduler: str | None = None,
    tile: tuple[int, ...] | None = None,
    pad: bool = False,
    block: tuple[int, ...] | None = None,
    dtype: str = "float32",
    method: str = "auto",
    precision: str = "fp32",
    axes: str | None = None,
    level: int = 0,
    voxel_size: tuple[float, ...] | None = None,
    unit: str | None = None,
    pyramid: int = 0,
    overwrite: bool = False,
    device: torch.device | str | None = None,
    progress: bool = True,
) -> str:
    """Predict the class probabilities of a volume of any size into a file; returns the
    summary line.

    Parameters
    ----------
    model
        A training's save directory, a parameter file, or a :class:`TrainedNet` already
        loaded (its net is used as it is, on its device unless ``device`` is given).
    input
        ``FILE.h5[:KEY]``, a zarr array ``STORE.zarr[:KEY]`` or an OME-Zarr image.
    output
        ``FILE.h5[:KEY]`` (written tile by tile, key default ``prob``), or ``STORE.zarr``: an
        OME-Zarr image on the input's grid, predicted block by block and resumable.
    workers, scheduler
        Predict a ``.zarr`` output on a Dask LocalCluster of ``workers`` processes, or on the
        cluster of an existing scheduler; neither: in this process.
    tile
        Tile input size per spatial axis, user order (x, y[, z]); for a 2D net on a stack z
        is the number of slices per batch. Default: the fastest of a short timing, cached.
    pad
        Mirror-pad the input so the net predicts all of it (else the border of the net's
        offset is not predicted).
    block
        Output voxels per block (one chunk) of a ``.zarr`` output, user order.
    dtype, method, precision
        ``float32``/``float16``/``uint8`` (``round(p * 255)``); ``auto``/``mfp``/``stitch``;
        ``fp32``/``bf16``.
    axes
        The input's axis names in stored order when it has no axis metadata (e.g. ``zyx``);
        default ``(c,) x, y, z``.
    level, voxel_size, unit, pyramid
        OME-Zarr input level; the output's voxel size per axis and its unit, e.g.
        ``nanometer`` (default: the input's metadata); extra output levels, each halved in x
        and y.
    overwrite
        Replace an existing output (else an h5 key is refused and a store resumed).
    """
    trained = model if isinstance(model, TrainedNet) else TrainedNet.load(model)
    if device is not None:
        trained.net.to(device)
    zarr_output = Path(output).suffix == ".zarr"
    check_cluster_options(workers, scheduler)
    if (workers or scheduler) and not zarr_output:
        raise PredictionError(
            f"--workers / --scheduler write an OME-Zarr image that many processes can fill "
            f"at once, but OUTPUT '{output}' does not end in .zarr (an h5 file cannot "
            f"be written by several processes). Name the output OUTPUT.zarr."
        )
    settings = PredictSettings(
        pad,
        dtype,
        method,
        precision,
        overwrite,
        workers,
        scheduler,
        block,
        level,
        voxel_size,
        unit,
        pyramid,
        progress,
    )
    if not zarr_output:
        return predict_h5(trained, input, output, settings, tile, axes)
    from .blockrun import predict_blockwise

    source = describe_input(input, level, trained, axes)
    raw = source.open()
    shape = raw.shape
    check_input_fits(trained, shape, pad)
    warn_about_float_range(raw)
    tile = fit_tile(tile, len(shape) - 1, trained) or auto_tile(trained, settings, shape)
    return predict_blockwise(trained, source, Path(output).expanduser(), settings, tile)


def fit_tile(
    tile: tuple[int, ...] | None, n_spatial: int, trained: TrainedNet
) -> tuple[int, ...] | None:
    """A tile (user order) for an input of ``n_spatial`` axes; a 2D net on a stack may omit
    z (one slice per batch)."""
    if tile is None:
        return None
    stack = is_stack(n_spatial, trained.net.n_dim)
    tile = (*tile, 1) if stack and len(tile) == 2 else tuple(tile)
    if len(tile) != n_spatial or min(tile) < 1:
        wanted = {2: "X,Y", 3: "X,Y[,Z] (Z: slices per batch)" if stack else "X,Y,Z"}[n_spatial]
        raise PredictionError(
            f"--tile {','.join(map(str, tile))} must be positive integers {wanted} for this "
            f"input: the tile's input size in user order, rounded down to a size the net "
            f"predicts densely."
        )
    return tile
