"""The prediction a segmentation reads: what ``elektronn-predict`` wrote, in user order.

* h5 ``FILE.h5[:KEY]``: ``(c, x, y, z)``; the ``offset`` attribute places it on the input's
  grid; ``affinity_offsets`` and ``uint8_scale`` describe the channels.
* zarr / OME-Zarr: opened through :func:`elektronn.predict.stores.input_source` (the axes
  from the store's metadata); an elektronn OME-Zarr prediction lies on the input's grid, and
  its valid region (``elektronn`` attributes ``valid_offset`` / ``valid_shape``) is what is
  segmented.

A :class:`PredictionSource` is small and picklable, so Dask workers open the store themselves.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import h5py
import numpy as np

from ..axes import AxesView
from ..data.stores import is_ome_group, is_zarr
from ..predict.stores import InputSource, input_source, plain_source
from ..predict.volume import only_dataset, split_spec
from .errors import SegmentationError
from .maps import Channels, channels_of

#: The view every method reads: channels first, then x, y, z.
VIEW = "cxyz"


@dataclass(frozen=True)
class PredictionSource:
    """A prediction: where it is stored and which part of it is segmented.

    Attributes
    ----------
    spec
        What the user named (for messages and the record of a run).
    source
        The stored array (opened in user order ``(c, x, y, z)``).
    start, shape
        The segmented region inside the stored array (x, y, z): an OME-Zarr prediction's
        valid region, else all of it.
    offset
        The region's first voxel on the input's grid (the h5 ``offset`` attribute, or the
        OME-Zarr prediction's valid offset): where the labels of an image go.
    channels
        What the channels mean (classes or affinities) and the stored value of 1.
    """

    spec: str
    source: InputSource
    start: tuple[int, int, int]
    shape: tuple[int, int, int]
    offset: tuple[int, int, int]
    channels: Channels

    def read(self, box: tuple[slice, ...]) -> np.ndarray:
        """Probabilities ``(c, x, y, z)`` of ``box`` (region coordinates) as float32."""
        stored = tuple(slice(s.start + o, s.stop + o) for s, o in zip(box, self.start))
        values = np.asarray(opened(self.source)[(slice(None), *stored)], dtype=np.float32)
        return values / np.float32(self.channels.scale)


_OPEN: dict[tuple[InputSource, int], AxesView] = {}


def opened(source: InputSource) -> AxesView:
    """The stored prediction in user order, opened once per process."""
    key = (source, os.getpid())
    if key not in _OPEN:
        _OPEN[key] = source.open().seen_as(VIEW)
    return _OPEN[key]


def describe_prediction(spec: str) -> PredictionSource:
    """PREDICTION (``FILE.h5[:KEY]``, a zarr array or an OME-Zarr image) as a source."""
    path, key = split_spec(spec, None)
    if not path.exists():
        raise SegmentationError(f"The prediction '{path}' does not exist.")
    if is_zarr(path):
        return zarr_prediction(spec, path, key)
    return h5_prediction(spec, path, key)


def h5_prediction(spec: str, path: Path, key: str | None) -> PredictionSource:
    """An h5 prediction ``(c, x, y, z)`` with its ``offset`` attribute."""
    try:
        with h5py.File(path, "r") as f:
            key = key or only_dataset(f)
            if key is None or not isinstance(f.get(key), h5py.Dataset):
                keys = ", ".join(map(repr, f.keys())) or "none"
                raise SegmentationError(
                    f"The prediction file '{path}' has no dataset {key!r} (keys: {keys}); "
                    f"give PREDICTION.h5:KEY."
                )
            shape, attrs = f[key].shape, dict(f[key].attrs)
            dtype = f[key].dtype
    except OSError as exc:
        raise SegmentationError(f"The prediction '{path}' cannot be read as HDF5: {exc}.") from None
    check_layout(spec, len(shape))
    offset = tuple(int(v) for v in attrs.get("offset", (0, 0, 0)))
    return PredictionSource(spec, plain_source(path, key, VIEW), (0, 0, 0), tuple(shape[1:]),
                            offset, describe_channels(spec, shape[0], attrs, dtype))  # fmt: skip


def zarr_prediction(spec: str, path: Path, key: str | None) -> PredictionSource:
    """A zarr array or OME-Zarr image; an elektronn prediction's valid region."""
    import zarr

    source = input_source(path, key, 0, 3, 2)
    node = zarr.open(str(path), mode="r")
    node = node[key] if key else node
    attrs = dict(node.attrs.get("elektronn", {})) if is_ome_group(node) else dict(node.attrs)
    view = source.open().seen_as(VIEW)
    check_layout(spec, 1 + sum(a in source.axes for a in "xyz"))
    grid = view.shape[1:]
    start = tuple(int(v) for v in attrs.get("valid_offset", (0, 0, 0)))
    shape = tuple(int(v) for v in attrs.get("valid_shape", grid))
    return PredictionSource(spec, source, start, shape, start,
                            describe_channels(spec, view.shape[0], attrs, view.dtype))  # fmt: skip


def check_layout(spec: str, ndim: int) -> None:
    """Segmentation reads 3D predictions ``(c, x, y, z)``."""
    if ndim != 4:
        raise SegmentationError(
            f"The prediction '{spec}' has {ndim} axes, but segmentation reads 3D predictions "
            f"(c, x, y, z) as elektronn-predict writes them; a 2D image is a stack of one "
            f"slice: predict it as (x, y, 1)."
        )


def describe_channels(spec: str, count: int, attrs: dict[str, Any], dtype: Any) -> Channels:
    """Classes or affinities, and the stored value of probability 1."""
    offsets = attrs.get("affinity_offsets")
    offsets = None if offsets is None else np.asarray(offsets).tolist()
    default = 255 if np.dtype(dtype) == np.uint8 else 1
    return channels_of(count, offsets, float(attrs.get("uint8_scale", default)),
                       f"The prediction '{spec}'")  # fmt: skip
