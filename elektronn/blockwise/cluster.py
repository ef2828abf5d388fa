"""Running blocks on Dask distributed: a LocalCluster of N workers, or an existing scheduler.

Imported only for ``workers`` / ``scheduler``, so the single-process path pays no Dask
import. Workers are single-threaded processes; each opens what its blocks need itself (the
process function's business), the graph holds the task record and one block. A worker that
dies is replaced by its nanny and the scheduler reruns its block; a block whose task raises
is resubmitted up to ``retries`` times by the client, then reported as failed.
"""

from __future__ import annotations

import contextlib
import itertools
from collections.abc import Iterable, Iterator

import dask
from dask.distributed import Client, LocalCluster, as_completed

from .errors import BlockwiseError
from .failures import BlockFailure, Report
from .task import Block, Index, Task, run_block
from .workers import worker_threads

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
            raise BlockwiseError(
                f"--scheduler {scheduler!r}: no Dask scheduler answered within "
                f"{CONNECT_TIMEOUT} s ({type(exc).__name__}: {exc}). Give the address that "
                f"'dask scheduler' prints (e.g. tcp://host:8786), check that it runs and is "
                f"reachable from here, or give a number of workers for a cluster on this "
                f"machine (--workers N)."
            ) from None
        with client:
            yield client
        return
    with dask.config.set({SPAWN_ENVIRON: worker_environ(worker_threads(workers))}):
        cluster = LocalCluster(
            n_workers=workers,
            threads_per_worker=1,
            processes=True,
            dashboard_address=None,
            memory_limit=0,
        )
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


def run_on_dask(
    task: Task, blocks: Iterable[Block], client: Client, report: Report, retries: int
) -> list[BlockFailure]:
    """Run ``blocks`` on the cluster, a bounded number in flight; returns the failures.

    At most a few blocks per worker are submitted at a time, so the scheduler's and the
    client's memory do not grow with the volume.
    """
    pending = iter(blocks)
    in_flight = max(4, 2 * sum(client.nthreads().values()))
    attempts: dict[Index, int] = {}
    block_of: dict[str, Block] = {}
    running = as_completed(loop=client.loop)

    def submit(block: Block) -> None:
        attempts[block.index] = attempts.get(block.index, 0) + 1
        future = client.submit(run_block, task, block, pure=False)
        block_of[future.key] = block
        running.add(future)

    for block in itertools.islice(pending, in_flight):
        submit(block)
    failures: list[BlockFailure] = []
    for future in running:
        block = block_of.pop(future.key)
        if future.status == "finished":
            report(future.result(), None, False)
        elif attempts[block.index] <= retries:
            report(None, None, True)
            submit(block)
        else:
            failure = BlockFailure(block.index, future.exception())
            failures.append(failure)
            report(None, failure, False)
        future.release()
        for nxt in itertools.islice(pending, 1):
            submit(nxt)
    return failures
