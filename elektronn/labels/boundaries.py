"""``elektronn-labels boundaries``: ID labels to boundary maps.

A CNN cannot learn arbitrary neurite IDs (they could be permuted, and there may be thousands),
so ID ground truth must be turned into a few general classes first: here 0 = interior,
1 = boundary, optionally more classes (e.g. 2 = mitochondria) painted from further volumes.
:func:`boundary_map` works on numpy arrays, :func:`convert_boundaries` on h5 datasets larger
than memory, slab by slab.
"""

from __future__ import annotations

import argparse
from collections import Counter
from collections.abc import Sequence
from contextlib import ExitStack
from dataclasses import dataclass

import h5py
import numpy as np
from scipy import ndimage

from .errors import LabelError
from .h5io import H5Ref, LabelFiles, h5_arg, new_dataset

IGNORE = -1
"""Class of voxels never trained on (the training pipeline ignores negative labels)."""

_SLAB_VOXELS = 1 << 23
"""Voxels per z-slab read at once: bounds the memory of the chunk-wise conversion."""


@dataclass(frozen=True)
class BoundarySpec:
    """How ID labels become classes; validated once, shared by in-memory and chunked paths.

    Parameters
    ----------
    mode
        ``"2d"``: neighbours only within each z-slice (anisotropic data, where IDs of adjacent
        sections are not reliably aligned); ``"3d"``: also across z.
    thickness
        Boundary thickness on each side of an interface; ``n`` dilates the one-voxel boundary
        by ``n - 1`` voxels (in-plane for 2D, in 3D for 3D).
    background_id
        ID of voxels that are never boundary themselves (class 0), while objects touching
        them still get a boundary on their side: outlines of objects on a background.
    ignore_ids
        IDs of unlabelled voxels: they become :data:`IGNORE` and, being unknown, do not make
        their neighbours boundary. Needs int16 output.
    gap_id
        ID drawn in the gaps between objects (membranes as ID 0): those voxels are boundary,
        as are both sides of interfaces where two objects touch (:func:`gap_boundaries`).
    """

    mode: str = "2d"
    thickness: int = 1
    background_id: int | None = None
    ignore_ids: tuple[int, ...] = ()
    gap_id: int | None = None

    def __post_init__(self) -> None:
        if self.mode not in ("2d", "3d"):
            raise LabelError(f"mode must be '2d' or '3d', not {self.mode!r}.")
        whole = isinstance(self.thickness, (int, np.integer)) and not isinstance(
            self.thickness, bool
        )
        if not whole or self.thickness < 1:
            raise LabelError(
                f"thickness must be a whole number >= 1 (1 = one voxel), not {self.thickness!r}."
            )
        if self.background_id is not None and self.background_id in self.ignore_ids:
            raise LabelError(
                f"ID {self.background_id} cannot be both the background ID and an ignored ID."
            )
        if self.gap_id is not None and self.gap_id in (self.background_id, *self.ignore_ids):
            raise LabelError(
                f"ID {self.gap_id} cannot be the gap ID (--gap-id: boundary) and also the "
                f"background ID or an ignored ID; give it one role."
            )

    @property
    def axes(self) -> tuple[int, ...]:
        """Axes of ``(x, y, z)`` along which neighbours are compared."""
        return (0, 1) if self.mode == "2d" else (0, 1, 2)

    @property
    def halo(self) -> int:
        """Extra z-slices a slab needs on each side to be computed exactly as in one piece."""
        return 0 if self.mode == "2d" else self.thickness

    @property
    def dtype(self) -> np.dtype:
        """uint8 keeps files small; int16 only when -1 (ignore) must be stored."""
        return np.dtype(np.int16 if self.ignore_ids else np.uint8)

    def structure(self) -> np.ndarray:
        """4-connected (2D, within slices) or 6-connected (3D) neighbourhood for dilation."""
        if self.mode == "2d":
            return ndimage.generate_binary_structure(2, 1)[:, :, None]
        return ndimage.generate_binary_structure(3, 1)


def boundary_map(
    ids: np.ndarray,
    mode: str = "2d",
    thickness: int = 1,
    *,
    background_id: int | None = None,
    ignore_ids: Sequence[int] = (),
    gap_id: int | None = None,
    extras: Sequence[tuple[np.ndarray, int]] = (),
) -> np.ndarray:
    """Convert an ``(x, y, z)`` ID-label volume to a class map: 0 interior, 1 boundary.

    A voxel is boundary where one of its 4 (2D mode, within its z-slice) or 6 (3D mode)
    neighbours carries another ID, so both sides of an interface are marked; voxels at the
    volume's border are not boundary just for lying there. ID 0 is an ordinary ID unless it
    is given as ``background_id``, ``gap_id`` or in ``ignore_ids``.

    Parameters
    ----------
    ids
        Integer ID labels, shape ``(x, y, z)`` (use ``ids[..., None]`` for one 2D image).
    mode, thickness, background_id, ignore_ids, gap_id
        See :class:`BoundarySpec`.
    extras
        ``(mask, class)`` pairs: voxels where ``mask`` (same shape as ``ids``) is nonzero get
        ``class`` (2..255), overriding boundary and ignore; later pairs override earlier ones.

    Returns
    -------
    numpy.ndarray
        uint8 classes of ``ids``' shape, or int16 with -1 for ignored voxels.
    """
    spec = BoundarySpec(mode, thickness, background_id, tuple(ignore_ids), gap_id)
    ids = np.asarray(ids)
    _check_ids(ids.shape, ids.dtype, "the ID array")
    labels = boundary_classes(ids, spec)
    for mask, cls in extras:
        _check_extra(np.shape(mask), ids.shape, cls, "an extra mask")
        paint_extra(labels, np.asarray(mask), cls)
    return labels


def boundary_classes(ids: np.ndarray, spec: BoundarySpec) -> np.ndarray:
    """Boundary (1), interior (0) and ignore (-1) classes of one already-checked volume."""
    known = ~np.isin(ids, spec.ignore_ids) if spec.ignore_ids else None
    if spec.gap_id is None:
        edge = _interfaces(ids, spec.axes, known)
    else:
        edge = gap_boundaries(ids, spec.gap_id, spec.axes, known)
    if spec.thickness > 1:  # iterations=0 would mean "until nothing changes"
        edge = ndimage.binary_dilation(
            edge, structure=spec.structure(), iterations=spec.thickness - 1
        )
    if spec.background_id is not None:
        edge &= ids != spec.background_id
    labels = edge.astype(spec.dtype)
    if known is not None:
        labels[~known] = IGNORE
    return labels


def gap_boundaries(
    ids: np.ndarray, gap_id: int, axes: Sequence[int], known: np.ndarray | None
) -> np.ndarray:
    """Boundary of ID labels whose objects are separated by a gap of ``gap_id``.

    The common export of membrane segmentations (Fiji, ilastik, ``ndimage.label(membrane ==
    0)``) draws the membranes as ID 0 between the objects: the gap is the boundary, and where
    two objects touch without one, both sides are. An object voxel next to the gap stays
    interior; by default it would be boundary too, giving hollow double outlines.
    """
    gap = ids == gap_id
    objects = ~gap if known is None else known & ~gap
    edge = _interfaces(ids, axes, objects)
    return edge | (gap if known is None else gap & known)


def paint_extra(labels: np.ndarray, mask: np.ndarray, cls: int) -> None:
    """Give ``cls`` to the voxels where ``mask`` is nonzero (in place)."""
    labels[mask != 0] = cls


def _interfaces(ids: np.ndarray, axes: Sequence[int], known: np.ndarray | None) -> np.ndarray:
    """Voxels with a differently labelled neighbour along ``axes``; unknown pairs don't count."""
    edge = np.zeros(ids.shape, dtype=bool)
    for axis in axes:
        lower = _along(axis, ids.ndim, slice(None, -1))
        upper = _along(axis, ids.ndim, slice(1, None))
        differ = ids[lower] != ids[upper]
        if known is not None:
            differ &= known[lower] & known[upper]
        edge[lower] |= differ
        edge[upper] |= differ
    return edge


def _along(axis: int, ndim: int, part: slice) -> tuple[slice, ...]:
    """Index that applies ``part`` to ``axis`` and takes everything along the other axes."""
    index = [slice(None)] * ndim
    index[axis] = part
    return tuple(index)


def _check_ids(shape: tuple[int, ...], dtype: np.dtype, where: str) -> None:
    """ID labels must be an integer ``(x, y, z)`` volume: IDs are compared for equality."""
    if len(shape) != 3 or 0 in shape:
        raise LabelError(
            f"The ID labels in {where} have shape {shape}, but must be a non-empty "
            f"(x, y, z) volume. Stack 2D label images first (elektronn-labels stack ... --labels), "
            f"or add a z axis of length 1."
        )
    if dtype.kind not in "biu":
        raise LabelError(
            f"The ID labels in {where} have dtype {dtype}, but IDs must be integers; "
            f"round and convert them (e.g. ids.astype(np.uint32)) first."
        )


def _check_extra(shape: tuple[int, ...], ids_shape: tuple[int, ...], cls: int, where: str) -> None:
    """An extra mask must cover the ID volume voxel for voxel, and its class must fit uint8."""
    if tuple(shape) != tuple(ids_shape):
        raise LabelError(
            f"The extra class volume {where} has shape {tuple(shape)}, but the ID labels have "
            f"shape {tuple(ids_shape)}; both must be (x, y, z) of the same size."
        )
    if not 2 <= cls <= 255:
        raise LabelError(
            f"Extra class {cls} for {where} must be 2..255 (0 is interior, 1 is boundary)."
        )


def convert_boundaries(
    source: H5Ref,
    target: H5Ref,
    spec: BoundarySpec,
    extras: Sequence[tuple[H5Ref, int]] = (),
    slab_slices: int | None = None,
    overwrite: bool = False,
) -> Counter[int]:
    """Write the class map of the ID volume ``source`` to ``target`` (gzip), slab by slab.

    Only ``slab_slices`` z-slices plus :attr:`BoundarySpec.halo` on either side are in memory
    at a time, so volumes larger than RAM can be converted; the result equals
    :func:`boundary_map` on the whole volume.

    Parameters
    ----------
    source, target
        Input ID labels ``(x, y, z)`` and output dataset (may be in the same file).
    spec
        Boundary options.
    extras
        ``(dataset, class)`` pairs, as for :func:`boundary_map`.
    slab_slices
        z-slices per slab; by default about 8 M voxels' worth.
    overwrite
        Replace ``target`` if it exists (otherwise that is an error).

    Returns
    -------
    collections.Counter
        Number of voxels per class, e.g. for choosing class weights.
    """
    with ExitStack() as stack:
        files = LabelFiles(stack, target.path)
        ids = files.dataset(source)
        _check_ids(ids.shape, ids.dtype, str(source))
        extra_sets = [(files.dataset(ref), cls) for ref, cls in extras]
        for (dataset, cls), (ref, _) in zip(extra_sets, extras, strict=True):
            _check_extra(dataset.shape, ids.shape, cls, str(ref))
        n_z = ids.shape[2]
        step = slab_slices or max(1, _SLAB_VOXELS // (ids.shape[0] * ids.shape[1]))
        counts: Counter[int] = Counter()
        with new_dataset(files, target, ids.shape, spec.dtype, True, overwrite) as out:
            for z0 in range(0, n_z, step):
                z1 = min(n_z, z0 + step)
                labels = _boundary_slab(ids, spec, z0, z1)
                for dataset, cls in extra_sets:
                    paint_extra(labels, dataset[:, :, z0:z1], cls)
                out[:, :, z0:z1] = labels
                values, numbers = np.unique(labels, return_counts=True)
                counts.update(dict(zip(values.tolist(), numbers.tolist(), strict=True)))
        return counts


def _boundary_slab(ids: h5py.Dataset, spec: BoundarySpec, z0: int, z1: int) -> np.ndarray:
    """Classes of z-slices ``z0:z1``, computed from the slab widened by the halo."""
    lo = max(0, z0 - spec.halo)
    hi = min(ids.shape[2], z1 + spec.halo)
    return boundary_classes(ids[:, :, lo:hi], spec)[:, :, z0 - lo : z1 - lo]


def add_command(commands: argparse._SubParsersAction) -> None:
    """The ``boundaries`` sub-command; :func:`run` is stored as ``args.run``."""
    bound = commands.add_parser(
        "boundaries",
        help="ID-label volume (x, y, z) to a boundary map (0 interior, 1 boundary)",
        description="A voxel is boundary (1) where a 4-neighbour (--2d, within its z-slice) or "
        "6-neighbour (--3d) carries another ID. Output is gzip-compressed uint8 (int16 with "
        "-1 for --ignore-id). Classes must end up consecutive (0..n_lab-1) for training.",
    )
    bound.add_argument("source", type=h5_arg, help="ID labels, FILE.h5:KEY")
    bound.add_argument("target", type=h5_arg, help="output, FILE.h5:KEY")
    dims = bound.add_mutually_exclusive_group()
    dims.add_argument(
        "--2d",
        dest="mode",
        action="store_const",
        const="2d",
        default="2d",
        help="neighbours within each z-slice only (default; anisotropic data)",
    )
    dims.add_argument(
        "--3d", dest="mode", action="store_const", const="3d", help="neighbours also across z"
    )
    bound.add_argument(
        "--thickness",
        type=int,
        default=1,
        help="boundary voxels on each side of an interface (default 1)",
    )
    bound.add_argument(
        "--extra",
        type=h5_arg,
        action="append",
        default=[],
        metavar="FILE.h5:KEY",
        help="volume whose nonzero voxels get an extra class (repeatable)",
    )
    bound.add_argument(
        "--extra-class",
        type=int,
        action="append",
        default=[],
        help="class of each --extra, in order (default 2, 3, ...)",
    )
    bound.add_argument(
        "--background-id",
        type=int,
        default=None,
        help="ID that is never boundary itself (objects on a background)",
    )
    bound.add_argument(
        "--ignore-id",
        type=int,
        action="append",
        default=[],
        help="ID of unlabelled voxels, written as -1 (repeatable)",
    )
    bound.add_argument(
        "--gap-id",
        type=int,
        default=None,
        help="ID drawn between objects, e.g. 0 for membranes exported as gaps (Fiji, ilastik, "
        "ndimage.label(membrane == 0)): its voxels become boundary",
    )
    bound.add_argument("--overwrite", action="store_true", help="replace an existing output")
    bound.set_defaults(run=run)


def run(args: argparse.Namespace) -> None:
    """Convert, then print the class shares (a guide for class weights)."""
    classes = args.extra_class or list(range(2, 2 + len(args.extra)))
    if len(classes) != len(args.extra):
        raise LabelError(
            f"Give --extra-class once per --extra (got {len(args.extra)} --extra and "
            f"{len(args.extra_class)} --extra-class), or leave it out for classes 2, 3, ..."
        )
    spec = BoundarySpec(
        args.mode, args.thickness, args.background_id, tuple(args.ignore_id), args.gap_id
    )
    extras = list(zip(args.extra, classes, strict=True))
    counts = convert_boundaries(args.source, args.target, spec, extras, overwrite=args.overwrite)
    total = sum(counts.values())
    shares = ", ".join(f"class {c}: {100 * n / total:.2f} %" for c, n in sorted(counts.items()))
    print(f"wrote {args.target} ({spec.dtype}, {total} voxels; {shares})")
