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
* **No orphans, nothing left behind.** Workers ignore SIGINT and SIGHUP (the trainer
  opens its console or ends them), end on SIGTERM (not the trainer's handler), die with the
  trainer via ``prctl(PR_SET_PDEATHSIG, SIGKILL)`` on Linux and a parent-pid watchdog
  elsewhere, and all shared memory is anonymous: there is no name in ``/dev/shm`` that a
  SIGKILLed trainer could leave behind. Semaphores of the 'fork' context
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
import multiprocessing.connection
import os
import queue
import random
import signal
import sys
import threading
import time
import traceback
import weakref
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch

from .errors import DataError
from .shm import shared_empty

_CTX = mp.get_context("fork")
_POLL_S = 0.5
_PR_SET_PDEATHSIG = 1
_M_MMAP_THRESHOLD = -3
_WORKER_SIGNALS = {signal.SIGINT, signal.SIGTERM, signal.SIGHUP}
"""Blocked while forking, so a worker never runs the trainer's handlers before setting its own."""
RESTART_KEYS = frozenset({"batch_size", "source", "strided", "ret_info", "ret_example_weights"})
"""getbatch arguments that change the batch layout: the workers are restarted with new slots."""
MAX_RESTARTS = 3
"""Workers replaced (died, hung or failed) before the run is ended instead."""
HUNG_FLOOR_S = 60.0
HUNG_BATCHES = 20
"""A worker is hung when it delivers nothing for max(floor, this many batch times)."""


class WorkersFailed(DataError):
    """The batch workers kept dying or failing; the message says how (one paragraph)."""


class WaitStopped(Exception):
    """Waiting for a batch was given up because the run is to stop (SIGTERM, max_runtime)."""


# -- the worker protocol: what the trainer and a worker send each other ----------------------


@dataclass(frozen=True)
class FreeSlot:
    """Trainer → worker: the batch in slot ``slot`` was copied out; fill it again."""

    slot: int


@dataclass(frozen=True)
class NewSettings:
    """Trainer → worker: make batches with these settings from now on.

    ``batch_kwargs`` replaces all of the worker's getbatch arguments; ``attributes`` are the
    changed data attributes; ``version`` tags the batches made with them.
    """

    version: int
    batch_kwargs: dict[str, Any]
    attributes: dict[str, Any]


@dataclass(frozen=True)
class Stop:
    """Trainer → worker: end now."""


@dataclass(frozen=True)
class BatchReady:
    """Worker → trainer: slot ``slot`` holds a batch made under settings ``version``.

    ``generation`` says which incarnation of worker ``worker`` made it: messages of a replaced
    worker are ignored, since its slots were replaced too.
    """

    worker: int
    generation: int
    slot: int
    version: int


@dataclass(frozen=True)
class BatchFailed:
    """Worker → trainer: ``getbatch`` raised; ``trace`` is the worker's traceback."""

    worker: int
    generation: int
    trace: str


ToWorker = FreeSlot | NewSettings | Stop
"""What a worker's inbox carries."""
FromWorker = BatchReady | BatchFailed
"""What a worker's pipe carries."""


@dataclass
class _Worker:
    """One worker process and everything the trainer keeps about it.

    Attributes
    ----------
    process
        The forked process.
    inbox
        Queue of :data:`ToWorker` messages.
    reader, writer
        The pipe of its :data:`FromWorker` messages (its own, so a worker killed while sending
        breaks only its own channel).
    slots
        Its shared batch slots (one list of arrays per slot, numbered from 0).
    counters
        Its shared warp counters ``(n_successful_warp, n_failed_warp)``.
    generation
        How often worker number ``index`` was replaced before this one.
    pending
        Slots handed to it whose batches have not arrived yet (0: idle).
    last_seen
        ``time.monotonic()`` of its last delivery, or of the moment it became busy.
    confirmed
        Whether it delivered a batch made with the current settings.
    """

    process: mp.process.BaseProcess
    inbox: Any
    reader: mp.connection.Connection
    writer: mp.connection.Connection
    slots: list[list[np.ndarray]]
    counters: np.ndarray
    generation: int
    pending: int
    last_seen: float = field(default_factory=time.monotonic)
    confirmed: bool = False

    def close_channels(self) -> None:
        """Close the inbox (without waiting for its feeder) and both ends of the pipe."""
        self.inbox.cancel_join_thread()
        self.inbox.close()
        self.reader.close()
        self.writer.close()


@dataclass(frozen=True)
class _Assignment:
    """What a new worker is told: who it is and the settings to start with."""

    index: int
    generation: int
    version: int
    batch_kwargs: dict[str, Any]


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
    hung_floor_s
        The least time without a batch after which a busy worker counts as hung (the timeout
        is :data:`HUNG_BATCHES` measured batch times, at least this).
    report
        Where the one-line reports of replaced workers go.

    The watchdog: a worker that dies (any exit or signal) or hangs is reported in one line and
    replaced, :data:`MAX_RESTARTS` times at most, then :class:`WorkersFailed` ends the run. A
    worker that fails on settings just sent by :meth:`update` makes the batch source restore
    the previous settings (reported) instead of ending the run.

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
        hung_floor_s: float = HUNG_FLOOR_S,
        report: Callable[[str], object] = print,
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
        self._workers: list[_Worker] = []
        self._arrived: collections.deque[FromWorker] = collections.deque()
        self._closed = False
        self._hung_floor_s = float(hung_floor_s)
        self._report = report
        self._restarts = 0
        self._previous: tuple[dict[str, Any], dict[str, Any]] | None = None
        if self.n_proc:
            self._start()

    # -- public interface ----------------------------------------------------------------

    def get(self, should_stop: Callable[[], bool] | None = None) -> tuple[np.ndarray, ...]:
        """The next batch (arrays owned by the caller).

        Raises
        ------
        WaitStopped
            When ``should_stop()`` becomes true while waiting (checked every 0.5 s).
        WorkersFailed
            When the workers kept failing (after :data:`MAX_RESTARTS` replacements).
        """
        if self._closed:
            raise RuntimeError("BackgroundBatches is closed.")
        if not self.n_proc:
            return self.data.getbatch(**self.batch_kwargs)
        while True:
            ready = self._next_ready(should_stop)
            worker = self._workers[ready.worker]
            if ready.generation != worker.generation:
                continue  # from a replaced worker: its slots were replaced too
            try:
                if ready.version == self._version:
                    return tuple(a.copy() for a in worker.slots[ready.slot])
            finally:  # also when interrupted: the worker gets its slot back
                self._give_slot(worker, ready.slot)

    def update(self, **changes: Any) -> None:
        """Change getbatch arguments or data attributes; batches from now on use them.

        Keys that are ``getbatch`` arguments update :attr:`batch_kwargs`; other keys must be
        existing attributes of the data object (e.g. ``upright_x``). Changes of the batch
        layout (:data:`RESTART_KEYS`) restart the workers with new slots.
        """
        kwargs, attributes = self._check_keys(changes, attributes_allowed=True)
        settings = self.data.batch_settings()
        previous = (dict(self.batch_kwargs), {k: settings[k] for k in attributes})
        self.batch_kwargs.update(kwargs)
        self.data.apply_settings(attributes)
        if not self.n_proc or self._closed:
            return
        if RESTART_KEYS & kwargs.keys():
            self._stop()
            self._start()
            return
        self._previous = previous
        self._send_settings(attributes)

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
        return [w.process.pid for w in self._workers if w.process.pid is not None]

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
        running = sum(int(w.counters[column]) for w in self._workers)
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
        """Measure one batch (its layout sizes the slots), then fork all workers."""
        probe_kwargs = dict(self.batch_kwargs)
        if "warp_on" in probe_kwargs:
            probe_kwargs["warp_on"] = False
        t0 = time.perf_counter()
        self._layout = [(a.shape, a.dtype) for a in self.data.getbatch(**probe_kwargs)]
        self._batch_time = time.perf_counter() - t0
        self._arrived.clear()
        self._last_check = time.monotonic()
        self._workers = [self._spawn(index, generation=0) for index in range(self.n_proc)]
        self._finalizer = weakref.finalize(self, _shut_down, self._workers)

    def _spawn(self, index: int, generation: int) -> _Worker:
        """Fork worker ``index`` with new slots and channels, all slots free, a fresh stream."""
        (seed,) = self._seeds.spawn(1)
        slots = [
            [shared_empty(s, d) for s, d in self._layout] for _ in range(self.slots_per_worker)
        ]
        counters = shared_empty((2,), np.int64)
        counters[:] = 0
        inbox = _CTX.Queue()
        reader, writer = _CTX.Pipe(duplex=False)
        blocked = signal.pthread_sigmask(signal.SIG_BLOCK, _WORKER_SIGNALS)
        gc.freeze()
        try:
            process = _CTX.Process(
                target=_work,
                name=f"elektronn-batches-{index}",
                args=(
                    os.getpid(),
                    _Assignment(index, generation, self._version, dict(self.batch_kwargs)),
                    self.data,
                    seed,
                    slots,
                    counters,
                    inbox,
                    writer,
                ),
                daemon=True,
            )
            process.start()
        finally:
            gc.unfreeze()
            signal.pthread_sigmask(signal.SIG_SETMASK, blocked)
        return _Worker(
            process, inbox, reader, writer, slots, counters, generation, self.slots_per_worker
        )

    def _stop(self) -> None:
        self._finished_counts += sum((w.counters for w in self._workers), np.zeros(2, np.int64))
        self._finalizer()
        self._workers = []

    def _give_slot(self, worker: _Worker, slot: int) -> None:
        if worker.pending == 0:
            worker.last_seen = time.monotonic()  # idle until now, busy from now on
        worker.pending += 1
        worker.inbox.put(FreeSlot(slot))

    def _send_settings(self, attributes: dict[str, Any]) -> None:
        """All getbatch arguments (they replace the workers') and the changed attributes."""
        self._version += 1
        message = NewSettings(self._version, dict(self.batch_kwargs), attributes)
        for worker in self._workers:
            worker.confirmed = False
            worker.inbox.put(message)

    def _next_ready(self, should_stop: Callable[[], bool] | None) -> BatchReady:
        """The next message of a finished batch, replacing dead, hung or failed workers."""
        while True:
            if time.monotonic() - self._last_check > _POLL_S:  # also while others deliver
                self._last_check = time.monotonic()
                self._replace_dead_or_hung()
            if not self._arrived and not self._receive():
                if should_stop is not None and should_stop():
                    raise WaitStopped
                continue
            message = self._arrived.popleft()
            if isinstance(message, BatchFailed):
                self._worker_failed(message)
                continue
            self._note_delivery(message)
            return message

    def _receive(self) -> bool:
        """Wait up to 0.5 s for messages of the workers; whether any arrived.

        Each worker has its own pipe, so a worker killed while sending breaks only its own
        channel, which :meth:`_replace` renews.
        """
        readers = [w.reader for w in self._workers if not w.reader.closed]
        for conn in mp.connection.wait(readers, timeout=_POLL_S):
            try:
                self._arrived.append(conn.recv())
            except (EOFError, OSError):  # the worker ended; the next check replaces it
                conn.close()
        return bool(self._arrived)

    def _note_delivery(self, ready: BatchReady) -> None:
        """Batch timing for the hung-worker limit; new settings count as working once every
        worker delivered a batch made with them."""
        worker = self._workers[ready.worker]
        if ready.generation != worker.generation:
            return
        if ready.version == self._version:
            worker.confirmed = True
            if all(w.confirmed for w in self._workers):
                self._previous = None
        now = time.monotonic()
        interval = (now - worker.last_seen) / max(self.n_proc, 1)
        self._batch_time = 0.9 * self._batch_time + 0.1 * interval
        worker.pending -= 1
        worker.last_seen = now

    def _hung_after_s(self) -> float:
        return max(self._hung_floor_s, HUNG_BATCHES * self._batch_time * self.n_proc)

    def _replace_dead_or_hung(self) -> None:
        now, limit = time.monotonic(), self._hung_after_s()
        for index, worker in enumerate(self._workers):
            if worker.process.exitcode is not None:
                self._replace(index, f"ended ({_how_it_ended(worker.process.exitcode)})")
            elif worker.pending and now - worker.last_seen > limit:
                silent = now - worker.last_seen
                self._replace(
                    index,
                    f"delivered no batch for {silent:.0f} s (hung; the limit is {limit:.0f} s)",
                )

    def _worker_failed(self, failed: BatchFailed) -> None:
        """A getbatch error in a worker: new settings are undone, anything else is a failure."""
        if failed.generation != self._workers[failed.worker].generation:
            return
        last_line = failed.trace.strip().splitlines()[-1]
        if self._previous is not None:
            kwargs, attributes = self._previous
            self._previous = None
            new_kwargs = [k for k, v in self.batch_kwargs.items() if kwargs.get(k, ()) != v]
            undone = sorted({*new_kwargs, *attributes})
            self.batch_kwargs.clear()
            self.batch_kwargs.update(kwargs)
            self.data.apply_settings(attributes)
            self._send_settings(attributes)
            self._report(
                f"Background batch worker {failed.worker} failed with the new batch settings "
                f"({last_line}); they are undone, {', '.join(undone)} as before."
            )
            self._replace(failed.worker, None)
            return
        self._replace(failed.worker, f"failed: {last_line}", failed.trace)

    def _replace(self, index: int, why: str | None, trace: str = "") -> None:
        """Kill worker ``index`` if it still runs and fork a new one with fresh slots."""
        if why is not None:
            self._restarts += 1
            if self._restarts > MAX_RESTARTS:
                raise WorkersFailed(
                    f"Background batch worker {index} {why}, and the workers were replaced "
                    f"{MAX_RESTARTS} times already, so the run ends. Check the data (and "
                    f"memory: a worker killed by SIGKILL is often the kernel's out-of-memory "
                    f"killer), or set background_processes = 0 to make batches in the training "
                    f"process, where an error shows its traceback.\n{trace}".rstrip()
                )
            self._report(
                f"Background batch worker {index} {why}; replacing it "
                f"(replacement {self._restarts} of {MAX_RESTARTS})."
            )
        old = self._workers[index]
        if old.process.exitcode is None:
            old.process.kill()
        old.process.join()
        self._finished_counts += old.counters
        old.close_channels()
        self._workers[index] = self._spawn(index, old.generation + 1)


def _how_it_ended(exitcode: int) -> str:
    """``exit code 3`` or ``killed by SIGKILL``, from a multiprocessing exit code."""
    if exitcode < 0:
        return f"killed by {signal.Signals(-exitcode).name}"
    return f"exit code {exitcode}"


def _shut_down(workers: list[_Worker]) -> None:
    """Ask workers to stop, then terminate/kill stragglers; close the channels."""
    for worker in workers:
        try:
            worker.inbox.put(Stop())
        except (OSError, ValueError):
            pass
    for worker in workers:
        process = worker.process
        process.join(timeout=2.0)
        if process.is_alive():
            process.terminate()
            process.join(timeout=1.0)
        if process.is_alive():
            process.kill()
            process.join()
    for worker in workers:
        worker.close_channels()


def _wait_for_stop(inbox: Any, parent: int) -> None:
    """A failed worker stays until the trainer has read its error and replaces it."""
    while os.getppid() == parent:
        try:
            if isinstance(inbox.get(timeout=_POLL_S), Stop):
                return
        except queue.Empty:
            pass


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
    signal.signal(signal.SIGHUP, signal.SIG_IGN)  # a closed terminal: the trainer ends us
    signal.signal(signal.SIGTERM, signal.SIG_DFL)  # not the trainer's handler: terminate() works
    signal.pthread_sigmask(signal.SIG_UNBLOCK, _WORKER_SIGNALS)
    _die_with_parent(parent)
    _fresh_allocations()
    loop = threading.Thread(target=_serve, args=(parent, *args), name="elektronn-batch-loop")
    loop.start()
    loop.join()


def _serve(
    parent: int,
    assignment: _Assignment,
    data: Any,
    seed: np.random.SeedSequence,
    slots: list[list[np.ndarray]],
    counters: np.ndarray,
    inbox: Any,
    outbox: mp.connection.Connection,
) -> None:
    """Worker loop: apply messages, fill free slots, report them as ready."""
    torch.set_num_threads(1)
    _reseed(data, seed)
    data.n_successful_warp = data.n_failed_warp = 0
    kwargs, version = dict(assignment.batch_kwargs), assignment.version
    free = collections.deque(range(len(slots)))
    try:
        while True:
            try:
                message: ToWorker = inbox.get_nowait() if free else inbox.get(timeout=_POLL_S)
            except queue.Empty:
                if os.getppid() != parent:
                    return
                if not free:
                    continue
            else:
                if isinstance(message, Stop):
                    return
                if isinstance(message, FreeSlot):
                    free.append(message.slot)
                else:
                    kwargs, version = dict(message.batch_kwargs), message.version
                    data.apply_settings(message.attributes)
                continue
            slot = free.popleft()
            _fill(slots[slot], data.getbatch(**kwargs))
            counters[:] = (data.n_successful_warp, data.n_failed_warp)
            outbox.send(BatchReady(assignment.index, assignment.generation, slot, version))
    except BaseException:
        trace = traceback.format_exc()
        outbox.send(BatchFailed(assignment.index, assignment.generation, trace))
        _wait_for_stop(inbox, parent)


def _fill(slot: list[np.ndarray], batch: tuple[np.ndarray, ...]) -> None:
    """Copy a batch into its shared slot, refusing a batch of another layout."""
    for target, array in zip(slot, batch, strict=True):
        if target.shape != array.shape:
            raise ValueError(
                f"getbatch returned shape {array.shape} where the batch layout has "
                f"{target.shape}; change layout-defining settings through update()."
            )
        np.copyto(target, array)
