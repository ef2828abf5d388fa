"""The blockwise engine: a region cut into write blocks, each read with a context and
processed by one function call, resumable through done marks, here or on Dask.

Public API: :class:`Task`, :class:`Block`, :func:`run_task`, :class:`BlockwiseError`;
:func:`worker_threads` is the CPU threads each local worker gets. Prediction
(:mod:`elektronn.predict`) and segmentation are its users; it knows nothing of nets.
"""

from .errors import BlockwiseError
from .run import check_cluster_options, cluster_for, run_task
from .task import Block, Task
from .workers import worker_threads

__all__ = [
    "Block",
    "BlockwiseError",
    "Task",
    "check_cluster_options",
    "cluster_for",
    "run_task",
    "worker_threads",
]
