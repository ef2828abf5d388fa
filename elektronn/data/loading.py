"""Loading the training cubes: read, register, down-sample, treat borders, convert, share.

Each pair ``(d_files[k], l_files[k])`` becomes one :class:`Cube`. The order of the steps keeps
the peak memory low: registration and down-sampling work on views of the stored dtype (uint8
data is 4× smaller than float32), and the float32 conversion happens once, straight into the
shared memory that background workers read.

:class:`Volume` is what patch sampling needs of a cube; :mod:`.ondisk` implements it for cubes
that stay on disk (``data_in_memory=False``) with the same steps applied per box.
"""

from __future__ import annotations

import os
from abc import ABC, abstractmethod
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from functools import cached_property
from math import prod

import numpy as np

from .errors import DataError
from .geometry import PatchGeometry
from .preprocess import downsample_image, downsample_labels, image_statistics, normalise
from .registration import border_treatment, register
from .sampling import internal_box, oriented
from .shm import to_shared
from .volumes import (
    IGNORE,
    convert_labels,
    image_to_internal,
    intensity_scale,
    labels_to_internal,
    read_dataset,
    read_info,
    to_float32,
    z_chunks,
)

Box = tuple[slice, slice, slice]
"""A box of a cube: ``(z, x, y)`` slices with explicit start and stop and step 1."""


class Volume(ABC):
    """One training cube as patches are cut from it: its shape, and reads of boxes.

    The sampler, the warp and the flips see only this interface, so a cube held in memory
    (:class:`Cube`) and a cube left on disk (:class:`.ondisk.DiskCube`) give the same patches
    for the same random stream. Boxes are in the registered cube (after z-range,
    registration, down-sampling and border treatment).

    Attributes
    ----------
    name
        ``"<image file>:<key>"``, for messages.
    labels
        Labels held in memory: ``(z, x, y)`` (img-img in memory), ``(z,)`` one per slice (2D
        img-scalar) or ``(1,)`` (3D img-scalar); None when they are read per box from disk.
    label_file
        The label file, whose optional ``info`` dataset is read once ``n_lab`` is known.
    info
        ``(2, n_lab)`` int16 lazy-label flags: classes labelled, classes not present.
    scale
        Factor the stored grey values were scaled by (1/255 for uint8; 1 for floats).
    """

    name: str
    labels: np.ndarray | None
    label_file: str
    info: np.ndarray | None
    scale: float

    @property
    @abstractmethod
    def shape(self) -> tuple[int, int, int]:
        """Spatial shape ``(z, x, y)`` of the registered cube."""

    @property
    @abstractmethod
    def n_ch(self) -> int:
        """Number of image channels."""

    @property
    @abstractmethod
    def label_dtype(self) -> np.dtype:
        """int16 (classes) or float32 (regression)."""

    @abstractmethod
    def _image_box(self, box: Box) -> np.ndarray:
        """``(ch, z, x, y)`` float32 image of a box in the cube's own axes."""

    @abstractmethod
    def _label_box(self, box: Box) -> np.ndarray:
        """``(z, x, y)`` registered labels of a box in the cube's own axes (img-img)."""

    @abstractmethod
    def standardise(self, mean: float, std: float) -> None:
        """Apply ``pre_process='standardise'`` with these statistics to every image read."""

    @property
    def size(self) -> int:
        """Number of labels: the cube's weight when cubes are sampled by size."""
        return prod(self.shape) if self.labels is None else self.labels.size

    @cached_property
    def label_max(self) -> int:
        """Largest registered label (IGNORE when there is none), for ``n_lab`` checks.

        Labels on disk are streamed slab by slab, which also checks every label value once.
        """
        return max((int(slab.max()) for slab in self.label_slabs() if slab.size), default=IGNORE)

    def label_slabs(self) -> Iterator[np.ndarray]:
        """The registered labels, whole or (on disk) in z-slabs, for counts in bounded memory."""
        if self.labels is not None:
            return iter([self.labels])
        return (self._label_box(box) for box in self._slab_boxes(1))

    def read_image(self, order: tuple[int, int, int], box: Box) -> np.ndarray:
        """``(ch, *box)`` float32 image of a box given in the slicing orientation ``order``."""
        return oriented(self._image_box(internal_box(order, box)), order, leading=1)

    def read_labels(self, order: tuple[int, int, int], box: Box) -> np.ndarray:
        """Registered labels of a box given in the slicing orientation ``order`` (img-img)."""
        return oriented(self._label_box(internal_box(order, box)), order)

    def image_slabs(self) -> Iterator[np.ndarray]:
        """The float32 image in z-slabs, for whole-volume statistics in bounded memory."""
        return (self._image_box(box) for box in self._slab_boxes(self.n_ch))

    def _slab_boxes(self, n_ch: int) -> list[Box]:
        _, x_size, y_size = self.shape
        return [(z, slice(0, x_size), slice(0, y_size)) for z in z_chunks((n_ch, *self.shape))]


@dataclass
class Cube(Volume):
    """One image volume with its labels, in shared memory.

    Attributes
    ----------
    image
        ``(ch, z, x, y)`` float32.
    labels
        ``(z, x, y)`` registered to ``image`` (img-img), ``(z,)`` one per slice (2D img-scalar)
        or ``(1,)`` (3D img-scalar); int16 for classification, float32 for regression.
    """

    name: str
    image: np.ndarray
    labels: np.ndarray
    label_file: str
    info: np.ndarray | None = None
    scale: float = 1.0

    @property
    def shape(self) -> tuple[int, int, int]:
        return self.image.shape[1:]

    @property
    def n_ch(self) -> int:
        return self.image.shape[0]

    @property
    def label_dtype(self) -> np.dtype:
        return self.labels.dtype

    def _image_box(self, box: Box) -> np.ndarray:
        return self.image[(slice(None), *box)]

    def _label_box(self, box: Box) -> np.ndarray:
        return self.labels[box]

    def standardise(self, mean: float, std: float) -> None:
        normalise(self.image, mean, std)


@dataclass(frozen=True)
class Source:
    """Where one pair ``(d_files[k], l_files[k])`` is stored.

    Attributes
    ----------
    image_z, label_z
        The z-range of the entry (``slice(None)``: all z-slices).
    """

    image_path: str
    image_key: str
    image_z: slice
    label_path: str
    label_key: str
    label_z: slice

    @classmethod
    def from_entries(
        cls, d_file: object, l_file: object, data_path: str, label_path: str
    ) -> Source:
        """Check and join one entry of ``d_files`` and ``l_files`` with their folders."""
        image_file, image_key, image_z = _file_entry(d_file, "d_files")
        label_file, label_key, label_z = _file_entry(l_file, "l_files")
        return cls(
            os.path.join(data_path, image_file),
            image_key,
            image_z,
            os.path.join(label_path, label_file),
            label_key,
            label_z,
        )

    @property
    def name(self) -> str:
        return f"{self.image_path}:'{self.image_key}'"

    @property
    def image_where(self) -> str:
        return f"Image {self.name}"

    @property
    def label_where(self) -> str:
        return f"Labels {self.label_path}:'{self.label_key}'"

    @property
    def where(self) -> str:
        return f"{self.image_where} and labels {self.label_path}:'{self.label_key}'"


def load_cube(
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
) -> Cube:
    """Read and prepare one image/label pair (see the module docstring for the order).

    ``unlabelled_id`` is the object ID of unlabelled voxels of ``target='affinity'``.
    """
    source = Source.from_entries(d_file, l_file, data_path, label_path)
    stored = read_dataset(source.image_path, source.image_key, "image", zchxy_order)
    scale = intensity_scale(stored.dtype, source.image_path, source.image_key)
    image = image_to_internal(stored, zchxy_order, source.image_path, source.image_key)
    image = select_z(image, source.image_z, 1, source.image_where)
    labels = read_labels(source, mode, geometry.n_dim, zchxy_order, target, unlabelled_id)
    factor = downsample_factor(downsample_xy)
    if mode == "img-img":
        offset = registration_offset(geometry, factor)
        image, labels = register(image, labels, offset, source.where)
        if factor > 1:
            image, labels = downsample_image(image, factor), downsample_labels(labels, factor)
    else:
        check_scalar_count(labels, image.shape[1], geometry.n_dim, source.where)
        if factor > 1:
            image = downsample_image(image, factor)
        image = border_treatment(image, geometry.patch, geometry.n_dim, border_mode, source.where)
    return Cube(
        name=source.name,
        image=to_float32(image, scale, source.image_path, source.image_key),
        labels=to_shared(np.ascontiguousarray(labels)),
        label_file=source.label_path,
        scale=scale,
    )


def read_labels(
    source: Source, mode: str, n_dim: int, zchxy_order: bool, target: str, unlabelled_id: int = 0
) -> np.ndarray:
    """All labels of a source: read, laid out, z-selected and converted (int16 / float32 /
    consecutive object IDs)."""
    labels = labels_to_internal(
        read_dataset(source.label_path, source.label_key, "label", zchxy_order),
        mode,
        n_dim,
        zchxy_order,
        source.label_path,
        source.label_key,
    )
    labels = select_z(labels, source.label_z, 0, source.label_where)
    return convert_labels(labels, target, source.label_path, source.label_key, unlabelled_id)


def downsample_factor(downsample_xy: bool | int) -> int:
    """The x/y down-sampling factor of the option (False or 1: none)."""
    return int(downsample_xy) if downsample_xy else 1


def registration_offset(geometry: PatchGeometry, factor: int) -> tuple[int, int, int]:
    """The net's offset at the stored resolution (labels are registered before down-sampling)."""
    return (geometry.offset[0], *(o * factor for o in geometry.offset[1:]))


def check_scalar_count(labels: np.ndarray, n_z: int, n_dim: int, where: str) -> None:
    """2D img-scalar training needs one label per z-slice."""
    if n_dim == 2 and labels.shape[0] != n_z:
        raise DataError(
            f"{where}: there are {labels.shape[0]} labels for {n_z} z-slices; 2D img-scalar "
            f"training needs one label per z-slice."
        )


def _file_entry(entry: object, option: str) -> tuple[str, str, slice]:
    """``(file, key)`` or ``(file, key, (z_start, z_stop))``; the z-range selects slices, e.g.
    to split one volume into training and validation cubes."""
    ok = isinstance(entry, (tuple, list)) and len(entry) in (2, 3)
    ok = ok and all(isinstance(e, str) for e in entry[:2])
    if ok and len(entry) == 3:
        z = entry[2]
        ok = isinstance(z, (tuple, list)) and len(z) == 2 and all(isinstance(v, int) for v in z)
    if not ok:
        raise DataError(
            f"Each entry of '{option}' must be (file name, h5 dataset key) or (file name, key, "
            f"(z_start, z_stop)), e.g. ('img1.h5', 'raw') or ('img1.h5', 'raw', (0, 25)); "
            f"got {entry!r}."
        )
    return entry[0], entry[1], slice(*entry[2]) if len(entry) == 3 else slice(None)


def select_z(array: np.ndarray, z: slice, z_axis: int, where: str) -> np.ndarray:
    """The z-slices of a file entry's z-range (internal layout; z on ``z_axis``)."""
    if z == slice(None):
        return array
    n = array.shape[z_axis]
    if not 0 <= z.start < z.stop <= n:
        raise DataError(
            f"{where}: the z-range ({z.start}, {z.stop}) does not lie within the {n} z-slices."
        )
    index = [slice(None)] * array.ndim
    index[z_axis] = z
    return array[tuple(index)]


def detect_n_lab(cubes: Sequence[Volume], target: str) -> int:
    """``n_lab=None``: the largest label + 1, ignoring negative (unlabelled) values.

    The original counted distinct values, so -1 became a class; regression has one output.
    """
    if target == "regression":
        return 1
    if target == "affinity":
        raise DataError(
            "n_lab of target='affinity' follows from affinity_offsets and lsd_sigma; pass it."
        )
    largest = max(cube.label_max for cube in cubes)
    if largest < 0:
        raise DataError(
            "n_lab=None cannot be detected: every label is negative (unlabelled). Set n_lab."
        )
    return largest + 1


def check_n_lab(cubes: Sequence[Volume], n_lab: int, target: str, l_files: Sequence) -> None:
    """Refuse class labels >= n_lab and attach each cube's lazy-label info."""
    for cube, (_, key, *_) in zip(cubes, l_files, strict=True):
        if target == "nll" and cube.label_max >= n_lab:
            raise DataError(
                f"The labels dataset '{key}' of {cube.label_file} contain the class "
                f"{cube.label_max}, but n_lab is {n_lab}: classes must be 0..n_lab-1 "
                f"(negative values mean unlabelled). Raise n_lab or renumber the labels."
            )
        cube.info = read_info(cube.label_file, n_lab)


def check_intensity_scales(cubes: Sequence[Volume]) -> None:
    """Refuse float images above 1 next to integer images, which are scaled to [0, 1].

    Guessing a float cube's range (255? 4095?) could be wrong by a factor, so the user
    decides; each float cube is read once, and only when an integer cube is present.
    """
    integer = next((cube for cube in cubes if cube.scale != 1.0), None)
    if integer is None:
        return
    for cube in cubes:
        if cube.scale != 1.0:
            continue
        high = max(float(slab.max()) for slab in cube.image_slabs())
        if high > 1.0:
            raise DataError(
                f"The image {cube.name} is stored as floats with values up to {high:g}, but "
                f"the image {integer.name} is stored as integers, which are divided by "
                f"{round(1 / integer.scale)} to [0, 1]; the net would see the cubes at scales "
                f"{high:g} times apart. Store every image the same way: divide the float "
                f"images by their full-scale value (e.g. 255) or save them as uint8."
            )


def standardise(cubes: Sequence[Volume]) -> tuple[float, float]:
    """``pre_process='standardise'``: statistics over all cubes, then applied to each.

    Returns the mean and standard deviation used, so that prediction can apply the same
    transform to new data.
    """
    mean, std = image_statistics(slab for cube in cubes for slab in cube.image_slabs())
    for cube in cubes:
        cube.standardise(mean, std)
    return mean, std
