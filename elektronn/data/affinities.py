"""Affinity targets from an ID patch: is a voxel in the same object as its neighbour at ``d``?

Training for objects (Lee et al. 2017, Wolf et al. 2018) labels voxel *pairs*, not voxels:
channel ``k`` at voxel ``v`` is 1 when ``v`` and ``v + offsets[k]`` carry the same object ID and
0 when they carry different ones. A pair counts nowhere (it is masked) when either voxel is
unlabelled or when ``v + offsets[k]`` lies outside the patch, so sparse labels are simply
unlabelled IDs. This is the convention ``elektronn-segment`` reads (``segment/maps.py``).

IDs are relabelled consecutively when a cube is loaded (:func:`relabel_consecutive`): uint32 or
uint64 neuron IDs then fit a signed integer type, and every unlabelled voxel becomes negative,
the package-wide "ignore" value (registration pads with -1 too).

Pure NumPy, no torch: the functions run in the batch workers on the augmented ID patch, so
the target stays exact under flips, transpositions and nearest-neighbour warps.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from ..config.targets import Offset

UNLABELLED = -1
"""What every unlabelled voxel becomes after :func:`relabel_consecutive`."""


def relabel_consecutive(ids: np.ndarray, unlabelled_id: int = 0) -> np.ndarray:
    """IDs renumbered ``0..n-1`` in order of value; ``unlabelled_id`` and negatives become -1.

    Equal IDs stay equal and different IDs stay different, which is all affinities and shape
    descriptors need; the result is int32 (int64 beyond 2**31 - 1 objects), so IDs of any
    integer width (uint64 included) are exact.

    Parameters
    ----------
    ids
        Integer ID volume of any shape.
    unlabelled_id
        The ID that marks unlabelled voxels (0 by default).
    """
    ids = np.asarray(ids)
    unlabelled = ids == unlabelled_id
    if np.issubdtype(ids.dtype, np.signedinteger):
        unlabelled |= ids < 0
    values, inverse = np.unique(ids[~unlabelled], return_inverse=True)
    dtype = np.int32 if len(values) <= np.iinfo(np.int32).max else np.int64
    out = np.full(ids.shape, UNLABELLED, dtype)
    out[~unlabelled] = inverse
    return out


def _pair_slices(offset: Offset, shape: Sequence[int]) -> tuple[tuple[slice, ...], ...]:
    """``(here, there)``: the voxels ``v`` whose partner ``v + offset`` is in the patch, and
    those partners."""
    here = tuple(slice(max(0, -o), n - max(0, o)) for o, n in zip(offset, shape, strict=True))
    there = tuple(slice(max(0, o), n - max(0, -o)) for o, n in zip(offset, shape, strict=True))
    return here, there


def affinities(ids: np.ndarray, offsets: Sequence[Offset]) -> tuple[np.ndarray, np.ndarray]:
    """The affinity of every voxel to its partner at each offset, and where it is known.

    Parameters
    ----------
    ids
        ID patch, negative = unlabelled (:func:`relabel_consecutive`), in the same axis order
        as the offsets.
    offsets
        One offset per channel, as many entries as ``ids`` has axes.

    Returns
    -------
    affinity, known
        ``(len(offsets), *ids.shape)``: uint8 1 (same object) / 0 (different objects), and
        bool, False where either voxel is unlabelled or the partner is outside the patch
        (the affinity is 0 there).
    """
    shape = ids.shape
    affinity = np.zeros((len(offsets), *shape), np.uint8)
    known = np.zeros((len(offsets), *shape), bool)
    for k, offset in enumerate(offsets):
        if len(offset) != ids.ndim:
            raise ValueError(f"offset {tuple(offset)} has {len(offset)} axes, ids {ids.ndim}")
        here, there = _pair_slices(tuple(offset), shape)
        a, b = ids[here], ids[there]
        known[k][here] = (a >= 0) & (b >= 0)
        affinity[k][here] = (a == b) & known[k][here]
    return affinity, known


def affinity_target(ids: np.ndarray, offsets: Sequence[Offset]) -> np.ndarray:
    """The training target of :func:`affinities` as one float32 array, -1 where masked.

    Negative means "ignore" throughout the package, so the target travels through batches
    and strides like other labels, and the loss needs no second mask array.
    """
    affinity, known = affinities(ids, offsets)
    return np.where(known, affinity.astype(np.float32), np.float32(UNLABELLED))
