"""Reading image and label volumes from h5 files (or zarr/N5 stores) into the internal layout.

User order on disk is ``(x, y, z)`` / ``(ch, x, y, z)`` (or ``(z, (ch,) x, y)`` with
``zchxy_order``); internally images are ``(ch, z, x, y)`` and labels ``(z, x, y)``, so that a
z-slice (the usual 2D training example) is one contiguous block. Images stay in their stored
dtype here (cheap to crop); :func:`to_float32` converts them once, at the end of loading,
straight into shared memory. The same functions serve the on-disk mode (:mod:`.ondisk`), which
applies them to the boxes it reads instead of to whole volumes.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import Any

import h5py
import numpy as np

from ..axes import AxesView, as_order, image_axes_ok
from .affinities import relabel_consecutive
from .errors import DataError
from .shm import shared_empty
from .stores import dimension_names, is_ome_group, ome_axes, ome_multiscale

IGNORE = -1
"""Label value of unlabelled voxels: never trained on (negative labels mean "ignore")."""

_CHUNK_VOXELS = 1 << 24
_ZARR_SUFFIXES = (".zarr", ".n5")


def _where(path: str, key: str) -> str:
    return f"dataset '{key}' of {path}"


def open_file(path: str, what: str) -> Any:
    """Open an h5 file, or a zarr/N5 store (name ending in .zarr / .n5), read-only.

    Parameters
    ----------
    path
        The file or store (already joined with its folder).
    what
        "image" or "label", for the error message.

    Returns
    -------
    An object indexable by dataset key (``h5py.File`` or a zarr group), to be closed with
    :func:`close_file`.
    """
    is_zarr = path.rstrip("/").endswith(_ZARR_SUFFIXES)
    if not (os.path.isdir(path) if is_zarr else os.path.isfile(path)):
        folder, files = ("data_path", "d_files") if what == "image" else ("label_path", "l_files")
        raise DataError(
            f"The {what} file {path} does not exist. Check '{folder}' and the file names in "
            f"'{files}' (names are joined to the folder with os.path.join)."
        )
    if is_zarr:
        return _open_zarr(path, what)
    try:
        return h5py.File(path, "r")
    except OSError as exc:
        raise DataError(f"The {what} file {path} cannot be read as an h5 file: {exc}.") from None


def _open_zarr(path: str, what: str) -> Any:
    """zarr stores are optional: the package is imported only when one is named."""
    try:
        import zarr
    except ImportError:
        raise DataError(
            f"The {what} store {path} is a zarr/N5 store, but the package 'zarr' is not "
            f"installed; install it (pip install zarr) or convert the data to h5."
        ) from None
    if path.rstrip("/").endswith(".n5"):
        n5_store = getattr(zarr, "N5Store", None)
        if n5_store is None:
            raise DataError(f"The {what} store {path} is N5, which needs zarr 2 (zarr.N5Store).")
        return zarr.open(n5_store(path), mode="r")
    return zarr.open(path, mode="r")


def close_file(handle: Any) -> None:
    """Close what :func:`open_file` opened (zarr groups hold nothing open)."""
    if isinstance(handle, h5py.File):
        handle.close()


def dataset_of(handle: Any, path: str, key: str, what: str, zchxy_order: bool = False) -> Any:
    """The dataset ``key`` of an open file (an h5py or zarr array: shape, dtype, slicing).

    A zarr v3 array with ``dimension_names`` and an OME-Zarr image (its level 0) are seen
    through an :class:`.stores.AxesView` in user order, whatever order they are stored in.
    """
    node, axes = _node(handle, key), None
    if is_ome_group(node):
        node, axes = _ome_level0(node, path, key, what)
    elif hasattr(node, "shape") and not isinstance(handle, h5py.File):
        names = dimension_names(node)
        axes = None if names is None else _checked_axes(names, path, key, what)
    if node is None or not hasattr(node, "shape"):
        keys = ", ".join(repr(k) for k in getattr(handle, "keys", list)()) or "none"
        raise DataError(
            f"The {what} file {path} has no dataset '{key}'; the keys in it are: {keys}. "
            f"Give the dataset name as the second entry of the (file, key) tuple."
        )
    if 0 in node.shape:
        raise DataError(f"The {what} {_where(path, key)} is empty (shape {node.shape}).")
    return node if axes is None else _user_view(node, axes, path, key, what, zchxy_order)


def _node(handle: Any, key: str) -> Any:
    """``handle[key]``, or the zarr store itself for the key '' or '/' (None: no such key)."""
    if not isinstance(handle, h5py.File) and key.strip("/") == "":
        return handle
    if not hasattr(handle, "keys"):
        return None
    return handle[key] if key in handle else None


def _ome_level0(group: Any, path: str, key: str, what: str) -> tuple[Any, str]:
    """Level 0 of an OME-Zarr image and its axis names."""
    multiscale = ome_multiscale(group, f"The {what} {_where(path, key)}", DataError)
    axes = _checked_axes(list(ome_axes(multiscale)), path, key, what)
    return group[multiscale.datasets[0].path], axes


def _checked_axes(names: list[str], path: str, key: str, what: str) -> str:
    """Declared axis names as a string like ``"zyx"``, refused unless a net can read them."""
    axes = "".join(names)
    if len(axes) != len(names) or not image_axes_ok(axes):
        raise DataError(
            f"The {what} {_where(path, key)} declares the axes ({', '.join(names)}), but "
            f"training reads x, y and optionally z and c (channel), each once, no t or others. "
            f"Select the time point or position into an array of its own."
        )
    return axes


def _user_view(
    array: Any, axes: str, path: str, key: str, what: str, zchxy_order: bool
) -> AxesView:
    """An array with named axes in user order ``((ch,) x, y, z)`` (``(z, (ch,) x, y)`` with
    ``zchxy_order``), so the rest of the pipeline treats it like an h5 dataset."""
    channel = "c" if "c" in axes else ""
    return AxesView(array, axes, f"z{channel}xy" if zchxy_order else f"{channel}xyz")


def read_dataset(path: str, key: str, what: str, zchxy_order: bool = False) -> np.ndarray:
    """Read one whole dataset; the file is closed again before returning.

    Parameters
    ----------
    path
        The h5 file or zarr store (already joined with its folder).
    key
        Dataset name inside the file.
    what
        "image" or "label", for the error message.
    zchxy_order
        The user order that arrays with named axes are put in.
    """
    handle = open_file(path, what)
    try:
        return np.asarray(dataset_of(handle, path, key, what, zchxy_order)[...])
    except OSError as exc:
        raise DataError(f"The {what} file {path} cannot be read: {exc}.") from None
    finally:
        close_file(handle)


def shape_only(dataset: Any) -> np.ndarray:
    """A zero-memory stand-in with a dataset's shape and dtype (all values equal).

    The on-disk mode passes it through the same shape checks and axis views as the in-memory
    arrays, so both modes accept and refuse the same layouts.
    """
    return np.broadcast_to(np.zeros((), dataset.dtype), dataset.shape)


def stored_index(box: Sequence[slice], zchxy_order: bool, n_axes: int) -> tuple[slice, ...]:
    """The index of a stored dataset that reads the internal box ``(z, x, y)``.

    ``n_axes`` is the dataset's number of axes: 4 for multi-channel images (every channel is
    read), 3 for single-channel images and for labels.
    """
    z, x, y = box
    channels = (slice(None),) * (n_axes - 3)
    return (z, *channels, x, y) if zchxy_order else (*channels, x, y, z)


def image_to_internal(array: np.ndarray, zchxy_order: bool, path: str, key: str) -> np.ndarray:
    """View stored image data as ``(ch, z, x, y)`` (no copy, stored dtype)."""
    if array.ndim not in (3, 4):
        layout = "(z, x, y) or (z, ch, x, y)" if zchxy_order else "(x, y, z) or (ch, x, y, z)"
        raise DataError(
            f"The image {_where(path, key)} has shape {array.shape} ({array.ndim} axes), but "
            f"images must be {layout}."
        )
    if array.ndim == 3:  # add the channel axis where the layout has it
        array = array[:, None] if zchxy_order else array[None]
    return as_order(array, "zcxy" if zchxy_order else "cxyz", "czxy")


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


def z_chunks(shape: Sequence[int]) -> list[slice]:
    """z-ranges of a ``(ch, z, x, y)`` volume with about 16 M voxels each.

    Whole-volume passes (conversion, statistics, label checks) run over these ranges, so their
    temporaries stay small; both data modes use the same ranges, so float sums agree exactly.
    """
    n_z = max(1, _CHUNK_VOXELS // max(1, shape[0] * shape[2] * shape[3]))
    return [slice(z0, min(z0 + n_z, shape[1])) for z0 in range(0, shape[1], n_z)]


def to_float32(
    array: np.ndarray,
    scale: float,
    path: str,
    key: str,
    out: np.ndarray | None = None,
    z_start: int = 0,
) -> np.ndarray:
    """Convert ``(ch, z, x, y)`` image data to scaled float32 (by default in shared memory).

    The conversion runs in z-chunks, so the only full-size temporary is the result itself, and
    NaNs are refused (they would silently poison every gradient).

    Parameters
    ----------
    out
        Where to write (e.g. a box read from disk); None allocates shared memory.
    z_start
        z of ``array[:, 0]`` in the cube, for the error message.
    """
    out = shared_empty(array.shape, np.float32) if out is None else out
    for z in z_chunks(array.shape):
        chunk = out[:, z]
        np.copyto(chunk, array[:, z], casting="unsafe")
        if scale != 1.0:
            chunk *= np.float32(scale)
        if np.isnan(chunk).any():
            raise DataError(
                f"The image {_where(path, key)} contains NaN values (first in z-slices "
                f"{z_start + z.start}..{z_start + z.stop - 1}); replace them before training."
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
    return array if zchxy_order else as_order(array, "xyz", "zxy")


def convert_labels(
    array: np.ndarray, target: str, path: str, key: str, unlabelled_id: int = 0
) -> np.ndarray:
    """Labels as int16 (``target='nll'``), float32 (``'regression'``) or, for ``'affinity'``,
    object IDs renumbered consecutively (int32/int64, unlabelled ``-1``), after checks."""
    if target == "affinity":
        return _object_ids(array, path, key, unlabelled_id)
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


def _object_ids(array: np.ndarray, path: str, key: str, unlabelled_id: int) -> np.ndarray:
    """ID labels of any integer width, renumbered so that uint32/uint64 IDs cannot overflow."""
    if not np.issubdtype(array.dtype, np.integer):
        raise DataError(
            f"The labels {_where(path, key)} have dtype {array.dtype}, but target='affinity' "
            f"needs object IDs as integers (one ID per object, {unlabelled_id} or negative = "
            f"unlabelled); float or boolean volumes are class maps or probabilities. Convert "
            f"boundary labels with 'elektronn-labels components'."
        )
    return relabel_consecutive(np.asarray(array), unlabelled_id)


def read_info(path: str, n_lab: int) -> np.ndarray:
    """The lazy-label ``info`` of a label file, shape ``(2, n_lab)`` int16.

    Row 0 marks the classes that are properly labelled in this cube, row 1 the classes that do
    not occur in it at all. Without an ``info`` dataset every class is labelled and none absent.
    """
    handle = open_file(path, "label")
    try:
        if not hasattr(handle, "keys") or "info" not in handle:  # a zarr store that is one array
            return np.stack([np.ones(n_lab, np.int16), np.zeros(n_lab, np.int16)])
        info = np.asarray(handle["info"][...])
    finally:
        close_file(handle)
    if info.shape != (2, n_lab) or not np.isin(info, (0, 1)).all():
        raise DataError(
            f"The lazy-label dataset 'info' of {path} has shape {info.shape} and values "
            f"{np.unique(info)[:5]}, but it must hold two length-{n_lab} arrays of 0/1: classes "
            f"labelled in this cube, and classes not present in it."
        )
    return info.astype(np.int16)
