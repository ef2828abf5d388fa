"""Reading image and label volumes from h5 files into the internal layout.

User order on disk is ``(x, y, z)`` / ``(ch, x, y, z)`` (or ``(z, (ch,) x, y)`` with
``zchxy_order``); internally images are ``(ch, z, x, y)`` and labels ``(z, x, y)``, so that a
z-slice (the usual 2D training example) is one contiguous block. Images stay in their stored
dtype here (cheap to crop); :func:`to_float32` converts them once, at the end of loading,
straight into shared memory.
"""

from __future__ import annotations

import os

import h5py
import numpy as np

from .errors import DataError
from .shm import shared_empty

IGNORE = -1
"""Label value of unlabelled voxels: never trained on (negative labels mean "ignore")."""

_CHUNK_VOXELS = 1 << 24


def _where(path: str, key: str) -> str:
    return f"dataset '{key}' of {path}"


def read_dataset(path: str, key: str, what: str) -> np.ndarray:
    """Read one whole h5 dataset; the file is closed again before returning.

    Parameters
    ----------
    path
        The h5 file (already joined with its folder).
    key
        Dataset name inside the file.
    what
        "image" or "label", for the error message.
    """
    if not os.path.isfile(path):
        folder, files = ("data_path", "d_files") if what == "image" else ("label_path", "l_files")
        raise DataError(
            f"The {what} file {path} does not exist. Check '{folder}' and the file names in "
            f"'{files}' (names are joined to the folder with os.path.join)."
        )
    try:
        with h5py.File(path, "r") as h5:
            if key not in h5 or not isinstance(h5[key], h5py.Dataset):
                keys = ", ".join(repr(k) for k in h5.keys()) or "none"
                raise DataError(
                    f"The {what} file {path} has no dataset '{key}'; the keys in it are: {keys}. "
                    f"Give the dataset name as the second entry of the (file, key) tuple."
                )
            array = h5[key][()]
    except OSError as exc:
        raise DataError(f"The {what} file {path} cannot be read as an h5 file: {exc}.") from None
    array = np.asarray(array)
    if array.size == 0:
        raise DataError(f"The {what} {_where(path, key)} is empty (shape {array.shape}).")
    return array


def image_to_internal(array: np.ndarray, zchxy_order: bool, path: str, key: str) -> np.ndarray:
    """View stored image data as ``(ch, z, x, y)`` (no copy, stored dtype)."""
    if array.ndim not in (3, 4):
        layout = "(z, x, y) or (z, ch, x, y)" if zchxy_order else "(x, y, z) or (ch, x, y, z)"
        raise DataError(
            f"The image {_where(path, key)} has shape {array.shape} ({array.ndim} axes), but "
            f"images must be {layout}."
        )
    if array.ndim == 3:
        array = array[None]
    return array.transpose(1, 0, 2, 3) if zchxy_order else array.transpose(0, 3, 1, 2)


def intensity_scale(dtype: np.dtype, path: str, key: str) -> float:
    """Factor that maps stored grey values to [0, 1]-ish float32 values.

    Integers are divided by their dtype's maximum (uint8 by 255, uint16 by 65535 -- not by 255
    as the original did), floats and booleans are kept.
    """
    if dtype == np.bool_ or np.issubdtype(dtype, np.floating):
        return 1.0
    if np.issubdtype(dtype, np.integer):
        return 1.0 / float(np.iinfo(dtype).max)
    raise DataError(f"The image {_where(path, key)} has dtype {dtype}; use integers or floats.")


def to_float32(array: np.ndarray, scale: float, path: str, key: str) -> np.ndarray:
    """Convert ``(ch, z, x, y)`` image data to scaled float32 in shared memory.

    The conversion runs in z-chunks, so the only full-size temporary is the result itself, and
    NaNs are refused (they would silently poison every gradient).
    """
    out = shared_empty(array.shape, np.float32)
    n_z = max(1, _CHUNK_VOXELS // max(1, array[:, :1].size))
    for z0 in range(0, array.shape[1], n_z):
        chunk = out[:, z0 : z0 + n_z]
        np.copyto(chunk, array[:, z0 : z0 + n_z], casting="unsafe")
        if scale != 1.0:
            chunk *= np.float32(scale)
        if np.isnan(chunk).any():
            raise DataError(
                f"The image {_where(path, key)} contains NaN values (first in z-slices "
                f"{z0}..{z0 + chunk.shape[1] - 1}); replace them before training."
            )
    return out


def labels_to_internal(
    array: np.ndarray, mode: str, n_dim: int, zchxy_order: bool, path: str, key: str
) -> np.ndarray:
    """View stored labels as ``(z, x, y)`` (img-img) or one label per slice/cube (img-scalar)."""
    if mode == "img-scalar":
        if n_dim == 3:
            if array.size != 1:
                raise DataError(
                    f"The labels {_where(path, key)} have shape {array.shape}, but 3D img-scalar "
                    f"training needs exactly one label per image cube."
                )
            return array.reshape(1)
        if array.ndim != 1:
            raise DataError(
                f"The labels {_where(path, key)} have shape {array.shape}, but img-scalar "
                f"labels must be 1-D, one label per z-slice of the image."
            )
        return array
    if array.ndim != 3:
        layout = "(z, x, y)" if zchxy_order else "(x, y, z)"
        raise DataError(
            f"The labels {_where(path, key)} have shape {array.shape}, but img-img labels must "
            f"be {layout}."
        )
    return array if zchxy_order else array.transpose(2, 0, 1)


def convert_labels(array: np.ndarray, target: str, path: str, key: str) -> np.ndarray:
    """Labels as int16 (``target='nll'``) or float32 (``'regression'``), after checks."""
    if target == "regression":
        out = np.asarray(array, dtype=np.float32)
        if np.isnan(out).any():
            raise DataError(f"The labels {_where(path, key)} contain NaN values.")
        return out
    if np.issubdtype(array.dtype, np.floating):
        if not np.isfinite(array).all() or (array != np.round(array)).any():
            raise DataError(
                f"The labels {_where(path, key)} are not whole numbers, but target 'nll' needs "
                f"integer class labels 0..n_lab-1 (negative = unlabelled). Use "
                f"target='regression' for continuous labels."
            )
    elif not (np.issubdtype(array.dtype, np.integer) or array.dtype == np.bool_):
        raise DataError(f"The labels {_where(path, key)} have dtype {array.dtype}; use integers.")
    low, high = array.min(), array.max()
    if high > np.iinfo(np.int16).max or low < np.iinfo(np.int16).min:
        raise DataError(
            f"The labels {_where(path, key)} range from {low} to {high}, beyond int16. Class "
            f"labels must be 0..n_lab-1; renumber them (e.g. np.unique(..., return_inverse=True))."
        )
    return array.astype(np.int16)


def read_info(path: str, n_lab: int) -> np.ndarray:
    """The lazy-label ``info`` of a label file, shape ``(2, n_lab)`` int16.

    Row 0 marks the classes that are properly labelled in this cube, row 1 the classes that do
    not occur in it at all. Without an ``info`` dataset every class is labelled and none absent.
    """
    with h5py.File(path, "r") as h5:
        if "info" not in h5:
            return np.stack([np.ones(n_lab, np.int16), np.zeros(n_lab, np.int16)])
        info = np.asarray(h5["info"][()])
    if info.shape != (2, n_lab) or not np.isin(info, (0, 1)).all():
        raise DataError(
            f"The lazy-label dataset 'info' of {path} has shape {info.shape} and values "
            f"{np.unique(info)[:5]}, but it must hold two length-{n_lab} arrays of 0/1: classes "
            f"labelled in this cube, and classes not present in it."
        )
    return info.astype(np.int16)
