"""``elektronn-labels components``: boundary labels → object IDs for ``target = 'affinity'``.

Affinity training needs an ID per object, but data like ISBI 2012 ships a boundary map
(1 = membrane, 0 = cell interior). The objects are the connected components of the interior,
found within each z-slice (4-connected; sections of anisotropic stacks are too thick to link
through) or, with ``--3d``, in the volume (6-connected). The membrane then goes to the nearest
object (``--grow`` pixels at most, default all of it), so neighbouring cells touch and every
pair across a membrane is a "different objects" pair; voxels left over keep ID 0, which
training treats as unlabelled.
"""

from __future__ import annotations

import argparse
from contextlib import ExitStack

import numpy as np
from scipy import ndimage

from .errors import LabelError
from .h5io import H5Ref, LabelFiles, h5_arg, new_dataset


def interior_components(boundary: np.ndarray, grow: float | None = None) -> np.ndarray:
    """IDs ``1..n`` of the connected components of ``boundary == 0`` (any shape, its own
    connectivity), with boundary voxels given the ID of the nearest component within ``grow``
    voxels (None: all of them), else 0.

    Returns
    -------
    uint32 IDs of ``boundary``'s shape.
    """
    ids, _ = ndimage.label(boundary == 0)
    if not ids.any():
        return ids.astype(np.uint32)
    distance, nearest = ndimage.distance_transform_edt(ids == 0, return_indices=True)
    grown = ids[tuple(nearest)]
    if grow is not None:
        grown[distance > grow] = 0
    return grown.astype(np.uint32)


def convert_components(
    source: H5Ref, target: H5Ref, in_3d: bool = False, grow: float | None = None,
    overwrite: bool = False,
) -> int:  # fmt: skip
    """Write the object IDs of the boundary map ``source`` ``(x, y, z)`` to ``target``.

    Slice by slice (IDs numbered on across slices, so no two slices share one) unless
    ``in_3d``, which reads the whole volume. Returns the number of objects.
    """
    with ExitStack() as stack:
        files = LabelFiles(stack, target.path)
        boundary = files.dataset(source)
        if boundary.ndim != 3 or boundary.dtype.kind not in "biu":
            raise LabelError(
                f"{source} is {boundary.shape} {boundary.dtype}, but a boundary map must be "
                f"(x, y, z) integers (1 = boundary, 0 = interior)."
            )
        shape, dtype = boundary.shape, np.dtype(np.uint32)
        with new_dataset(files, target, shape, dtype, True, overwrite) as out:
            if in_3d:
                ids = interior_components(boundary[()], grow)
                out[()] = ids
                return int(ids.max())
            count = 0
            for z in range(boundary.shape[2]):
                ids = interior_components(boundary[:, :, z], grow)
                out[:, :, z] = np.where(ids > 0, ids + np.uint32(count), 0)
                count += int(ids.max())
            return count


def add_command(commands: argparse._SubParsersAction) -> None:
    """The ``components`` sub-command; :func:`run` is stored as ``args.run``."""
    command = commands.add_parser(
        "components",
        help="boundary map (x, y, z) to object IDs: connected components of the interior",
        description="Object IDs for target='affinity' from a boundary map (1 = boundary, 0 = "
        "interior): the connected components of the interior in each z-slice (or in 3D), "
        "grown into the boundary so that neighbouring objects touch; uint32, 0 = unlabelled.",
    )
    command.add_argument("source", type=h5_arg, help="boundary map, FILE.h5:KEY")
    command.add_argument("target", type=h5_arg, help="output IDs, FILE.h5:KEY")
    command.add_argument(
        "--3d", dest="in_3d", action="store_true",
        help="components in the volume (isotropic data), not per z-slice",
    )  # fmt: skip
    command.add_argument(
        "--grow", type=float, default=None,
        help="give boundary voxels to the nearest object only within this many voxels "
        "(default: all); the rest stays 0, unlabelled",
    )  # fmt: skip
    command.add_argument("--overwrite", action="store_true", help="replace an existing output")
    command.set_defaults(run=run)


def run(args: argparse.Namespace) -> None:
    """Convert, then print what was written."""
    count = convert_components(args.source, args.target, args.in_3d, args.grow, args.overwrite)
    print(f"wrote {args.target}: {count} objects (uint32, 0 = unlabelled)")
