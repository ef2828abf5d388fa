"""``elektronn-segment``: instance IDs from a prediction, block by block, into an h5 file or
the OME-Zarr labels of an image (a thin layer over :func:`~.volume.segment_volume`).

``elektronn-segment PREDICTION OUTPUT [--method M] [--workers N | --scheduler ADDR]
[--block-shape X,Y,Z]``: PREDICTION is what ``elektronn-predict`` wrote (h5, zarr, OME-Zarr);
OUTPUT is an OME-Zarr image (the labels go to ``OUTPUT/labels/<--name>``) or ``FILE.h5[:KEY]``.
A run that stops is resumed by running the same command again.
"""

from __future__ import annotations

import argparse
import sys

from ..commands import command_parser
from ..errors import UserError
from .errors import SegmentationError
from .params import METHODS, SEED_MODES, SegmentParams
from .volume import DEFAULT_BLOCK, segment_volume

DEFAULTS = SegmentParams()


def parser() -> argparse.ArgumentParser:
    p = command_parser(
        prog="elektronn-segment",
        description="Segment a prediction into objects with IDs (x, y, z), block by block "
        "(resumable, optionally on Dask): connected components (organelles), a watershed of a "
        "boundary map, or the mutex watershed of affinities. The result does not depend on "
        "the block shape.",
    )
    p.add_argument("prediction", help="PREDICTION.h5[:KEY], .zarr or OME-Zarr image")
    p.add_argument("output", help="an OME-Zarr image (labels go inside it) or OUTPUT.h5[:KEY]")
    p.add_argument("--method", choices=METHODS, default=DEFAULTS.method,
                   help="components (organelles), watershed (cells from a boundary map) or mws "
                   "(mutex watershed of affinities); default %(default)s")  # fmt: skip
    p.add_argument("--name", help="name of the OME-Zarr labels (default: the method)")
    cluster = p.add_mutually_exclusive_group()
    cluster.add_argument("--workers", type=int, help="start a Dask LocalCluster of N processes")
    cluster.add_argument("--scheduler", help="address of an existing Dask scheduler")
    p.add_argument("--block-shape", default=",".join(map(str, DEFAULT_BLOCK)),
                   help="voxels each block writes, X,Y,Z (default %(default)s)")  # fmt: skip
    p.add_argument("--halo", help="voxels read beyond each side of a block, X,Y,Z (default: "
                   "0 for components, 8 for watershed and mws)")  # fmt: skip
    p.add_argument("--threshold", type=float, default=DEFAULTS.threshold,
                   help="components: foreground probability above it; watershed: seeds where "
                   "the boundary probability is below it (default %(default)s)")  # fmt: skip
    p.add_argument("--merge-threshold", type=float, default=DEFAULTS.merge_threshold,
                   help="watershed: join fragments while the mean "
                   "boundary on their shared faces is below it (default %(default)s)")  # fmt: skip
    p.add_argument(
        "--foreground-class",
        type=int,
        default=DEFAULTS.foreground_class,
        help="components: the channel of the objects (default %(default)s)",
    )
    p.add_argument(
        "--boundary-class",
        type=int,
        default=DEFAULTS.boundary_class,
        help="watershed: the channel of the boundaries (default %(default)s)",
    )
    p.add_argument(
        "--connectivity",
        type=int,
        choices=(6, 26),
        default=DEFAULTS.connectivity,
        help="components: neighbours that connect voxels (default %(default)s)",
    )
    p.add_argument("--seeds", choices=SEED_MODES, default=DEFAULTS.seeds,
                   help="watershed: seeds from the thresholded interior or the maxima of the "
                   "distance to boundaries (default %(default)s)")  # fmt: skip
    p.add_argument(
        "--seed-distance",
        type=int,
        default=DEFAULTS.seed_distance,
        help="watershed --seeds distance: radius of a maximum (default %(default)s)",
    )
    p.add_argument(
        "--min-size",
        type=int,
        default=DEFAULTS.min_size,
        help="segments with fewer voxels become background (default %(default)s)",
    )
    p.add_argument(
        "--overwrite",
        action="store_true",
        help="replace an earlier segmentation at OUTPUT instead of resuming it",
    )
    return p


def voxels(text: str, option: str, least: int) -> tuple[int, int, int]:
    """``X,Y,Z``: three whole voxel counts of at least ``least``."""
    try:
        values = tuple(int(v) for v in text.split(","))
    except ValueError:
        values = ()
    if len(values) != 3 or min(values) < least:
        raise SegmentationError(
            f"{option} {text!r} must be three whole numbers >= {least}, X,Y,Z in user order."
        )
    return values


def main(argv: list[str] | None = None) -> int:
    """``elektronn-segment``; returns the exit code (2 for bad input, with one paragraph)."""
    args = parser().parse_args(argv)
    try:
        result = segment_volume(
            args.prediction, args.output, method=args.method, name=args.name,
            block=voxels(args.block_shape, "--block-shape", 1), workers=args.workers,
            scheduler=args.scheduler, overwrite=args.overwrite,
            halo=voxels(args.halo, "--halo", 0) if args.halo else None,
            threshold=args.threshold, merge_threshold=args.merge_threshold,
            foreground_class=args.foreground_class, boundary_class=args.boundary_class,
            connectivity=args.connectivity, seeds=args.seeds,
            seed_distance=args.seed_distance, min_size=args.min_size,
        )  # fmt: skip
    except UserError as exc:
        print(f"elektronn-segment: error: {exc}", file=sys.stderr)
        return 2
    if not result.computed:
        print(f"{result.output} is complete already ({result.n_segments} segments); "
              f"--overwrite to segment it again.")  # fmt: skip
    else:
        done = ", ".join(f"{k} {v}" for k, v in result.computed.items())
        print(f"Wrote {result.n_segments} segments (from {result.n_fragments} fragments) to "
              f"{result.output} in {result.seconds:.1f} s; blocks {result.blocks} (x, y, z), "
              f"computed now: {done}.")  # fmt: skip
    return 0


if __name__ == "__main__":
    sys.exit(main())
