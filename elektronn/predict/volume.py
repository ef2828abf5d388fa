"""Reading tiles from, and writing blocks to, arrays that may live on disk.

``raw`` and ``out`` are anything with ``shape``, ``dtype`` and numpy-style slicing:
``numpy.ndarray``, ``h5py.Dataset``, a zarr array. Only the box a tile needs is read and
only the block it produced is written, so a volume on disk is never held in memory.

The arrays are stored channel first in the *storage order* (``raw_order``), while the net
works in the *internal order* ((x, y) or (z, x, y)); a permutation maps one to the other.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

RAW_ORDERS = ("zxy", "xyz")


def spatial_permutation(n_spatial: int, raw_order: str) -> tuple[int, ...]:
    """``perm[i]`` is the storage axis (0-based, spatial only) of internal axis ``i``.

    Only 3 spatial axes have a choice: internal (z, x, y) is storage ``(2, 0, 1)`` when the
    storage order is (x, y, z), as in the h5 files of training data.
    """
    if n_spatial == 3 and raw_order == "xyz":
        return (2, 0, 1)
    return tuple(range(n_spatial))


def mirror_indices(index: np.ndarray, n: int) -> np.ndarray:
    """Fold indices outside ``[0, n)`` back by mirroring with the edge repeated.

    This is numpy's ``'symmetric'`` padding (the original's ``pad_raw``), for any pad width.
    """
    period = 2 * n
    folded = np.mod(index, period)
    return np.where(folded < n, folded, period - 1 - folded)


def convert_output(prob: np.ndarray, dtype: np.dtype) -> np.ndarray:
    """Probabilities (float32) as stored: uint8 means ``round(p * 255)``, floats are cast."""
    if dtype == np.uint8:
        return np.clip(np.rint(prob * 255), 0, 255).astype(np.uint8)
    return prob.astype(dtype, copy=False)


@dataclass(frozen=True)
class StoredVolume:
    """A channel-first array in storage order, addressed in internal order.

    Attributes
    ----------
    array
        The array-like, ``(ch, *spatial)`` in storage order.
    perm
        Storage axis of each internal spatial axis (see :func:`spatial_permutation`).
    """

    array: Any
    perm: tuple[int, ...]

    @property
    def shape(self) -> tuple[int, ...]:
        """Spatial shape in internal order."""
        spatial = tuple(self.array.shape[1:])
        return tuple(spatial[p] for p in self.perm)

    def storage_slices(self, starts: Sequence[int], stops: Sequence[int]) -> tuple[slice, ...]:
        """Index tuple (channel axis included) of an internal-order box."""
        slices = [slice(None)] * len(self.perm)
        for i, p in enumerate(self.perm):
            slices[p] = slice(int(starts[i]), int(stops[i]))
        return (slice(None), *slices)

    def to_internal(self, block: np.ndarray) -> np.ndarray:
        """A storage-order block ``(ch, ...)`` as internal order (a view)."""
        return np.transpose(block, (0, *(1 + p for p in self.perm)))

    def to_storage(self, block: np.ndarray) -> np.ndarray:
        """An internal-order block ``(ch, ...)`` as storage order (a view)."""
        return np.transpose(block, (0, *(1 + i for i in np.argsort(self.perm))))

    def read(self, indices: tuple[np.ndarray, ...]) -> np.ndarray:
        """The voxels at the outer product of per-axis ``indices`` (internal order, in range).

        Reads the bounding box only, then picks the (mirrored) indices from it, which is a
        no-op for the usual contiguous tile.
        """
        lows = [int(i.min()) for i in indices]
        highs = [int(i.max()) + 1 for i in indices]
        block = self.to_internal(np.asarray(self.array[self.storage_slices(lows, highs)]))
        for axis, (index, low, high) in enumerate(zip(indices, lows, highs, strict=True)):
            if not np.array_equal(index, np.arange(low, high)):
                block = np.take(block, index - low, axis=axis + 1)
        return block

    def write(self, starts: tuple[int, ...], block: np.ndarray) -> None:
        """Store ``block`` (``(n_lab, *box)``, internal order) with its corner at ``starts``."""
        stops = [s + n for s, n in zip(starts, block.shape[1:], strict=True)]
        self.array[self.storage_slices(starts, stops)] = self.to_storage(block)
