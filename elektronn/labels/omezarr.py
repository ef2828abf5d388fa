"""``elektronn-labels ome-zarr``: an h5 volume as an OME-Zarr image that viewers open.

napari and neuroglancer open OME-Zarr, not h5; ``elektronn-predict ... OUT.zarr`` writes its
prediction on the grid of its input, so the raw data converted here (same voxel size) lies
exactly under it: ``napari raw.zarr prob.zarr``. The volume is copied chunk by chunk (via a
Dask array), never held in memory; the NGFF metadata is written by ome-zarr-py.
"""

from __future__ import annotations

import argparse
import shutil
from contextlib import ExitStack
from pathlib import Path

from ..axes import CHANNEL, AxesView, image_axes_ok, plain_axes, user_axes
from .errors import LabelError
from .h5io import LabelFiles, h5_arg

#: Voxels per chunk edge of the written image (z: one slice deep for 2D-net stacks).
CHUNK_XY = 256


def add_command(commands: argparse._SubParsersAction) -> None:
    """The ``ome-zarr`` sub-command; :func:`run` is stored as ``args.run``."""
    command = commands.add_parser(
        "ome-zarr",
        help="copy an h5 volume (x, y, z) into an OME-Zarr image for napari / neuroglancer",
        description="Copy an h5 dataset ((ch,) x, y, z, or another order with --axes) into an "
        "OME-Zarr image (NGFF 0.5, axes (c,) z, y, x) with voxel size and unit, chunk by chunk. "
        "Predictions of elektronn-predict OUT.zarr lie on the same grid: napari raw.zarr OUT.zarr.",
    )
    command.add_argument("source", type=h5_arg, help="input, FILE.h5:KEY")
    command.add_argument("target", help="output OME-Zarr image, e.g. raw.zarr")
    command.add_argument("--voxel-size", help="X,Y[,Z] voxel size (default 1 each)")
    command.add_argument("--unit", help="unit of the voxel size, e.g. nanometer")
    command.add_argument("--axes", help="the dataset's axis names in stored order (default xyz)")
    command.add_argument("--labels", action="store_true", help="integer IDs: nearest levels")
    command.add_argument("--pyramid", type=int, default=0, help="levels halved in x and y")
    command.add_argument("--overwrite", action="store_true", help="replace an existing output")
    command.set_defaults(run=run)


def voxel_size(text: str | None, n_spatial: int) -> tuple[float, ...]:
    """``--voxel-size`` in user order, one positive number per spatial axis."""
    if text is None:
        return (1.0,) * n_spatial
    try:
        size = tuple(float(v) for v in text.split(","))
    except ValueError:
        size = ()
    if len(size) != n_spatial or min(size) <= 0:
        raise LabelError(
            f"--voxel-size {text!r} must be {n_spatial} positive numbers "
            f"({','.join(user_axes(n_spatial)).upper()}, user order)."
        )
    return size


def stored_axes(text: str | None, ndim: int) -> str:
    """The dataset's axis names: ``--axes``, else the training data's rule."""
    axes = text or plain_axes(ndim, 3, 1 if ndim == 3 else 2)
    if axes is None or len(axes) != ndim or not image_axes_ok(axes):
        raise LabelError(
            f"The dataset has {ndim} axes; name them in stored order with --axes, x, y, "
            f"optionally z and c, each once (e.g. zyx)."
        )
    return axes


def write_ome_zarr(
    view: AxesView,
    target: Path,
    size: tuple[float, ...],
    unit: str | None,
    labels: bool,
    pyramid: int,
) -> tuple[int, ...]:
    """Write ``view`` (any stored order) as an OME-Zarr image; returns its shape."""
    import dask.array as da
    import zarr
    from ome_zarr.format import FormatV05
    from ome_zarr.scale import Methods
    from ome_zarr.writer import write_image

    names = ("c" if CHANNEL in view.axes else "") + "zyx"[3 - len(size) :]
    ordered = view.seen_as(names)
    chunks = tuple(1 if a == "z" else CHUNK_XY for a in names)
    array = da.from_array(ordered, chunks=chunks, asarray=True)
    spatial_size = dict(zip(user_axes(len(size)), size))
    group = zarr.open_group(str(target), mode="w", zarr_format=3)
    write_image(
        array,
        group,
        fmt=FormatV05(),
        axes=list(names),
        scale={a: spatial_size.get(a, 1.0) for a in names if a != CHANNEL},
        axes_units={a: unit for a in names if a != CHANNEL} if unit else None,
        scale_factors=[{"x": 2**k, "y": 2**k} for k in range(1, pyramid + 1)],
        method=Methods.NEAREST if labels else Methods.RESIZE,
    )
    return tuple(array.shape)


def run(args: argparse.Namespace) -> None:
    """Copy the dataset, then print what was written."""
    target = Path(args.target).expanduser()
    if target.exists() and not args.overwrite:
        raise LabelError(f"{target} already exists; pass --overwrite to replace it.")
    with ExitStack() as stack:
        data = LabelFiles(stack, None).dataset(args.source)
        axes = stored_axes(args.axes, data.ndim)
        size = voxel_size(args.voxel_size, sum(a in axes for a in "xyz"))
        if target.exists():
            shutil.rmtree(target)
        shape = write_ome_zarr(
            AxesView(data, axes), target, size, args.unit, args.labels, args.pyramid
        )
    print(f"wrote {target}: OME-Zarr image {shape}, voxel size {size} (x, y, z) {args.unit or ''}")
