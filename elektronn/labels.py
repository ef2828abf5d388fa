"""Preparing training labels: ID labels to boundary maps, and 2D image files to h5 cubes.

A CNN cannot learn arbitrary neurite IDs (they could be permuted, and there may be thousands),
so ID ground truth must be turned into a few general classes first: here 0 = interior,
1 = boundary, optionally more classes (e.g. 2 = mitochondria) painted from further volumes.

Axis convention
---------------
Volumes are ``(x, y, z)`` (images with channels ``(ch, x, y, z)``), as everywhere in
elektronn. When 2D image files are stacked, an image's row index becomes x and its column
index y, i.e. numpy's first axis of the loaded image stays the first axis of the cube; so
``plt.imshow(cube[:, :, z])`` shows slice z in the orientation of the original file, and
label images stacked the same way stay registered with their raw images.

Command line (``python -m elektronn.labels`` or ``elektronn-labels``)::

    elektronn-labels boundaries ids.h5:seg labels.h5:lab --2d --thickness 2 \\
        --extra mito.h5:mito --ignore-id 0
    elektronn-labels stack 'raw/*.png' raw.h5:raw
    elektronn-labels stack gt_folder/ ids.h5:seg --labels

Bad input (missing file or key, wrong shape or dtype) is reported as one paragraph on stderr
with exit code 2.
"""

from __future__ import annotations

import argparse
import glob
import os
import re
import sys
from collections import Counter
from collections.abc import Iterator, Sequence
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import NamedTuple

import h5py
import numpy as np
from scipy import ndimage

IGNORE = -1
"""Class of voxels never trained on (the training pipeline ignores negative labels)."""

IMAGE_SUFFIXES = (".png", ".tif", ".tiff")
"""Files a folder given to ``stack`` is searched for (case-insensitive)."""

_SLAB_VOXELS = 1 << 23
"""Voxels per z-slab read at once: bounds the memory of the chunk-wise conversion."""

_CHUNK_XY = 256
"""Largest x/y extent of an h5 chunk of the written datasets (z-extent is one slice)."""


class LabelError(ValueError):
    """Input that the label tools cannot use as given.

    The message is one readable paragraph naming the file, key or image and what was
    expected; the command line prints it without a traceback and exits with code 2.
    """


class H5Ref(NamedTuple):
    """One h5 dataset, as the command line names it: ``FILE.h5:KEY``."""

    path: str
    key: str

    @classmethod
    def parse(cls, text: str) -> H5Ref:
        """Split ``FILE:KEY`` at the last colon (so a Windows drive letter stays in the path)."""
        path, sep, key = text.rpartition(":")
        if not sep or not path or not key:
            raise LabelError(
                f"'{text}' does not name an h5 dataset: write FILE.h5:KEY, e.g. labels.h5:lab."
            )
        return cls(path, key)

    def __str__(self) -> str:
        return f"{self.path}:{self.key}"


# ---------------------------------------------------------------------------------------------
# Boundary maps on numpy arrays
# ---------------------------------------------------------------------------------------------


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


# ---------------------------------------------------------------------------------------------
# h5 input and output
# ---------------------------------------------------------------------------------------------


class _H5Files:
    """Open h5 files once each: the output file read-write, every other file read-only.

    HDF5 refuses to open one file twice with different modes, and users do keep IDs, extra
    volumes and the result in one file.
    """

    def __init__(self, stack: ExitStack, output: str) -> None:
        self._stack = stack
        self._output = os.path.realpath(output)
        self._open: dict[str, h5py.File] = {}

    def get(self, path: str) -> h5py.File:
        """The open file at ``path``; a missing input is an error, a missing output is created."""
        real = os.path.realpath(path)
        if real not in self._open:
            writing = real == self._output
            if not writing and not os.path.isfile(path):
                raise LabelError(f"The file {path} does not exist.")
            try:
                self._open[real] = self._stack.enter_context(
                    h5py.File(path, "a" if writing else "r")
                )
            except OSError as exc:
                action = "opened for writing" if writing else "read"
                raise LabelError(
                    f"The file {path} cannot be {action} as an h5 file: {exc}."
                ) from None
        return self._open[real]

    def dataset(self, ref: H5Ref) -> h5py.Dataset:
        """The dataset ``ref`` names, or an error listing what the file holds instead."""
        h5 = self.get(ref.path)
        node = h5.get(ref.key)
        if not isinstance(node, h5py.Dataset):
            keys = ", ".join(repr(k) for k in h5.keys()) or "none"
            raise LabelError(
                f"The file {ref.path} has no dataset '{ref.key}'; the keys in it are: {keys}."
            )
        return node


@contextmanager
def _new_dataset(
    files: _H5Files,
    target: H5Ref,
    shape: tuple[int, ...],
    dtype: np.dtype,
    compress: bool,
    overwrite: bool,
) -> Iterator[h5py.Dataset]:
    """Create ``target``, written slice-wise; removed again if writing fails half-way.

    Chunks are one z-slice deep because both tools write slice by slice; gzip is used for
    labels, which the training docs recommend compressing (they shrink by large factors).
    """
    h5 = files.get(target.path)
    if target.key in h5:
        if not overwrite:
            raise LabelError(
                f"{target} already exists; choose another key or pass --overwrite to replace it."
            )
        del h5[target.key]
    chunks = tuple(min(n, _CHUNK_XY) for n in shape[:-1]) + (1,)
    dataset = h5.create_dataset(
        target.key,
        shape=shape,
        dtype=dtype,
        chunks=chunks,
        compression="gzip" if compress else None,
    )
    try:
        yield dataset
    except BaseException:
        del h5[target.key]
        raise


# ---------------------------------------------------------------------------------------------
# boundaries: chunk-wise h5 conversion
# ---------------------------------------------------------------------------------------------


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
        files = _H5Files(stack, target.path)
        ids = files.dataset(source)
        _check_ids(ids.shape, ids.dtype, str(source))
        extra_sets = [(files.dataset(ref), cls) for ref, cls in extras]
        for (dataset, cls), (ref, _) in zip(extra_sets, extras, strict=True):
            _check_extra(dataset.shape, ids.shape, cls, str(ref))
        n_z = ids.shape[2]
        step = slab_slices or max(1, _SLAB_VOXELS // (ids.shape[0] * ids.shape[1]))
        counts: Counter[int] = Counter()
        with _new_dataset(files, target, ids.shape, spec.dtype, True, overwrite) as out:
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


# ---------------------------------------------------------------------------------------------
# stack: 2D image files to an h5 cube
# ---------------------------------------------------------------------------------------------


def natural_key(text: str) -> list[str | int]:
    """Sort key that orders ``img2`` before ``img10`` (digit runs compare as numbers).

    ``re.split`` with a group alternates text and digit runs, so positions never mix types.
    """
    return [int(part) if i % 2 else part.lower() for i, part in enumerate(re.split(r"(\d+)", text))]


def image_files(source: str) -> list[str]:
    """The images of a folder (png/tif), or the files a glob pattern matches, sorted naturally."""
    source = os.path.expanduser(source)
    if os.path.isdir(source):
        names = [str(p) for p in Path(source).iterdir() if p.suffix.lower() in IMAGE_SUFFIXES]
        if not names:
            raise LabelError(
                f"The folder {source} contains no image files ({', '.join(IMAGE_SUFFIXES)})."
            )
    else:
        names = [name for name in glob.glob(source) if os.path.isfile(name)]
        if not names:
            raise LabelError(
                f"'{source}' is neither a folder nor a pattern matching any files "
                f"(quote patterns such as 'raw/*.png' so the shell passes them on)."
            )
    return sorted(names, key=natural_key)


def read_image(path: str, labels: bool = False) -> np.ndarray:
    """Read one 2D image as ``(x, y)`` (row = x, column = y) or ``(ch, x, y)``.

    A fully opaque alpha channel is dropped and grey colour images (R == G == B, as
    ``matplotlib.pyplot.imsave`` writes them) become one channel, so that a grey stack is
    ``(x, y, z)``. Values keep their stored dtype (the training pipeline scales integers by
    their dtype's maximum itself).

    Parameters
    ----------
    path
        A png (read with Pillow, which matplotlib requires) or tif (needs ``tifffile``).
    labels
        Label image: must end up with one channel and integer values; palette indices of
        palette PNGs are taken as the labels instead of their colours.
    """
    raw = _read_tiff(path) if path.lower().endswith((".tif", ".tiff")) else _read_pil(path, labels)
    image = _drop_redundant_channels(raw, path)
    if labels:
        return _as_label_image(image, path)
    return image if image.ndim == 2 else np.moveaxis(image, -1, 0)


def _read_pil(path: str, labels: bool) -> np.ndarray:
    """PNG (or anything Pillow reads) with exact integer values, unlike matplotlib's floats."""
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(path) as image:
            if image.mode == "P" and not labels:
                image = image.convert("RGBA")
            return np.asarray(image)
    except (OSError, UnidentifiedImageError) as exc:
        raise LabelError(f"The file {path} cannot be read as an image: {exc}.") from None


def _read_tiff(path: str) -> np.ndarray:
    """One-page TIFF via tifffile, which reads the 16-bit and float files EM setups produce."""
    try:
        import tifffile
    except ImportError:
        raise LabelError(
            f"Reading TIFF files such as {path} needs the tifffile package: pip install tifffile"
        ) from None
    try:
        with tifffile.TiffFile(path) as tiff:
            n_pages = len(tiff.pages)
            image = tiff.asarray(key=0)
    except (OSError, ValueError) as exc:  # tifffile.TiffFileError is a ValueError
        raise LabelError(f"The file {path} cannot be read as a TIFF image: {exc}.") from None
    if n_pages > 1:
        raise LabelError(
            f"{path} is a multi-page TIFF ({n_pages} pages); stack needs one 2D image per "
            f"file (a TIFF stack is already a cube: read it with tifffile.imread and write it "
            f"with h5py)."
        )
    return image


def _drop_redundant_channels(image: np.ndarray, path: str) -> np.ndarray:
    """``(rows, cols[, ch])`` without an opaque alpha channel and without grey duplicates."""
    if image.ndim == 2:
        return image
    if image.ndim != 3 or image.shape[-1] not in (2, 3, 4):
        raise LabelError(
            f"The image {path} has shape {image.shape}; expected a 2D image, grey (rows, cols) "
            f"or colour (rows, cols, 3 or 4)."
        )
    if image.shape[-1] in (2, 4) and np.all(image[..., -1] == _opaque(image.dtype)):
        image = image[..., :-1]
    if image.shape[-1] == 1 or (image.shape[-1] == 3 and np.all(image == image[..., :1])):
        return image[..., 0]
    return image


def _opaque(dtype: np.dtype) -> float:
    """Alpha value of a fully opaque pixel in ``dtype``."""
    return float(np.iinfo(dtype).max) if dtype.kind in "iu" else 1.0


def _as_label_image(image: np.ndarray, path: str) -> np.ndarray:
    """Labels are one integer channel: colours or fractions cannot be class IDs."""
    if image.ndim != 2:
        raise LabelError(
            f"The label image {path} has {image.shape[-1]} differing colour channels; label "
            f"images must be grey or palette images with one integer value per pixel."
        )
    if image.dtype == np.bool_:
        return image.astype(np.uint8)
    if image.dtype.kind not in "iu":
        raise LabelError(
            f"The label image {path} has dtype {image.dtype}; labels must be integers."
        )
    return image


def stack_images(
    files: Sequence[str], target: H5Ref, labels: bool = False, overwrite: bool = False
) -> tuple[tuple[int, ...], np.dtype]:
    """Write 2D images as the z-slices of an h5 cube ``(x, y, z)`` or ``(ch, x, y, z)``.

    Images are read and written one at a time, so the stack never has to fit in memory.
    Every image must have the shape and dtype of the first; labels are gzip-compressed.

    Returns
    -------
    tuple
        Shape and dtype of the written dataset.
    """
    first = read_image(files[0], labels)
    shape = (*first.shape, len(files))
    with ExitStack() as stack:
        h5_files = _H5Files(stack, target.path)
        with _new_dataset(h5_files, target, shape, first.dtype, labels, overwrite) as out:
            for z, path in enumerate(files):
                image = first if z == 0 else read_image(path, labels)
                _check_same(image, first, path, files[0])
                out[..., z] = image
    return shape, first.dtype


def _check_same(image: np.ndarray, first: np.ndarray, path: str, first_path: str) -> None:
    """Name the first image that does not fit the cube, before it is half-written."""
    if image.shape != first.shape or image.dtype != first.dtype:
        raise LabelError(
            f"The image {path} is {_describe(image)}, but the first image {first_path} is "
            f"{_describe(first)}; all images of a stack must agree (x = row, y = column)."
        )


def _describe(image: np.ndarray) -> str:
    """Shape and dtype in the cube's axis names, as the mismatch error shows them."""
    layout = "(x, y)" if image.ndim == 2 else "(ch, x, y)"
    return f"{layout} = {image.shape} {image.dtype}"


# ---------------------------------------------------------------------------------------------
# command line
# ---------------------------------------------------------------------------------------------


def _h5_arg(text: str) -> H5Ref:
    """:meth:`H5Ref.parse` for argparse, which shows only ArgumentTypeError messages."""
    try:
        return H5Ref.parse(text)
    except LabelError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def _parser() -> argparse.ArgumentParser:
    """Sub-commands ``boundaries`` and ``stack``; each stores its runner as ``args.run``."""
    parser = argparse.ArgumentParser(
        prog="elektronn-labels",
        description="Prepare training labels: ID labels to boundary maps, 2D images to h5 cubes.",
    )
    commands = parser.add_subparsers(dest="command", required=True)

    bound = commands.add_parser(
        "boundaries",
        help="ID-label volume (x, y, z) to a boundary map (0 interior, 1 boundary)",
        description="A voxel is boundary (1) where a 4-neighbour (--2d, within its z-slice) or "
        "6-neighbour (--3d) carries another ID. Output is gzip-compressed uint8 (int16 with "
        "-1 for --ignore-id). Classes must end up consecutive (0..n_lab-1) for training.",
    )
    bound.add_argument("source", type=_h5_arg, help="ID labels, FILE.h5:KEY")
    bound.add_argument("target", type=_h5_arg, help="output, FILE.h5:KEY")
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
        type=_h5_arg,
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
    bound.set_defaults(run=_run_boundaries)

    stack = commands.add_parser(
        "stack",
        help="stack a folder of 2D images into an h5 cube (x, y, z)",
        description="Stack 2D images (png; tif with tifffile), sorted naturally (img2 before "
        "img10), as z-slices of (x, y, z), or (ch, x, y, z) for colour; image row = x, "
        "column = y. Grey RGBA images (R == G == B, opaque) become one channel.",
    )
    stack.add_argument("source", help="folder of images, or a quoted glob like 'raw/*.png'")
    stack.add_argument("target", type=_h5_arg, help="output, FILE.h5:KEY")
    stack.add_argument(
        "--labels",
        action="store_true",
        help="label images: one integer channel, palette indices, gzip",
    )
    stack.add_argument("--overwrite", action="store_true", help="replace an existing output")
    stack.set_defaults(run=_run_stack)
    return parser


def _run_boundaries(args: argparse.Namespace) -> None:
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


def _run_stack(args: argparse.Namespace) -> None:
    """Stack the images, then print what was written."""
    files = image_files(args.source)
    shape, dtype = stack_images(files, args.target, args.labels, args.overwrite)
    print(f"wrote {args.target}: {len(files)} images, shape {shape} {dtype}")


def main(argv: Sequence[str] | None = None) -> int:
    """``elektronn-labels {boundaries,stack} ...``; bad input gives exit code 2."""
    args = _parser().parse_args(argv)
    try:
        args.run(args)
    except LabelError as exc:
        print(f"elektronn-labels: error: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
