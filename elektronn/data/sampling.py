"""Where examples come from: the cube, the slicing orientation and the patch position.

Every position is reachable: a patch start is drawn from ``0 .. size - patch`` inclusive (the
original's ``randint`` excluded the last one).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from .geometry import PatchGeometry

ORIENTATIONS = ((0, 1, 2), (1, 2, 0), (2, 0, 1))
"""Axis orders of a (z, x, y) cube with the slicing axis first: across z, across x, across y."""


def sampling_probabilities(weights: Sequence[float]) -> np.ndarray:
    """Normalised probabilities from relative, non-negative weights."""
    weights = np.asarray(weights, dtype=np.float64)
    return weights / weights.sum()


def choose(rng: np.random.Generator, probabilities: np.ndarray) -> int:
    """Index drawn with the given probabilities.

    The same index from the same stream as ``rng.choice(probabilities.size, p=probabilities)``
    (one uniform draw against the cumulative distribution, which is what numpy does), without
    its argument checks: 5 instead of 27 µs, paid once per example.
    """
    cumulative = np.cumsum(probabilities)
    cumulative /= cumulative[-1]
    return int(cumulative.searchsorted(rng.random(), side="right"))


def fits(shape: Sequence[int], patch: Sequence[int]) -> bool:
    """Whether a patch fits into a volume of this spatial shape."""
    return all(n >= p for n, p in zip(shape, patch, strict=True))


def fitting_orientations(
    shape: Sequence[int], geometry: PatchGeometry, all_orientations: bool
) -> tuple[tuple[int, int, int], ...]:
    """The axis orders in which ``geometry.patch`` fits a cube of spatial ``shape``.

    3D nets and 2D nets on anisotropic data cut patches only in the stored orientation; 2D nets
    on isotropic data (``anisotropic_data=False``) also slice across x and across y.
    """
    candidates = ORIENTATIONS if all_orientations else ORIENTATIONS[:1]
    return tuple(o for o in candidates if fits(tuple(shape[a] for a in o), geometry.patch))


def internal_box(order: tuple[int, int, int], box: Sequence[slice]) -> tuple[slice, ...]:
    """A box given in the axes of the slicing orientation ``order``, in the cube's own axes."""
    internal = [slice(None)] * 3
    for axis, window in zip(order, box, strict=True):
        internal[axis] = window
    return tuple(internal)


def oriented(array: np.ndarray, order: tuple[int, int, int], leading: int = 0) -> np.ndarray:
    """View of a cube or box (``leading`` non-spatial axes first) in the axis order ``order``."""
    if order == ORIENTATIONS[0]:
        return array
    return array.transpose(*range(leading), *(a + leading for a in order))


def random_start(
    rng: np.random.Generator, ranges: Sequence[tuple[int, int]]
) -> tuple[int, int, int]:
    """A start per axis, uniform over the inclusive ``(low, high)`` ranges."""
    return tuple(int(rng.integers(low, high + 1)) for low, high in ranges)


def cut_ranges(shape: Sequence[int], patch: Sequence[int]) -> tuple[tuple[int, int], ...]:
    """All starts of an unwarped patch: ``0 .. size - patch`` per axis, the last one included."""
    return tuple((0, n - p) for n, p in zip(shape, patch, strict=True))


def cut_boxes(
    start: Sequence[int], geometry: PatchGeometry
) -> tuple[tuple[slice, ...], tuple[slice, ...]]:
    """The boxes of the unwarped patch at ``start``: its image window and its label region."""
    window = tuple(slice(s, s + p) for s, p in zip(start, geometry.patch, strict=True))
    region = tuple(
        slice(s + r.start, s + r.stop) for s, r in zip(start, geometry.label_region, strict=True)
    )
    return window, region
