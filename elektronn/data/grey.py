"""Random grey-value augmentation (reference §3.5), for training batches only."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

#: Lower bound of the clipped values before the power: ``log2`` of an exact 0 (-inf) and
#: the tiny results near it send numpy's vectorised ``log2``/``exp2`` down paths about 2.5x
#: slower; ``2**-60`` keeps ``gamma * log2`` within normal float32 (gamma <= 2), and a 0
#: comes out as at most ``2**-30`` (1e-9).
POWER_FLOOR = 2.0**-60


def grey_augment(rng: np.random.Generator, data: np.ndarray, channels: Sequence[int]) -> None:
    """Distort the histogram of the listed channels of one example, in place.

    Per channel and example: ``x <- clip(alpha*x + c, 0, 1) ** gamma`` with
    ``alpha`` in [0.85, 1.15] (contrast), ``c`` in [-0.15, 0.15] (brightness) and
    ``gamma = 2**u``, ``u`` in [-1, 1] (non-linear lighter/darker); the same values for every
    z-slice of a 3D example. Assumes grey values in [0, 1] (clashes with 'standardise').

    The power is ``exp2(gamma * log2(x))`` with the lower clip at :data:`POWER_FLOOR`
    instead of 0: numpy's SIMD ``log2``/``exp2`` make the distortion ~0.4x the time of its
    scalar float32 ``power`` (the largest cost of augmenting a 2D patch); values agree with
    ``np.power`` to 1e-6, a clipped 0 comes out below 1e-9.
    """
    for channel in channels:
        alpha = 1.0 + 0.3 * (rng.random() - 0.5)
        shift = 0.3 * (rng.random() - 0.5)
        gamma = 2.0 ** (2.0 * rng.random() - 1.0)
        values = data[channel]
        values *= np.float32(alpha)
        values += np.float32(shift)
        np.clip(values, POWER_FLOOR, 1.0, out=values)
        np.log2(values, out=values)
        values *= np.float32(gamma)
        np.exp2(values, out=values)
