"""``elektronn-predict``: dense class probabilities of an h5 (or zarr) volume of any size.

``elektronn-predict MODEL INPUT.h5[:KEY] OUTPUT.h5[:KEY]`` reads the input in tiles and
writes each predicted block straight into the output dataset, so neither volume is ever
held in memory. ``--profile`` times tile sizes instead and reports the fastest.

Frame convention: both files are in user order, the input ``(x, y, z)`` or ``(ch, x, y, z)``
(a 2D net also takes one image ``(x, y)``), the output ``(n_lab, x', y', z')``. Output
voxel ``[c, i, j, k]`` is the probability of class ``c`` at input voxel
``[i + ox, j + oy, k + oz]``, where ``(ox, oy, oz)`` is the dataset's ``offset`` attribute:
the net's offset, or zeros with ``--pad`` (the output then covers the whole input).
"""

from __future__ import annotations

import argparse
import contextlib
import math
import sys
import time
from pathlib import Path
from typing import Any

import h5py
import numpy as np
import torch

from ..commands import command_parser
from ..device import AUTOCAST_DTYPES, check_precision, parse_gpu, select_device
from ..errors import UserError
from ..h5files import H5Files
from ..net.paramfile import (
    build_model_from_params,
    input_standardisation,
    load_params,
)
from .autotile import tuned_tile
from .blockrun import check_cluster_options
from .dense import OUT_DTYPES, dense_output_shape, predict_dense
from .errors import PredictionError
from .geometry import net_geometry
from .profile import TABLE_HEADER, fastest, format_tile, profile_tiles, user_order, write_csv
from .stores import AxesView, InputSource, input_source, is_zarr, plain_axes, plain_source

DEFAULT_OUTPUT_KEY = "prob"


def parser() -> argparse.ArgumentParser:
    """The command line (INPUT and OUTPUT are optional only for ``--profile``)."""
    p = command_parser(
        prog="elektronn-predict",
        description="Predict dense class probabilities of a volume with a trained net "
        "(exact tiling, Max Fragment Pooling). Arrays are in user order (x, y, z).",
    )
    p.add_argument("model", help="a training's save directory, or a parameter file (.param)")
    p.add_argument(
        "input", nargs="?", help="INPUT.h5:KEY, a zarr v2/v3 array (STORE.zarr[:KEY]) or an "
        "OME-Zarr image (level 0, or --level K)",
    )  # fmt: skip
    p.add_argument(
        "output", nargs="?", help=f"OUTPUT.h5[:KEY] (key default '{DEFAULT_OUTPUT_KEY}'), or "
        f"OUTPUT.zarr: an OME-Zarr image predicted blockwise, resumable",
    )  # fmt: skip
    p.add_argument(
        "--gpu",
        default="auto",
        help="auto (free GPU with most memory, else CPU), false (CPU) or a GPU number",
    )
    p.add_argument(
        "--tile",
        help="tile input size X,Y[,Z] (user order; rounded down to a "
        "valid size); for a 2D net on a stack, Z is the number of slices per batch",
    )
    p.add_argument(
        "--pad", action="store_true", help="mirror-pad the input so the output covers all of it"
    )
    p.add_argument(
        "--dtype",
        default="float32",
        choices=OUT_DTYPES,
        help="output dtype; uint8 stores round(p * 255)",
    )
    p.add_argument(
        "--method",
        default="auto",
        choices=("auto", "mfp", "stitch"),
        help="mfp (one pass per tile), stitch (naive S^d passes), auto (mfp)",
    )
    p.add_argument(
        "--precision",
        default="fp32",
        choices=tuple(AUTOCAST_DTYPES),
        help="arithmetic of the net: bf16 is faster on GPUs (and CPUs with bfloat16 "
        "instructions), probabilities differ by up to about 1e-2",
    )
    p.add_argument("--overwrite", action="store_true", help="replace an existing output dataset")
    p.add_argument(
        "--workers",
        type=int,
        help="predict blockwise on a Dask LocalCluster of N single-threaded worker processes "
        "(with CUDA GPUs: worker i uses GPU i mod n); OUTPUT must be a .zarr",
    )
    p.add_argument(
        "--scheduler",
        metavar="ADDRESS",
        help="predict blockwise on an existing Dask cluster (dask scheduler / dask-jobqueue / "
        "dask-cuda), e.g. tcp://host:8786; OUTPUT must be a .zarr",
    )
    p.add_argument(
        "--block",
        help="output voxels per block X,Y[,Z] (user order) of a .zarr OUTPUT, one chunk each, "
        "rounded up to the net's stride (default: the tile's output; 8 slices for a 2D net)",
    )
    p.add_argument("--level", type=int, default=0, help="scale level of an OME-Zarr INPUT")
    p.add_argument(
        "--voxel-size",
        help="voxel size X,Y[,Z] of the input for the OME-Zarr output's scale (default: the "
        "input's OME metadata, else 1)",
    )
    p.add_argument(
        "--pyramid",
        type=int,
        default=0,
        metavar="N",
        help="add N levels to the OME-Zarr output, each halved in x and y",
    )
    p.add_argument(
        "--profile",
        action="store_true",
        help="time tile sizes that fit in memory, print the fastest and write "
        "Speed_<name>.csv here (INPUT optional: caps the tile at its size)",
    )
    return p


def find_param_file(model: str) -> Path:
    """The parameter file of a save directory (``_end``, else ``-LAST``), or ``model`` itself."""
    path = Path(model).expanduser()
    if path.is_file():
        return path
    if not path.is_dir():
        raise PredictionError(f"MODEL '{model}' is neither a save directory nor a parameter file.")
    for pattern in (f"{path.name}_end.param", f"{path.name}-LAST.param", "*_end.param",
                    "*-LAST.param"):  # fmt: skip
        found = sorted(path.glob(pattern))
        if len(found) == 1:
            return found[0]
    raise PredictionError(
        f"The save directory '{path}' holds no '{path.name}_end.param' (written when training "
        f"ends) nor '{path.name}-LAST.param' (written at every history step). Give the "
        f"parameter file to use instead of the directory."
    )


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


def describe_input(spec: str, level: int, n_dim: int, n_ch: int) -> InputSource:
    """INPUT as an :class:`InputSource` that any process can open (h5, zarr, OME-Zarr)."""
    path, key = split_spec(spec, None)
    if not path.exists():
        raise PredictionError(f"The input file '{path}' does not exist.")
    if is_zarr(path):
        return input_source(path, key, level, n_dim, n_ch)
    with contextlib.ExitStack() as stack:
        data = open_h5_input(path, key, H5Files(stack, None))
        return plain_source(path, data.name, plain_axes(data.ndim, n_dim, n_ch))


def open_raw(spec: str, level: int, files: H5Files, model: torch.nn.Module) -> tuple[Any, Any]:
    """The input as ``(c, x, y[, z])`` and the dataset it views (an h5 dataset or a zarr
    array; h5 files stay open for the duration of ``files``)."""
    geometry = net_geometry(model)
    path, key = split_spec(spec, None)
    if not path.exists():
        raise PredictionError(f"The input file '{path}' does not exist.")
    if is_zarr(path):
        raw = describe_input(spec, level, geometry.n_dim, geometry.n_ch).open()
        return raw, raw.array
    data = open_h5_input(path, key, files)
    return AxesView(data, plain_axes(data.ndim, geometry.n_dim, geometry.n_ch)), data


def create_output(
    spec: str, shape: tuple[int, ...], dtype: str, overwrite: bool, files: H5Files, source: Any
) -> h5py.Dataset:
    """The output dataset in an h5 file (created, or appended to), in 64-voxel chunks.

    ``source`` is the input dataset, which ``--overwrite`` must never delete.
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


def parse_tile(text: str | None, n_spatial: int, n_dim: int) -> tuple[int, ...] | None:
    """``--tile X,Y[,Z]``; a 2D net on a stack may omit Z (one slice per batch)."""
    if text is None:
        return None
    try:
        tile = tuple(int(v) for v in text.split(","))
    except ValueError:
        tile = ()
    stack = n_spatial == 3 and n_dim == 2
    if stack and len(tile) == 2:
        tile = (*tile, 1)
    if len(tile) != n_spatial or min(tile) < 1:
        wanted = {2: "X,Y", 3: "X,Y[,Z] (Z: slices per batch)" if stack else "X,Y,Z"}[n_spatial]
        raise PredictionError(
            f"--tile {text!r} must be positive integers {wanted}: the tile's input size in "
            f"user order, rounded down to a size the net predicts densely."
        )
    return tile


def model_name(params: dict, param_file: Path) -> str:
    """The training's ``save_name`` (names the speed table, as the original did)."""
    config = params.get("config") or {}
    return str(config.get("save_name") or param_file.stem)


def write_attributes(
    dataset: h5py.Dataset, offset: tuple[int, ...], args, param_file: Path
) -> None:
    """Record the frame convention next to the data (see the module docstring)."""
    dataset.attrs["offset"] = np.asarray(offset, dtype=np.int64)
    dataset.attrs["axis_order"] = "c" + "xyz"[: len(offset)]
    dataset.attrs["pad_raw"] = bool(args.pad)
    dataset.attrs["uint8_scale"] = 255 if args.dtype == "uint8" else 1
    dataset.attrs["model"] = str(param_file)
    dataset.attrs["input"] = str(args.input)


def user_offset(model: torch.nn.Module, n_spatial: int, pad: bool) -> tuple[int, ...]:
    """The net's offset in user order (x, y[, z]); 0 along a 2D net's z, 0 with ``--pad``."""
    internal = net_geometry(model).int_offset
    if len(internal) == 3:
        offset = (*internal[1:], internal[0])
    else:
        offset = internal + (0,) * (n_spatial - 2)
    return tuple(0 for _ in offset) if pad else offset


def run_prediction(args, model: torch.nn.Module, target: str, param_file: Path,
                   standardisation: tuple[float, float] | None) -> None:  # fmt: skip
    """Predict INPUT into OUTPUT tile by tile; the files stay open only for the run."""
    with contextlib.ExitStack() as stack:
        files = H5Files(stack, split_spec(args.output, DEFAULT_OUTPUT_KEY)[0])
        raw, data = open_raw(args.input, args.level, files, model)
        n_spatial = len(raw.shape) - 1
        shape = dense_output_shape(model, raw.shape, raw_order="xyz", pad_raw=args.pad)
        out = create_output(args.output, shape, args.dtype, args.overwrite, files, data)
        tile = choose_tile(args, model, target, param_file, raw.shape)
        start = time.perf_counter()
        predict_dense(model, raw, raw_order="xyz", tile_shape=tile, pad_raw=args.pad,
                      method=args.method, target=target, out=out, progress=True,
                      standardisation=standardisation, precision=args.precision)  # fmt: skip
        seconds = time.perf_counter() - start
        offset = user_offset(model, n_spatial, args.pad)
        write_attributes(out, offset, args, param_file)
        print(f"Wrote {shape} {args.dtype} probabilities to {out.file.filename}:{out.name} in "
              f"{seconds:.1f} s ({math.prod(shape[1:]) / seconds / 1e6:.3f} Mvox/s). Output "
              f"voxel [c,{','.join('ijk'[:n_spatial])}] belongs to input voxel "
              f"[{','.join(f'{a}+{o}' for a, o in zip('ijk', offset))}].")  # fmt: skip


def run_zarr_prediction(args, model: torch.nn.Module, target: str, param_file: Path,
                        standardisation: tuple[float, float] | None) -> None:  # fmt: skip
    """Predict INPUT into an OME-Zarr OUTPUT block by block (see :mod:`.blockrun`)."""
    from .blockrun import run_blockwise

    geometry = net_geometry(model)
    source = describe_input(args.input, args.level, geometry.n_dim, geometry.n_ch)
    n_spatial = len(source.voxel_size)
    tile = choose_tile(args, model, target, param_file, source.open().shape)
    offset = user_offset(model, n_spatial, args.pad)
    run_blockwise(args, model, target, param_file, standardisation, source, tile, offset)


def net_frame(model: torch.nn.Module, raw_shape: tuple[int, ...], pad: bool) -> tuple[int, ...]:
    """The output frame along the net's axes (internal order): what a tile can cover."""
    spatial = dense_output_shape(model, raw_shape, raw_order="xyz", pad_raw=pad)[1:]
    internal = (spatial[2], *spatial[:2]) if len(spatial) == 3 else spatial
    return internal[-net_geometry(model).n_dim :]


def choose_tile(args, model: torch.nn.Module, target: str, param_file: Path,
                raw_shape: tuple[int, ...]) -> tuple[int, ...] | None:  # fmt: skip
    """``--tile``, else the fastest tile of a short timing cached in the save directory
    (:mod:`.autotile`), user order; a 2D net on a stack predicts one slice per batch."""
    n_spatial = len(raw_shape) - 1
    tile = parse_tile(args.tile, n_spatial, net_geometry(model).n_dim)
    if tile is not None:
        return tile
    frame = net_frame(model, raw_shape, args.pad)
    tuned = tuned_tile(model, param_file, target=target, method=args.method,
                       precision=args.precision, max_out=frame)  # fmt: skip
    if tuned is None:
        return None
    if len(tuned) == 3:
        return user_order(tuned)
    return (*tuned, 1) if n_spatial == 3 else tuned


def run_profile(args, model: torch.nn.Module, target: str, name: str) -> None:
    """Time the tile ladder, print it, write ``Speed_<name>.csv`` and name the fastest.

    With an INPUT the ladder stops at its output frame: larger tiles would not be used.
    """
    max_out = None
    if args.input:
        with contextlib.ExitStack() as stack:
            raw, _ = open_raw(args.input, args.level, H5Files(stack, None), model)
            max_out = net_frame(model, raw.shape, args.pad)
    device = next(model.parameters()).device
    print(f"Profiling {name} on {device} (method {args.method}, {args.precision}):")
    print(TABLE_HEADER)
    rows = profile_tiles(model, device=device, target=target, method=args.method,
                         max_out=max_out, precision=args.precision)  # fmt: skip
    if not rows:
        raise PredictionError("Not even the smallest tile fits in the available memory.")
    path = Path.cwd() / f"Speed_{name}.csv"
    write_csv(rows, path)
    best = fastest(rows)
    print(f"Fastest: --tile {format_tile(best.tile_in)} ({best.voxels_per_s / 1e6:.3f} Mvox/s, "
          f"redundancy {best.redundancy:.3f}). Table written to {path}.")  # fmt: skip


def main(argv: list[str] | None = None) -> int:
    """``elektronn-predict``; returns the exit code (2 for bad input, with one paragraph)."""
    args = parser().parse_args(argv)
    try:
        if not args.profile and not (args.input and args.output):
            raise PredictionError("Give INPUT.h5:KEY and OUTPUT.h5[:KEY] (or use --profile).")
        if not args.profile:
            check_cluster_options(args)
        param_file = find_param_file(args.model)
        params = load_params(param_file)
        model = build_model_from_params(param_file)
        target = (params.get("config") or {}).get("target", "nll")
        device = select_device(parse_gpu(args.gpu))
        check_precision(args.precision, device)
        model.to(device)
        if args.profile:
            run_profile(args, model, target, model_name(params, param_file))
        elif Path(args.output).suffix == ".zarr":
            run_zarr_prediction(args, model, target, param_file, input_standardisation(params))
        else:
            run_prediction(args, model, target, param_file, input_standardisation(params))
    except UserError as exc:
        print(f"elektronn-predict: error: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
