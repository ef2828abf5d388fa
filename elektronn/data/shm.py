"""Numpy arrays in anonymous shared memory, inherited by forked worker processes.

The volumes and the batch slots live in ``mmap(-1, n, MAP_SHARED)`` mappings. Why anonymous
mappings rather than named POSIX segments (``multiprocessing.shared_memory``):

* a forked child inherits the mapping itself, so every worker reads the *same* physical pages
  (no per-worker copy; PSS is shared between the processes) and nothing has to be attached
  by name;
* they have no name in ``/dev/shm``, so nothing can be left behind, not even when the trainer
  is killed with SIGKILL, and the 64 MB ``/dev/shm`` of default Docker containers does not
  limit the size of the data set;
* writes are shared, not copy-on-write, so worker-side refcount traffic on the numpy objects
  never duplicates the data buffers.
"""

from __future__ import annotations

import mmap
from math import prod

import numpy as np


def shared_empty(shape: tuple[int, ...], dtype: np.dtype | type) -> np.ndarray:
    """An uninitialised array backed by an anonymous shared mapping.

    The array keeps the mapping alive; it is unmapped when the last view is gone.
    """
    dtype = np.dtype(dtype)
    count = prod(shape)
    if count == 0:
        return np.empty(shape, dtype)
    buffer = mmap.mmap(-1, count * dtype.itemsize, flags=mmap.MAP_SHARED)
    return np.frombuffer(buffer, dtype=dtype, count=count).reshape(shape)


def to_shared(array: np.ndarray) -> np.ndarray:
    """A copy of ``array`` in shared memory (same dtype and shape, C order)."""
    out = shared_empty(array.shape, array.dtype)
    np.copyto(out, array)
    return out
