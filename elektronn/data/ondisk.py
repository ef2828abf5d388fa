"""Cubes that stay on disk (``data_in_memory=False``): every patch reads only its own box.

For data larger than memory. A :class:`DiskCube` keeps the file names and the geometry of the
in-memory loading steps (z-range, centred registration, down-sampling, border crop) and applies
the very same functions of :mod:`.volumes`, :mod:`.registration` and :mod:`.preprocess` to each
box it reads: the image box of an unwarped patch, the source box of a warped one
(:func:`.warping.source_box`), and the label region. So patches are identical to those of the
in-memory mode for the same random stream.

Files are opened lazily, once per process: an h5py handle must not be used across ``fork``
(HDF5's state belongs to the process that opened the file), so a background worker notices the
new process id, closes its inherited copies and opens its own.

Whole-volume features, per option:

* ``pre_process='standardise'``: supported; the statistics stream over the images in z-slabs
  at start (one read of the images), then every box is standardised as it is read.
* ``n_lab=None`` and the check of class labels against ``n_lab`` (target 'nll'): supported; one
  streaming pass over the labels at start, which also checks every (registered) label value.
  Regression labels are checked for NaN per box.
* ``downsample_xy``: supported; each box is read at full resolution (``factor**2`` times the
  voxels) and down-sampled on the fly.
* img-scalar ``border_mode``: 'keep', 'crop' and 'reject' are supported (pure geometry);
  '0-pad', 'c-pad' and 'mirror' need the whole images in memory and raise a :class:`DataError`
  when an image would have to be padded. img-scalar labels (one per slice) are held in memory.
* NaN in images: refused when a box containing one is read (in memory: at load time).
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import Any

import numpy as np

from .errors import DataError
from .geometry import PatchGeometry
from .loading import (
    Box,
    Source,
    Volume,
    check_scalar_count,
    downsample_factor,
    read_labels,
    registration_offset,
    select_z,
)
from .preprocess import centred_multiple, downsample_image, downsample_labels, normalise
from .registration import PAD_MODES, border_crop, checked_registration
from .volumes import (
    IGNORE,
    close_file,
    convert_labels,
    dataset_of,
    image_to_internal,
    intensity_scale,
    labels_to_internal,
    open_file,
    shape_only,
    stored_index,
    to_float32,
)

LABEL_DTYPES = {"regression": np.float32, "affinity": np.int64}
"""Label dtype of a box read from disk per target (int16 classes otherwise); object IDs are
renumbered box by box, so they take the widest type."""


class OpenFiles:
    """Datasets opened on first use, once per process (never an h5py handle across fork)."""

    def __init__(self) -> None:
        self._pid = os.getpid()
        self._handles: dict[str, Any] = {}
        self._datasets: dict[tuple[str, str], Any] = {}

    def dataset(self, path: str, key: str, what: str, zchxy_order: bool = False) -> Any:
        """The open dataset ``key`` of ``path`` ("image" or "label" for messages), arrays
        with named axes in the user order of ``zchxy_order``."""
        if self._pid != os.getpid():
            self._forget_inherited()
        if (path, key) not in self._datasets:
            if path not in self._handles:
                self._handles[path] = open_file(path, what)
            self._datasets[path, key] = dataset_of(
                self._handles[path], path, key, what, zchxy_order
            )
        return self._datasets[path, key]

    def _forget_inherited(self) -> None:
        """In a forked child: close the copies of the parent's handles (only this process's
        descriptors are affected), so that the files are opened afresh here."""
        self._datasets.clear()
        for handle in self._handles.values():
            close_file(handle)
        self._handles.clear()
        self._pid = os.getpid()


@dataclass(frozen=True)
class BoxMap:
    """Maps a box of the cube to the box of the stored volume it is computed from.

    The stored volume is in the internal layout ``(z, x, y)`` before the z-range is selected.
    Per axis: shift by ``outer`` (img-scalar border crop), undo the down-sampling of x and y
    (each voxel covers ``factor`` stored voxels, counted from ``centring``, the start of the
    centred multiple of ``factor``), shift by ``inner`` (registration crop and z-range start).
    """

    outer: tuple[int, int, int]
    factor: int
    centring: tuple[int, int]
    inner: tuple[int, int, int]

    def __call__(self, box: Box) -> Box:
        z, x, y = _shift(box, self.outer)
        x, y = (
            slice(c + s.start * self.factor, c + s.stop * self.factor)
            for s, c in zip((x, y), self.centring, strict=True)
        )
        return _shift((z, x, y), self.inner)


@dataclass(frozen=True)
class StoredArray:
    """A stored dataset (image or labels) and its layout, read box by box."""

    path: str
    key: str
    what: str
    zchxy_order: bool
    n_axes: int

    def read(self, files: OpenFiles, box: Box) -> np.ndarray:
        """The stored data of an internal-layout box ``(z, x, y)``, in stored axis order."""
        dataset = files.dataset(self.path, self.key, self.what, self.zchxy_order)
        try:
            return np.asarray(dataset[stored_index(box, self.zchxy_order, self.n_axes)])
        except OSError as exc:
            raise DataError(f"The {self.what} file {self.path} cannot be read: {exc}.") from None


@dataclass(frozen=True)
class DiskLabels:
    """img-img labels on disk, registered to the image box by box.

    Attributes
    ----------
    to_full
        Cube box → registered box at full resolution (undoes the down-sampling).
    target_slices
        Where the registration puts the stored labels in the registered cube (full resolution).
    shift
        Registered position → position in the stored labels (label crop, z-range start).
    """

    stored: StoredArray
    to_full: BoxMap
    target_slices: Box
    shift: tuple[int, int, int]
    target: str
    dtype: np.dtype
    unlabelled_id: int = 0

    def read(self, files: OpenFiles, box: Box) -> np.ndarray:
        """Registered labels of a cube box: IGNORE where the image has no label."""
        full = self.to_full(box)
        out = np.full(tuple(s.stop - s.start for s in full), IGNORE, self.dtype)
        kept = _intersect(full, self.target_slices)
        if all(s.stop > s.start for s in kept):
            path, key = self.stored.path, self.stored.key
            raw = self.stored.read(files, _shift(kept, self.shift))
            n_dim = 3  # only img-scalar labels depend on it
            labels = labels_to_internal(raw, "img-img", n_dim, self.stored.zchxy_order, path, key)
            labels = convert_labels(labels, self.target, path, key, self.unlabelled_id)
            out[_shift(kept, tuple(-s.start for s in full))] = labels
        factor = self.to_full.factor
        return downsample_labels(out, factor) if factor > 1 else out


@dataclass(eq=False)
class DiskCube(Volume):
    """A training cube whose image (and img-img labels) are read from disk box by box.

    Attributes
    ----------
    stored_image
        The image dataset; ``to_stored`` maps cube boxes onto it.
    scale
        Grey-value factor of the stored dtype (:func:`.volumes.intensity_scale`).
    disk_labels
        img-img labels on disk, or None when ``labels`` holds the (img-scalar) labels.
    standardisation
        ``(mean, std)`` once :meth:`standardise` was called.
    """

    name: str
    label_file: str
    stored_image: StoredArray
    to_stored: BoxMap
    scale: float
    cube_shape: tuple[int, int, int]
    channels: int
    label_type: np.dtype
    files: OpenFiles
    labels: np.ndarray | None = None
    disk_labels: DiskLabels | None = None
    info: np.ndarray | None = None
    standardisation: tuple[float, float] | None = None

    @property
    def shape(self) -> tuple[int, int, int]:
        return self.cube_shape

    @property
    def n_ch(self) -> int:
        return self.channels

    @property
    def label_dtype(self) -> np.dtype:
        return self.label_type

    def _image_box(self, box: Box) -> np.ndarray:
        path, key = self.stored_image.path, self.stored_image.key
        stored = self.stored_image.read(self.files, self.to_stored(box))
        image = image_to_internal(stored, self.stored_image.zchxy_order, path, key)
        if self.to_stored.factor > 1:
            image = downsample_image(image, self.to_stored.factor)
        out = to_float32(
            image, self.scale, path, key, np.empty(image.shape, np.float32), box[0].start
        )
        if self.standardisation is not None:
            normalise(out, *self.standardisation)
        return out

    def _label_box(self, box: Box) -> np.ndarray:
        return self.disk_labels.read(self.files, box)

    def standardise(self, mean: float, std: float) -> None:
        self.standardisation = (mean, std)


def open_disk_cube(
    d_file: tuple[str, str],
    l_file: tuple[str, str],
    data_path: str,
    label_path: str,
    *,
    mode: str,
    target: str,
    geometry: PatchGeometry,
    zchxy_order: bool,
    downsample_xy: int,
    border_mode: str,
    unlabelled_id: int = 0,
) -> DiskCube:
    """The on-disk counterpart of :func:`.loading.load_cube`: same arguments, same checks.

    Only shapes are read here (and img-scalar labels): the stored image goes through the
    in-memory layout and z-range checks as a zero-memory stand-in of its shape.
    """
    source = Source.from_entries(d_file, l_file, data_path, label_path)
    files = OpenFiles()
    dataset = files.dataset(source.image_path, source.image_key, "image", zchxy_order)
    image = image_to_internal(shape_only(dataset), zchxy_order, source.image_path, source.image_key)
    image = select_z(image, source.image_z, 1, source.image_where)
    factor = downsample_factor(downsample_xy)
    label_dtype = np.dtype(LABEL_DTYPES.get(target, np.int16))
    labels, disk_labels = None, None
    if mode == "img-img":
        label_set = files.dataset(source.label_path, source.label_key, "label", zchxy_order)
        disk_labels, image_slices = _disk_labels(
            source, label_set, image.shape[1:], geometry, zchxy_order, factor, target, label_dtype
        )
        disk_labels = replace(disk_labels, unlabelled_id=unlabelled_id)
        to_stored, shape = _registered_image(image_slices, factor, source.image_z)
    else:
        labels = read_labels(source, mode, geometry.n_dim, zchxy_order, target)
        check_scalar_count(labels, image.shape[1], geometry.n_dim, source.where)
        to_stored, shape = _treated_image(image.shape, geometry, border_mode, factor, source)
    return DiskCube(
        name=source.name,
        label_file=source.label_path,
        stored_image=StoredArray(
            source.image_path, source.image_key, "image", zchxy_order, dataset.ndim
        ),
        to_stored=to_stored,
        scale=intensity_scale(dataset.dtype, source.image_path, source.image_key),
        cube_shape=shape,
        channels=image.shape[0],
        label_type=label_dtype,
        files=files,
        labels=labels,
        disk_labels=disk_labels,
    )


def _disk_labels(
    source: Source,
    dataset: Any,
    image_shape: tuple[int, int, int],
    geometry: PatchGeometry,
    zchxy_order: bool,
    factor: int,
    target: str,
    dtype: np.dtype,
) -> tuple[DiskLabels, Box]:
    """img-img labels on disk and the registration's image crop (full resolution)."""
    path, key = source.label_path, source.label_key
    labels = labels_to_internal(
        shape_only(dataset), "img-img", geometry.n_dim, zchxy_order, path, key
    )
    labels = select_z(labels, source.label_z, 0, source.label_where)
    offset = registration_offset(geometry, factor)
    reg = checked_registration(image_shape, labels.shape, offset, source.where)
    full = tuple(s.stop - s.start for s in reg.image_slices)
    shift = [a.start - b.start for a, b in zip(reg.label_slices, reg.target_slices, strict=True)]
    shift[0] += source.label_z.start or 0
    disk_labels = DiskLabels(
        stored=StoredArray(path, key, "label", zchxy_order, dataset.ndim),
        to_full=BoxMap((0, 0, 0), factor, _centring(full, factor), (0, 0, 0)),
        target_slices=reg.target_slices,
        shift=tuple(shift),
        target=target,
        dtype=dtype,
    )
    return disk_labels, reg.image_slices


def _registered_image(
    image_slices: Box, factor: int, z_range: slice
) -> tuple[BoxMap, tuple[int, int, int]]:
    """img-img: the map of cube boxes to the stored image, and the cube's shape."""
    full = tuple(s.stop - s.start for s in image_slices)
    inner = [s.start for s in image_slices]
    inner[0] += z_range.start or 0
    to_stored = BoxMap((0, 0, 0), factor, _centring(full, factor), tuple(inner))
    return to_stored, _downsampled(full, factor)


def _treated_image(
    shape: tuple[int, ...], geometry: PatchGeometry, mode: str, factor: int, source: Source
) -> tuple[BoxMap, tuple[int, int, int]]:
    """img-scalar: the map of cube boxes to the stored image after border treatment, and the
    cube's shape. Cropping is geometry; padding would need the whole images in memory."""
    down = (shape[0], *_downsampled(shape[1:], factor))
    crop = border_crop(down, geometry.patch, geometry.n_dim, mode, source.where)
    kept = [range(*s.indices(n)) for s, n in zip(crop[1:], down[1:], strict=True)]
    treated = tuple(len(r) for r in kept)
    axes = (0, 1, 2) if geometry.n_dim == 3 else (1, 2)
    if mode in PAD_MODES and any(treated[a] < geometry.patch[a] for a in axes):
        raise DataError(
            f"{source.where}: border_mode {mode!r} pads the images {treated} to the net's input "
            f"{geometry.patch}, which needs them in memory: set data_in_memory=True, or use "
            f"border_mode 'keep' or 'crop'."
        )
    outer = tuple(r.start for r in kept)
    to_stored = BoxMap(
        outer, factor, _centring(shape[1:], factor), (source.image_z.start or 0, 0, 0)
    )
    return to_stored, treated


def _downsampled(shape: Sequence[int], factor: int) -> tuple[int, int, int]:
    """Spatial shape after down-sampling x and y (:func:`.preprocess.downsample_image`)."""
    return shape[0], shape[1] // factor, shape[2] // factor


def _centring(shape: Sequence[int], factor: int) -> tuple[int, int]:
    """Start of the centred multiple of ``factor`` in x and y, which down-sampling keeps."""
    return tuple(centred_multiple(n, factor).start for n in shape[1:])


def _shift(box: Sequence[slice], by: Sequence[int]) -> Box:
    return tuple(slice(s.start + d, s.stop + d) for s, d in zip(box, by, strict=True))


def _intersect(box: Sequence[slice], other: Sequence[slice]) -> Box:
    """Per axis the overlap (possibly empty: stop <= start) of two boxes."""
    return tuple(
        slice(max(a.start, b.start), min(a.stop, b.stop)) for a, b in zip(box, other, strict=True)
    )
