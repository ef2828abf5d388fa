"""Whole-volume preprocessing at load time: x/y down-sampling and standardisation."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

_CHUNK_VOXELS = 1 << 24


def _centred_multiple(n: int, factor: int) -> slice:
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
    image = image[:, :, _centred_multiple(nx, factor), _centred_multiple(ny, factor)]
    blocks = image.reshape(ch, nz, nx // factor, factor, ny // factor, factor)
    return blocks.mean(axis=(3, 5), dtype=np.float32)


def downsample_labels(labels: np.ndarray, factor: int) -> np.ndarray:
    """Down-sample ``(z, x, y)`` labels like :func:`downsample_image`.

    Class labels take the most frequent value of each block (ties: the smaller value, so a
    block half unlabelled stays unlabelled) -- the mean of class numbers, as the original
    computed, is not a class. Regression labels (float) take the block mean.
    """
    nz, nx, ny = labels.shape
    labels = labels[:, _centred_multiple(nx, factor), _centred_multiple(ny, factor)]
    blocks = labels.reshape(nz, nx // factor, factor, ny // factor, factor)
    if np.issubdtype(labels.dtype, np.floating):
        return blocks.mean(axis=(2, 4), dtype=np.float32)
    values = np.unique(labels)
    counts = np.stack([(blocks == v).sum(axis=(2, 4), dtype=np.int32) for v in values])
    return values[counts.argmax(axis=0)].astype(labels.dtype)


def image_statistics(images: Sequence[np.ndarray]) -> tuple[float, float]:
    """Mean and standard deviation over all voxels of all images (float64 accumulation)."""
    total, total_sq, count = 0.0, 0.0, 0
    for image in images:
        flat = image.reshape(-1)
        for start in range(0, flat.size, _CHUNK_VOXELS):
            chunk = flat[start : start + _CHUNK_VOXELS].astype(np.float64)
            total += chunk.sum()
            total_sq += np.dot(chunk, chunk)
            count += chunk.size
    mean = total / count
    return mean, float(np.sqrt(max(total_sq / count - mean * mean, 0.0)))


def standardise(images: Sequence[np.ndarray]) -> tuple[float, float]:
    """``pre_process='standardise'``: zero mean, unit standard deviation over all voxels.

    Works in place (the images are already in shared memory) and returns the mean and the
    standard deviation used, so that prediction can apply the same transform to new data.
    """
    mean, std = image_statistics(images)
    std = std if std > 0 else 1.0
    for image in images:
        flat = image.reshape(-1)
        for start in range(0, flat.size, _CHUNK_VOXELS):
            chunk = flat[start : start + _CHUNK_VOXELS]
            chunk -= np.float32(mean)
            chunk *= np.float32(1.0 / std)
    return mean, std
