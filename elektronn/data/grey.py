"""Random grey-value augmentation (reference §3.5), for training batches only."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np


def grey_augment(rng: np.random.Generator, data: np.ndarray, channels: Sequence[int]) -> None:
    """Distort the histogram of the listed channels of one example, in place.

    Per channel and example: ``x <- clip(alpha*x + c, 0, 1) ** gamma`` with
    ``alpha`` in [0.85, 1.15] (contrast), ``c`` in [-0.15, 0.15] (brightness) and
    ``gamma = 2**u``, ``u`` in [-1, 1] (non-linear lighter/darker); the same values for every
    z-slice of a 3D example. Assumes grey values in [0, 1] (clashes with 'standardise').
    """
    for channel in channels:
        alpha = 1.0 + 0.3 * (rng.random() - 0.5)
        shift = 0.3 * (rng.random() - 0.5)
        gamma = 2.0 ** (2.0 * rng.random() - 1.0)
        values = data[channel]
        values *= np.float32(alpha)
        values += np.float32(shift)
        np.clip(values, 0.0, 1.0, out=values)
        _power_in_place(values, gamma)


def _power_in_place(values: np.ndarray, gamma: float) -> None:
    """``values **= gamma`` for values in [0, 1], as ``exp2(gamma * log2(values))``.

    numpy's SIMD ``log2``/``exp2`` take ~0.6x the time of its scalar float32 ``power`` (the
    largest cost of grey augmentation on a 2D patch); the result differs from ``power`` by at
    most 1e-7. ``log2(0) = -inf`` gives ``exp2(-inf) = 0``, as ``0 ** gamma`` for ``gamma > 0``.
    """
    with np.errstate(divide="ignore"):
        np.log2(values, out=values)
    values *= np.float32(gamma)
    np.exp2(values, out=values)
