"""Loading the training cubes: read, register, down-sample, treat borders, convert, share.

Each pair ``(d_files[k], l_files[k])`` becomes one :class:`Cube`. The order of the steps keeps
the peak memory low: registration and down-sampling work on views of the stored dtype (uint8
data is 4× smaller than float32), and the float32 conversion happens once, straight into the
shared memory that background workers read.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from .errors import DataError
from .geometry import PatchGeometry
from .preprocess import downsample_image, downsample_labels
from .registration import border_treatment, register
from .shm import to_shared
from .volumes import (
    convert_labels,
    image_to_internal,
    intensity_scale,
    labels_to_internal,
    read_dataset,
    read_info,
    to_float32,
)


@dataclass
class Cube:
    """One image volume with its labels, in shared memory.

    Attributes
    ----------
    name
        ``"<image file>:<key>"``, for messages.
    image
        ``(ch, z, x, y)`` float32.
    labels
        ``(z, x, y)`` registered to ``image`` (img-img), ``(z,)`` one per slice (2D img-scalar)
        or ``(1,)`` (3D img-scalar); int16 for classification, float32 for regression.
    info
        ``(2, n_lab)`` int16 lazy-label flags: classes labelled, classes not present.
    label_file
        The label file, whose optional ``info`` dataset is read once ``n_lab`` is known.
    """

    name: str
    image: np.ndarray
    labels: np.ndarray
    label_file: str
    info: np.ndarray | None = None


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
) -> Cube:
    """Read and prepare one image/label pair (see the module docstring for the order)."""
    image_file, image_key, image_z = _file_entry(d_file, "d_files")
    label_file, label_key, label_z = _file_entry(l_file, "l_files")
    image_path = os.path.join(data_path, image_file)
    label_path = os.path.join(label_path, label_file)
    stored = read_dataset(image_path, image_key, "image")
    scale = intensity_scale(stored.dtype, image_path, image_key)
    image = image_to_internal(stored, zchxy_order, image_path, image_key)
    image = _select_z(image, image_z, 1, f"Image {image_path}:'{image_key}'")
    labels = labels_to_internal(
        read_dataset(label_path, label_key, "label"),
        mode,
        geometry.n_dim,
        zchxy_order,
        label_path,
        label_key,
    )
    labels = _select_z(labels, label_z, 0, f"Labels {label_path}:'{label_key}'")
    labels = convert_labels(labels, target, label_path, label_key)
    where = f"Image {image_path}:'{image_key}' and labels {label_path}:'{label_key}'"
    factor = int(downsample_xy) if downsample_xy else 1
    if mode == "img-img":
        offset = (geometry.offset[0], *(o * factor for o in geometry.offset[1:]))
        image, labels = register(image, labels, offset, where)
        if factor > 1:
            image, labels = downsample_image(image, factor), downsample_labels(labels, factor)
    else:
        if geometry.n_dim == 2 and labels.shape[0] != image.shape[1]:
            raise DataError(
                f"{where}: there are {labels.shape[0]} labels for {image.shape[1]} z-slices; 2D "
                f"img-scalar training needs one label per z-slice."
            )
        if factor > 1:
            image = downsample_image(image, factor)
        image = border_treatment(image, geometry.patch, geometry.n_dim, border_mode, where)
    return Cube(
        name=f"{image_path}:'{image_key}'",
        image=to_float32(image, scale, image_path, image_key),
        labels=to_shared(np.ascontiguousarray(labels)),
        label_file=label_path,
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


def _select_z(array: np.ndarray, z: slice, z_axis: int, where: str) -> np.ndarray:
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


def detect_n_lab(cubes: Sequence[Cube], target: str) -> int:
    """``n_lab=None``: the largest label + 1, ignoring negative (unlabelled) values.

    The original counted distinct values, so -1 became a class; regression has one output.
    """
    if target == "regression":
        return 1
    largest = max(int(c.labels.max()) for c in cubes)
    if largest < 0:
        raise DataError(
            "n_lab=None cannot be detected: every label is negative (unlabelled). Set n_lab."
        )
    return largest + 1


def check_n_lab(cubes: Sequence[Cube], n_lab: int, target: str, l_files: Sequence) -> None:
    """Refuse class labels >= n_lab and attach each cube's lazy-label info."""
    for cube, (_, key, *_) in zip(cubes, l_files, strict=True):
        if target == "nll" and cube.labels.size and int(cube.labels.max()) >= n_lab:
            raise DataError(
                f"The labels dataset '{key}' of {cube.label_file} contain the class "
                f"{int(cube.labels.max())}, but n_lab is {n_lab}: classes must be 0..n_lab-1 "
                f"(negative values mean unlabelled). Raise n_lab or renumber the labels."
            )
        cube.info = read_info(cube.label_file, n_lab)
