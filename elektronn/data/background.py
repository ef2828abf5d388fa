"""Training batches made by background worker processes (``background_processes``).

Design, and the original's faults it avoids (reference §3.9, §10.2):

* **One copy of the data.** :class:`~.image_data.ImageData` keeps its volumes in anonymous
  shared mappings (:mod:`.shm`). Workers are *forked*, so they inherit those mappings and read
  the very same pages; memory stays flat as workers are added. (Pickling the data to spawned
  processes would copy it; copy-on-write of ordinary numpy memory is not dependable, since
  refcount and GC traffic dirties pages. ``gc.freeze()`` before forking keeps the collector
  from touching the inherited objects at all.)
* **Pre-allocated shared slots.** Each worker owns ``slots_per_worker`` batch slots in shared
  memory, so it prefetches several batches; :meth:`BackgroundBatches.get` copies the oldest
  finished batch out and hands the slot back.
* **Independent random streams.** Every worker reseeds the data object from its own child of
  a ``SeedSequence`` (the original's workers shared numpy's global stream).
* **Settings reach the workers.** :meth:`BackgroundBatches.update` (e.g. ``warp_on=False``
  from the console) sends versioned settings; batches made under older settings are
  discarded, so the next :meth:`get` returns a batch made with the new ones.
* **No orphans, nothing left behind.** Workers ignore SIGINT (Ctrl+C opens the trainer's
  console), end on SIGTERM (not the trainer's handler), die with the trainer via
  ``prctl(PR_SET_PDEATHSIG, SIGKILL)`` on Linux and a parent-pid watchdog elsewhere, and all
  shared memory is anonymous: there is no name in ``/dev/shm`` that a SIGKILLed trainer could
  leave behind. Semaphores of the 'fork' context
  are unlinked at creation as well.

Why the 'fork' start method: it is the only one that hands the anonymous mappings (and the
data object) to the workers without pickling or naming anything, and it starts in
milliseconds. Its usual hazards do not apply to these workers: they never use an inherited
HDF5 handle (in-memory data was read and closed while loading; on-disk cubes,
:mod:`.ondisk`, notice the new process and open their files afresh; and a forked
``multiprocessing`` child ends with ``os._exit``, so no inherited ``atexit`` handler closes or
flushes the trainer's open files), never touch CUDA, and run torch single-threaded
(``torch.set_num_threads(1)``), so no OpenMP pool of the parent is needed. PR_SET_PDEATHSIG
fires when the *thread* that created the workers ends: create :class:`BackgroundBatches` in the
trainer's main thread.
"""

from __future__ import annotations

import collections
import ctypes
import gc
import inspect
import multiprocessing as mp
import os
import queue
import random
import signal
import sys
import threading
import traceback
import weakref
from typing import Any

import numpy as np
import torch

from .shm import shared_empty

_CTX = mp.get_context("fork")
_POLL_S = 0.5
_PR_SET_PDEATHSIG = 1
_M_MMAP_THRESHOLD = -3
_WORKER_SIGNALS = {signal.SIGINT, signal.SIGTERM}
"""Blocked while forking, so a worker never runs the trainer's handlers before setting its own."""
RESTART_KEYS = frozenset({"batch_size", "source", "strided", "ret_info", "ret_example_weights"})
"""getbatch arguments that change the batch layout: the workers are restarted with new slots."""


class BackgroundBatches:
    """Serve ``data.getbatch(**batch_kwargs)`` batches made by ``n_proc`` worker processes.

    Parameters
    ----------
    data
        A :class:`~.source.DataSource` (ImageData or a plug-in data class). Volumes should
        already be in shared memory (ImageData does this).
    batch_kwargs
        Keyword arguments of ``getbatch`` including ``batch_size``, e.g. from
        ``batch_kwargs_from_config``: the batch source owns them (:attr:`batch_kwargs`).
    n_proc
        Number of workers; 0 makes the batches in the calling process (same interface).
    slots_per_worker
        Batches each worker may have prefetched.
    seed
        Seed of the workers' streams; None draws it from ``data.rng`` when present (so a seeded
        ImageData gives reproducible streams), else from fresh entropy.

    Use it as a context manager, or call :meth:`close`; the workers are also stopped when the
    object is garbage-collected or the interpreter exits.
    """

    def __init__(
        self,
        data: Any,
        batch_kwargs: dict[str, Any],
        n_proc: int,
        *,
        slots_per_worker: int = 2,
        seed: int | None = None,
    ) -> None:
        if n_proc < 0 or slots_per_worker < 1:
            raise ValueError(
                f"n_proc must be >= 0 and slots_per_worker >= 1, got {n_proc}, {slots_per_worker}."
            )
        self.data = data
        self.batch_kwargs = dict(batch_kwargs)
        self.n_proc = int(n_proc)
        self.slots_per_worker = int(slots_per_worker)
        self._check_keys(self.batch_kwargs, attributes_allowed=False)
        if seed is None and data.rng is not None and self.n_proc:
            seed = int(data.rng.integers(2**63))
        self._seeds = np.random.SeedSequence(seed)
        self._version = 0
        self._finished_counts = np.zeros(2, np.int64)
        self._processes: list[mp.process.BaseProcess] = []
        self._closed = False
        if self.n_proc:
            self._start()

    # -- public interface ----------------------------------------------------------------

    def get(self) -> tuple[np.ndarray, ...]:
        """The next batch (arrays owned by the caller)."""
        if self._closed:
            raise RuntimeError("BackgroundBatches is closed.")
        if not self.n_proc:
            return self.data.getbatch(**self.batch_kwargs)
        while True:
            worker, slot, version = self._next_ready()
            try:
                if version == self._version:
                    return tuple(a.copy() for a in self._slots[slot])
            finally:  # also when interrupted: the worker gets its slot back
                self._inboxes[worker].put(("free", slot))

    def update(self, **changes: Any) -> None:
        """Change getbatch arguments or data attributes; batches from now on use them.

        Keys that are ``getbatch`` arguments update :attr:`batch_kwargs`; other keys must be
        existing attributes of the data object (e.g. ``upright_x``). Changes of the batch
        layout (:data:`RESTART_KEYS`) restart the workers with new slots.
        """
        kwargs, attributes = self._check_keys(changes, attributes_allowed=True)
        self.batch_kwargs.update(kwargs)
        self.data.apply_settings(attributes)
        if not self.n_proc or self._closed:
            return
        if RESTART_KEYS & kwargs.keys():
            self._stop()
            self._start()
            return
        self._version += 1
        for inbox in self._inboxes:
            inbox.put(("settings", self._version, kwargs, attributes))

    def close(self) -> None:
        """Stop the workers (idempotent)."""
        if not self._closed:
            self._closed = True
            if self.n_proc:
                self._stop()

    def __enter__(self) -> BackgroundBatches:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    @property
    def batch_size(self) -> int:
        """Examples per training batch (changeable with ``update(batch_size=...)``)."""
        return int(self.batch_kwargs["batch_size"])

    @property
    def pids(self) -> list[int]:
        """Process ids of the running workers."""
        return [p.pid for p in self._processes if p.pid is not None]

    @property
    def n_successful_warp(self) -> int:
        """Warped examples, summed over all workers (or the data object with ``n_proc=0``)."""
        return self.data.n_successful_warp if not self.n_proc else self._warp_count(0)

    @property
    def n_failed_warp(self) -> int:
        """Examples whose warp needed more than the cube had, summed over all workers."""
        return self.data.n_failed_warp if not self.n_proc else self._warp_count(1)

    # -- internals -----------------------------------------------------------------------

    def _warp_count(self, column: int) -> int:
        running = 0 if self._closed else int(self._counters[:, column].sum())
        return int(self._finished_counts[column]) + running

    def _check_keys(
        self, changes: dict[str, Any], attributes_allowed: bool
    ) -> tuple[dict[str, Any], dict[str, Any]]:
        kwargs = {k: v for k, v in changes.items() if self.data.accepts(k)}
        attributes = {k: v for k, v in changes.items() if k not in kwargs}
        settable = self.data.batch_settings().keys() if attributes_allowed else set()
        unknown = [k for k in attributes if k not in settable]
        if unknown:
            arguments = ", ".join(sorted(inspect.signature(self.data.getbatch).parameters))
            raise ValueError(
                f"{unknown} are neither arguments of {type(self.data).__name__}.getbatch "
                f"({arguments}) nor settable data attributes ({', '.join(sorted(settable))})."
            )
        return kwargs, attributes

    def _start(self) -> None:
        probe_kwargs = dict(self.batch_kwargs)
        if "warp_on" in probe_kwargs:
            probe_kwargs["warp_on"] = False
        layout = [(a.shape, a.dtype) for a in self.data.getbatch(**probe_kwargs)]
        n_slots = self.n_proc * self.slots_per_worker
        self._slots = [[shared_empty(s, d) for s, d in layout] for _ in range(n_slots)]
        self._counters = shared_empty((self.n_proc, 2), np.int64)
        self._counters[:] = 0
        self._ready = _CTX.Queue()
        self._inboxes = [_CTX.Queue() for _ in range(self.n_proc)]
        seeds = self._seeds.spawn(self.n_proc)
        parent = os.getpid()
        blocked = signal.pthread_sigmask(signal.SIG_BLOCK, _WORKER_SIGNALS)
        gc.freeze()
        try:
            for w in range(self.n_proc):
                own = range(w * self.slots_per_worker, (w + 1) * self.slots_per_worker)
                process = _CTX.Process(
                    target=_work,
                    name=f"elektronn-batches-{w}",
                    args=(
                        parent,
                        w,
                        self.data,
                        dict(self.batch_kwargs),
                        seeds[w],
                        self._slots,
                        list(own),
                        self._counters,
                        self._inboxes[w],
                        self._ready,
                        self._version,
                    ),
                    daemon=True,
                )
                process.start()
                self._processes.append(process)
        finally:
            gc.unfreeze()
            signal.pthread_sigmask(signal.SIG_SETMASK, blocked)
        self._finalizer = weakref.finalize(
            self, _shut_down, list(self._processes), self._inboxes + [self._ready]
        )

    def _stop(self) -> None:
        self._finished_counts += self._counters.sum(axis=0)
        self._finalizer()
        self._processes = []

    def _next_ready(self) -> tuple[int, int, int]:
        while True:
            try:
                item = self._ready.get(timeout=_POLL_S)
            except queue.Empty:
                dead = [(p.name, p.exitcode) for p in self._processes if p.exitcode is not None]
                if dead:
                    raise RuntimeError(
                        f"Background batch workers ended unexpectedly (name, exit code): {dead}."
                    ) from None
                continue
            if item[0] == "error":
                raise RuntimeError(f"Background batch worker {item[1]} failed:\n{item[2]}")
            return item


def _shut_down(processes: list, queues: list) -> None:
    """Ask workers to stop, then terminate/kill stragglers; close the queues."""
    for q in queues[:-1]:
        try:
            q.put(("stop",))
        except (OSError, ValueError):
            pass
    for process in processes:
        process.join(timeout=2.0)
        if process.is_alive():
            process.terminate()
            process.join(timeout=1.0)
        if process.is_alive():
            process.kill()
            process.join()
    for q in queues:
        q.cancel_join_thread()
        q.close()


def _die_with_parent(parent: int) -> None:
    """Make the kernel SIGKILL this process when the trainer dies (Linux)."""
    if sys.platform.startswith("linux"):
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(_PR_SET_PDEATHSIG, int(signal.SIGKILL), 0, 0, 0)
    if os.getppid() != parent:
        os._exit(0)


def _reseed(data: Any, seed: np.random.SeedSequence) -> None:
    """Independent streams per worker, also for plug-in data classes that use global RNGs."""
    data.reseed(seed)
    state = seed.generate_state(2)
    np.random.seed(int(state[0]))
    random.seed(int(state[1]))
    torch.manual_seed(int(state[1]))


def _fresh_allocations() -> None:
    """Keep the worker's temporaries out of the pages it shares with the trainer (glibc).

    A forked worker would otherwise carve its temporaries out of free chunks of the trainer's
    heap, and every page it writes there is copied. A fixed ``M_MMAP_THRESHOLD`` of 64 KiB
    serves the large temporaries (slabs, grids, patches) from fresh mappings that are returned
    to the system when freed; the loop runs in its own thread, whose malloc arena is new.
    Together they halve a worker's private memory (about 20 -> 10 MB in the benchmark).
    """
    mallopt = getattr(ctypes.CDLL(None), "mallopt", None)
    if mallopt is not None:
        mallopt(_M_MMAP_THRESHOLD, 64 * 1024)


def _work(parent: int, *args: Any) -> None:
    """Worker process entry: signals and parent watch here, the batch loop in a new thread."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_DFL)  # not the trainer's handler: terminate() works
    signal.pthread_sigmask(signal.SIG_UNBLOCK, _WORKER_SIGNALS)
    _die_with_parent(parent)
    _fresh_allocations()
    loop = threading.Thread(target=_serve, args=(parent, *args), name="elektronn-batch-loop")
    loop.start()
    loop.join()


def _serve(
    parent: int,
    worker: int,
    data: Any,
    kwargs: dict[str, Any],
    seed: np.random.SeedSequence,
    slots: list[list[np.ndarray]],
    own_slots: list[int],
    counters: np.ndarray,
    inbox: Any,
    ready: Any,
    version: int,
) -> None:
    """Worker loop: apply messages, fill free slots, report them as ready."""
    torch.set_num_threads(1)
    _reseed(data, seed)
    data.n_successful_warp = data.n_failed_warp = 0
    free = collections.deque(own_slots)
    try:
        while True:
            try:
                message = inbox.get_nowait() if free else inbox.get(timeout=_POLL_S)
            except queue.Empty:
                if os.getppid() != parent:
                    return
                if not free:
                    continue
            else:
                if message[0] == "stop":
                    return
                if message[0] == "free":
                    free.append(message[1])
                else:
                    _, version, changed, attributes = message
                    kwargs.update(changed)
                    data.apply_settings(attributes)
                continue
            slot = free.popleft()
            batch = data.getbatch(**kwargs)
            for target, array in zip(slots[slot], batch, strict=True):
                if target.shape != array.shape:
                    raise ValueError(
                        f"getbatch returned shape {array.shape} where the batch layout has "
                        f"{target.shape}; change layout-defining settings through update()."
                    )
                np.copyto(target, array)
            counters[worker] = (data.n_successful_warp, data.n_failed_warp)
            ready.put((worker, slot, version))
    except BaseException:
        ready.put(("error", worker, traceback.format_exc()))
