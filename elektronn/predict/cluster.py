"""Running blocks on Dask distributed: a LocalCluster of N workers, or an existing scheduler.

Imported only for ``--workers`` / ``--scheduler``, so the single-process path pays no Dask
import. Workers are single-threaded processes; each opens the model and the stores itself
(:func:`.blockwise.job_state`), the graph holds block indices only. A worker that dies is
replaced by its nanny and the scheduler reruns its block; a block whose task raises is
resubmitted up to :data:`RETRIES` times by the client, then reported as failed.
"""

from __future__ import annotations

import contextlib
import itertools
import os
from collections.abc import Iterable, Iterator

import dask
from dask.distributed import Client, LocalCluster, as_completed

from .blockwise import BlockFailure, BlockJob, Index, Report, predict_block
from .errors import PredictionError

#: Resubmissions of a block whose task raised (e.g. a transient read error).
RETRIES = 2

#: Seconds to wait for a scheduler given by --scheduler.
CONNECT_TIMEOUT = 10


@contextlib.contextmanager
def dask_client(workers: int | None, scheduler: str | None) -> Iterator[Client]:
    """A client of a new LocalCluster (``workers`` processes) or of ``scheduler``.

    Not made dask's default client: blocks are submitted to it explicitly, and a program that
    calls the prediction keeps its own dask scheduler setting.
    """
    if scheduler is not None:
        try:
            client = Client(scheduler, timeout=f"{CONNECT_TIMEOUT}s", set_as_default=False)
        except (OSError, TimeoutError, ValueError) as exc:
            raise PredictionError(
                f"--scheduler {scheduler!r}: no Dask scheduler answered within "
                f"{CONNECT_TIMEOUT} s ({type(exc).__name__}: {exc}). Give the address that "
                f"'dask scheduler' prints (e.g. tcp://host:8786), check that it runs and is "
                f"reachable from here, or use --workers N for a cluster on this machine."
            ) from None
        with client:
            yield client
        return
    with dask.config.set({SPAWN_ENVIRON: worker_environ(torch_threads(workers))}):
        cluster = LocalCluster(n_workers=workers, threads_per_worker=1, processes=True,
                               dashboard_address=None, memory_limit=0)  # fmt: skip
    with cluster, Client(cluster, set_as_default=False) as client:
        yield client


SPAWN_ENVIRON = "distributed.nanny.pre-spawn-environ"
THREAD_VARIABLES = ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS")


def worker_environ(threads: int) -> dict:
    """Dask's worker environment, with ``threads`` OpenMP/BLAS threads and glibc's own trim.

    Dask's nanny starts workers with 1 OpenMP thread (torch sizes its CPU thread pool from it
    at import, ``set_num_threads`` later does not undo it) and a 64 KiB malloc trim threshold
    (every large torch temporary is unmapped and mapped again). Measured on 2 cores: a worker
    predicted at half the single-process speed with both, at the same speed without them
    (benchmarks/RESULTS.md).
    """
    environ = dict(dask.config.get(SPAWN_ENVIRON, default={}))
    environ.pop("MALLOC_TRIM_THRESHOLD_", None)
    environ.update({name: str(threads) for name in THREAD_VARIABLES})
    return environ


def torch_threads(workers: int) -> int:
    """Torch threads per local worker: the cores shared out, at least one."""
    return max(1, (os.cpu_count() or 1) // workers)


def run_on_dask(
    job: BlockJob, blocks: Iterable[Index], client: Client, report: Report
) -> list[BlockFailure]:
    """Predict ``blocks`` on the cluster, a bounded number in flight; returns the failures.

    At most a few blocks per worker are submitted at a time, so the scheduler's and the
    client's memory do not grow with the volume.
    """
    pending = iter(blocks)
    in_flight = max(4, 2 * sum(client.nthreads().values()))
    attempts: dict[Index, int] = {}
    index_of: dict[str, Index] = {}
    running = as_completed(loop=client.loop)

    def submit(index: Index) -> None:
        attempts[index] = attempts.get(index, 0) + 1
        future = client.submit(predict_block, job, index, pure=False)
        index_of[future.key] = index
        running.add(future)

    for index in itertools.islice(pending, in_flight):
        submit(index)
    failures: list[BlockFailure] = []
    for future in running:
        index = index_of.pop(future.key)
        if future.status == "finished":
            report(future.result(), None, False)
        elif attempts[index] <= RETRIES:
            report(None, None, True)
            submit(index)
        else:
            failure = BlockFailure(index, future.exception())
            failures.append(failure)
            report(None, failure, False)
        future.release()
        for nxt in itertools.islice(pending, 1):
            submit(nxt)
    return failures
