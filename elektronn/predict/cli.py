"""``elektronn-predict``: dense class probabilities of an h5 (or zarr) volume of any size.

``elektronn-predict MODEL INPUT.h5[:KEY] OUTPUT.h5[:KEY]`` reads the input in tiles and
writes each predicted block straight into the output dataset; ``OUTPUT.zarr`` is an OME-Zarr
image on the input's grid, predicted block by block (``--workers`` / ``--scheduler`` on
Dask). ``--profile`` times tile sizes instead and reports the fastest. The command is a thin
layer over :func:`elektronn.predict.predict_volume` (frame conventions: :mod:`.volume`).
"""

from __future__ import annotations

import argparse
import contextlib
import sys
from pathlib import Path

from ..commands import command_parser
from ..device import AUTOCAST_DTYPES, check_precision, parse_gpu, select_device
from ..errors import UserError
from ..h5files import H5Files
from .dense import METHODS, OUT_DTYPES
from .errors import PredictionError
from .profile import TABLE_HEADER, fastest, format_tile, profile_tiles, write_csv
from .settings import TrainedNet
from .volume import DEFAULT_OUTPUT_KEY, net_frame, open_input, predict_volume


def parser() -> argparse.ArgumentParser:
    """The command line (INPUT and OUTPUT are optional only for ``--profile``)."""
    p = command_parser(
        prog="elektronn-predict",
        description="Predict dense class probabilities of a volume with a trained net "
        "(exact tiling, Max Fragment Pooling). Arrays are in user order (x, y, z).",
    )
    p.add_argument("model", help="a training's save directory, or a parameter file (.param)")
    p.add_argument(
        "input",
        nargs="?",
        help="INPUT.h5:KEY, a zarr v2/v3 array (STORE.zarr[:KEY]) or an "
        "OME-Zarr image (level 0, or --level K)",
    )
    p.add_argument(
        "output",
        nargs="?",
        help=f"OUTPUT.h5[:KEY] (key default '{DEFAULT_OUTPUT_KEY}'), or "
        f"OUTPUT.zarr: an OME-Zarr image predicted blockwise, resumable",
    )
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
        choices=METHODS,
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
    p.add_argument(
        "--axes",
        help="the INPUT's axis names in stored order when it has none (h5, plain zarr), e.g. "
        "zyx for a (z, y, x) dataset; default (c,) x, y, z",
    )
    p.add_argument("--level", type=int, default=0, help="scale level of an OME-Zarr INPUT")
    p.add_argument(
        "--voxel-size",
        help="voxel size X,Y[,Z] of the input for the OME-Zarr output's scale (default: the "
        "input's OME metadata, else 1)",
    )
    p.add_argument(
        "--unit",
        help="unit of the voxel size (e.g. nanometer) for the OME-Zarr output's axes "
        "(default: the input's OME metadata)",
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


def parse_numbers(text: str | None, option: str, kind: type, meaning: str) -> tuple | None:
    """A comma-separated list of positive numbers (``--tile``, ``--block``, ``--voxel-size``)."""
    if text is None:
        return None
    try:
        values = tuple(kind(v) for v in text.split(","))
    except ValueError:
        values = ()
    if not 2 <= len(values) <= 3 or min(values) <= 0:
        raise PredictionError(
            f"{option} {text!r} must be positive {'integers' if kind is int else 'numbers'} "
            f"X,Y[,Z] in user order: {meaning}."
        )
    return values


TILE_MEANING = (
    "the tile's input size, rounded down to a size the net predicts densely (for a 2D net on "
    "a stack Z is the number of slices per batch, default 1)"
)
BLOCK_MEANING = (
    "the output voxels of one block (one chunk of the OME-Zarr output), rounded up to a "
    "multiple of the net's stride"
)
VOXEL_MEANING = "the input's voxel size, written as the OME-Zarr output's scale"


def run_profile(args: argparse.Namespace, trained: TrainedNet) -> None:
    """Time the tile ladder, print it, write ``Speed_<name>.csv`` and name the fastest.

    With an INPUT the ladder stops at its output frame: larger tiles would not be used.
    """
    max_out = None
    if args.input:
        with contextlib.ExitStack() as stack:
            raw, _ = open_input(args.input, args.level, H5Files(stack, None), trained, args.axes)
            max_out = net_frame(trained, raw.shape, args.pad)
    device = next(trained.net.parameters()).device
    print(f"Profiling {trained.name} on {device} (method {args.method}, {args.precision}):")
    print(TABLE_HEADER)
    rows = profile_tiles(
        trained.net,
        device=device,
        target=trained.target,
        method=args.method,
        max_out=max_out,
        precision=args.precision,
    )
    if not rows:
        raise PredictionError("Not even the smallest tile fits in the available memory.")
    path = Path.cwd() / f"Speed_{trained.name}.csv"
    write_csv(rows, path)
    best = fastest(rows)
    print(
        f"Fastest: --tile {format_tile(best.tile_in)} ({best.voxels_per_s / 1e6:.3f} Mvox/s, "
        f"redundancy {best.redundancy:.3f}). Table written to {path}."
    )


def predict_from_args(args: argparse.Namespace, trained: TrainedNet) -> str:
    """:func:`predict_volume` with the command line's values."""
    return predict_volume(
        trained,
        args.input,
        args.output,
        workers=args.workers,
        scheduler=args.scheduler,
        tile=parse_numbers(args.tile, "--tile", int, TILE_MEANING),
        pad=args.pad,
        block=parse_numbers(args.block, "--block", int, BLOCK_MEANING),
        dtype=args.dtype,
        method=args.method,
        precision=args.precision,
        axes=args.axes,
        level=args.level,
        voxel_size=parse_numbers(args.voxel_size, "--voxel-size", float, VOXEL_MEANING),
        unit=args.unit,
        pyramid=args.pyramid,
        overwrite=args.overwrite,
    )


def main(argv: list[str] | None = None) -> int:
    """``elektronn-predict``; returns the exit code (2 for bad input, with one paragraph)."""
    args = parser().parse_args(argv)
    try:
        if not args.profile and not (args.input and args.output):
            raise PredictionError("Give INPUT.h5:KEY and OUTPUT.h5[:KEY] (or use --profile).")
        trained = TrainedNet.load(args.model)
        device = select_device(parse_gpu(args.gpu))
        check_precision(args.precision, device)
        trained.net.to(device)
        if args.profile:
            run_profile(args, trained)
        else:
            print(predict_from_args(args, trained))
    except UserError as exc:
        print(f"elektronn-predict: error: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
