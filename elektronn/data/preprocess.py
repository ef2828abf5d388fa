"""Preprocessing: x/y down-sampling and standardisation.

Down-sampling works on any block-aligned box, so the on-disk mode applies it to the boxes it
reads and gets the same values as the in-memory mode, which applies it to whole volumes.
"""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np


def centred_multiple(n: int, factor: int) -> slice:
    """The centred range of ``n`` whose length is a multiple of ``factor``."""
    start = (n % factor) // 2
    return slice(start, start + n // factor * factor)


def downsample_image(image: np.ndarray, factor: int) -> np.ndarray:
    """Box-average ``(ch, z, x, y)`` data over ``factor``×``factor`` blocks in x and y (float32).

    x and y are first cropped (centred) to multiples of ``factor``; because labels are cropped
    the same way (:func:`downsample_labels`) the registration ``labels[i] <-> image[i]`` holds
    after down-sampling too.
    """
    ch, nz, nx, ny = image.shape
    image = image[:, :, centred_multiple(nx, factor), centred_multiple(ny, factor)]
    blocks = image.reshape(ch, nz, nx // factor, factor, ny // factor, factor)
    return blocks.mean(axis=(3, 5), dtype=np.float32)


def downsample_labels(labels: np.ndarray, factor: int) -> np.ndarray:
    """Down-sample ``(z, x, y)`` labels like :func:`downsample_image`.

    Class labels take the most frequent value of each block (ties: the smaller value, so a
    block half unlabelled stays unlabelled) -- the mean of class numbers, as the original
    computed, is not a class. Regression labels (float) take the block mean.
    """
    nz, nx, ny = labels.shape
    labels = labels[:, centred_multiple(nx, factor), centred_multiple(ny, factor)]
    blocks = labels.reshape(nz, nx // factor, factor, ny // factor, factor)
    if np.issubdtype(labels.dtype, np.floating):
        return blocks.mean(axis=(2, 4), dtype=np.float32)
    values = np.unique(labels)
    counts = np.stack([(blocks == v).sum(axis=(2, 4), dtype=np.int32) for v in values])
    return values[counts.argmax(axis=0)].astype(labels.dtype)


def image_statistics(slabs: Iterable[np.ndarray]) -> tuple[float, float]:
    """Mean and standard deviation over all voxels of all slabs (float64 accumulation).

    The slabs are the z-chunks of every cube (``Volume.image_slabs``), the same in both data
    modes, so the sums -- and the statistics -- agree to the last bit. A standard deviation of
    0 (constant images) is returned as 1, so standardising never divides by zero.
    """
    total, total_sq, count = 0.0, 0.0, 0
    for slab in slabs:
        chunk = slab.astype(np.float64).reshape(-1)
        total += chunk.sum()
        total_sq += np.dot(chunk, chunk)
        count += chunk.size
    mean = total / count
    std = float(np.sqrt(max(total_sq / count - mean * mean, 0.0)))
    return mean, std if std > 0 else 1.0


def normalise(image: np.ndarray, mean: float, std: float) -> None:
    """``pre_process='standardise'``: ``(x - mean) / std`` in place, in float32.

    Element by element, so a box read from disk gets the same values as the same voxels of a
    whole volume in memory.
    """
    image -= np.float32(mean)
    image *= np.float32(1.0 / std)
