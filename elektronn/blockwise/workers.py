"""How many CPU threads each worker of a local cluster gets."""

from __future__ import annotations

import os


def worker_threads(workers: int) -> int:
    """CPU threads per local worker: the cores shared out, at least one."""
    return max(1, (os.cpu_count() or 1) // workers)
