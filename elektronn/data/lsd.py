"""Local shape descriptors (Sheridan et al. 2022) of an ID patch, from their definition.

At each labelled voxel ``v`` of object ``O``, a Gaussian window ``g`` (standard deviation
``sigma`` voxels per axis) weighs the voxels ``u`` of ``O`` around ``v``. From the windowed
moments of ``O``

* mass ``m = sum g(u - v)`` over ``u`` in ``O``,
* centre of mass ``c = sum g(u - v) u / m``,
* covariance ``C = sum g(u - v) (u - c)(u - c)^T / m``,

the descriptor channels are, in this order (3D: 10, 2D: 6):

1. the mean offset ``c - v`` per axis (3 / 2), as ``0.5 + (c - v) / (4 sigma)``;
2. the covariance diagonal ``C_ii`` (3 / 2), as ``C_ii / sigma_i^2``;
3. the off-diagonal Pearson-like terms ``C_ij / sqrt(C_ii C_jj)`` for ``i < j`` (3 / 1), as
   ``0.5 + 0.5 r`` (0.5 where a variance is 0);
4. the size ``m / sum g`` (1): the share of the window the object fills.

Every channel is clipped to ``[0, 1]``, so a sigmoid output can learn it with a mean squared
error. Unlabelled voxels (negative IDs) belong to no object and get -1, the package's "ignore".
Each object is computed in its bounding box grown by the window's reach (``3 sigma``), so the
cost grows with the objects' volume, not with their number times the patch.
"""

from __future__ import annotations

from collections.abc import Sequence
from itertools import combinations

import numpy as np
from scipy import ndimage

from ..config.targets import n_descriptors
from .affinities import UNLABELLED

TRUNCATE = 3.0
"""Window reach in standard deviations (scipy's ``gaussian_filter`` truncation)."""


def _sigmas(sigma: float | Sequence[float], n_dim: int) -> np.ndarray:
    values = np.broadcast_to(np.asarray(sigma, np.float64), (n_dim,))
    if not (values > 0).all():
        raise ValueError(f"sigma {sigma!r} must be positive")
    return values


def _window(mask: np.ndarray, sigmas: np.ndarray) -> np.ndarray:
    """Gaussian-windowed sum of ``mask`` (zero outside the patch, so edges are not mirrored)."""
    return ndimage.gaussian_filter(mask, sigmas, mode="constant", truncate=TRUNCATE)


def _object_descriptors(
    inside: np.ndarray, sigmas: np.ndarray, full_mass: np.ndarray
) -> np.ndarray:
    """The descriptors of one object (``inside``) at every voxel of its (grown) box."""
    n_dim = inside.ndim
    grid = np.indices(inside.shape, np.float64)
    weight = inside.astype(np.float64)
    mass = _window(weight, sigmas)
    safe = np.maximum(mass, 1e-12)
    centre = np.stack([_window(weight * grid[a], sigmas) / safe for a in range(n_dim)])

    def covariance(a: int, b: int) -> np.ndarray:
        second = _window(weight * grid[a] * grid[b], sigmas) / safe
        return second - centre[a] * centre[b]

    variance = np.stack([np.maximum(covariance(a, a), 0.0) for a in range(n_dim)])
    pearson = []
    for a, b in combinations(range(n_dim), 2):
        scale = np.sqrt(variance[a] * variance[b])
        r = np.divide(covariance(a, b), scale, out=np.zeros_like(scale), where=scale > 1e-12)
        pearson.append(0.5 + 0.5 * r)
    channels = [
        *(0.5 + (centre[a] - grid[a]) / (4 * sigmas[a]) for a in range(n_dim)),
        *(variance[a] / sigmas[a] ** 2 for a in range(n_dim)),
        *pearson,
        mass / full_mass,
    ]
    return np.clip(np.stack(channels), 0.0, 1.0)


def local_shape_descriptors(ids: np.ndarray, sigma: float | Sequence[float]) -> np.ndarray:
    """The ``n_descriptors(ids.ndim)`` descriptor channels of every voxel, -1 where unlabelled.

    Parameters
    ----------
    ids
        ID patch (2D or 3D), negative = unlabelled.
    sigma
        Window standard deviation in voxels, one value or one per axis (the axes of ``ids``).

    Returns
    -------
    ``(n_descriptors, *ids.shape)`` float32 in ``[0, 1]``, -1 at unlabelled voxels.
    """
    n_dim = ids.ndim
    sigmas = _sigmas(sigma, n_dim)
    out = np.full((n_descriptors(n_dim), *ids.shape), UNLABELLED, np.float32)
    # the window's total weight at each voxel, cut by the patch edge like the object's mass
    full_mass = np.maximum(_window(np.ones(ids.shape), sigmas), 1e-12)
    reach = np.ceil(TRUNCATE * sigmas).astype(int)
    labels = np.where(ids >= 0, ids.astype(np.int64) + 1, 0)
    for index, box in enumerate(ndimage.find_objects(labels), start=1):
        if box is None:
            continue
        grown = tuple(
            slice(max(0, s.start - r), min(n, s.stop + r))
            for s, r, n in zip(box, reach, ids.shape, strict=True)
        )
        inside = labels[grown] == index
        # a grown box starts inside the patch: the coordinates are the box's own, which moves
        # the centre and the voxel alike and leaves every descriptor unchanged
        values = _object_descriptors(inside, sigmas, full_mass[grown])
        out[(slice(None), *grown)][:, inside] = values[:, inside]
    return out
