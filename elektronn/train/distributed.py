"""Data-parallel training on several processes (GPUs or CPU cores) with torch's DDP.

Started by ``torchrun --nproc_per_node=N -m elektronn.train CONFIG`` (any torchrun options,
multi-node included) or by ``elektronn-train CONFIG --nproc N`` on one machine (see
``launch_on_this_machine``). Every rank reads the data, runs its own background workers with
its own random stream and trains on ``batch_size`` examples per step, so one step sees
N × ``batch_size`` examples. DDP averages
the gradients; the loss is averaged over the ranks too, so that the CG and L-BFGS line
searches, the NaN check and the logged loss are the same on every rank and the parameters
stay identical. Only rank 0 writes (save directory, logs, plots, snapshots, previews) and
prints; the ranks agree after every step whether to stop, so ``n_steps``, ``max_runtime``, a
NaN loss and a signal end all of them at the same step. Ctrl+C (or SIGTERM) ends a
distributed run like the console's ``abort``; the interactive console needs a single process.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass
from datetime import timedelta

import numpy as np
import torch
import torch.distributed as dist

# Rank 0 monitors, plots and predicts previews while the other ranks wait at the next
# all-reduce; a preview of a large volume can take many minutes.
COLLECTIVE_TIMEOUT = timedelta(hours=2)


@dataclass(frozen=True)
class Ranks:
    """Where this process stands in the run (``torchrun`` sets RANK, WORLD_SIZE, LOCAL_RANK)."""

    rank: int = 0
    world_size: int = 1
    local_rank: int = 0
    local_world_size: int = 1

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    @property
    def is_distributed(self) -> bool:
        return self.world_size > 1


SINGLE_PROCESS = Ranks()


def ranks_from_env() -> Ranks:
    """The ranks torchrun gave this process; a single process without torchrun."""
    env = os.environ
    return Ranks(
        rank=int(env.get("RANK", 0)),
        world_size=int(env.get("WORLD_SIZE", 1)),
        local_rank=int(env.get("LOCAL_RANK", 0)),
        local_world_size=int(env.get("LOCAL_WORLD_SIZE", 1)),
    )


def silence_other_ranks() -> None:
    """Only rank 0 prints progress; the others keep stderr for their warnings and errors."""
    if not ranks_from_env().is_main:
        sys.stdout = open(os.devnull, "w")  # kept open for the life of the process


def start_ranks(ranks: Ranks, device: torch.device) -> torch.device:
    """Join the process group; returns this rank's device (GPU ``LOCAL_RANK`` on GPUs).

    NCCL connects the GPUs, gloo the CPU processes.
    """
    if not ranks.is_distributed:
        return device
    if device.type == "cuda":
        device = torch.device("cuda", ranks.local_rank)
        torch.cuda.set_device(device)
    backend = "nccl" if device.type == "cuda" else "gloo"
    dist.init_process_group(backend, timeout=COLLECTIVE_TIMEOUT)
    return device


def stop_ranks() -> None:
    if dist.is_initialized():
        dist.destroy_process_group()


def wrap(model: torch.nn.Module, ranks: Ranks, device: torch.device) -> torch.nn.Module:
    """The module the update steps run through: DDP across ranks, the model itself alone."""
    if not ranks.is_distributed:
        return model
    from torch.nn.parallel import DistributedDataParallel

    ids = [device.index] if device.type == "cuda" else None
    return DistributedDataParallel(model, device_ids=ids)


def mean_over_ranks(value: torch.Tensor, ranks: Ranks) -> torch.Tensor:
    """The average of a scalar over all ranks (itself in a single process)."""
    if not ranks.is_distributed:
        return value
    value = value.detach().clone()
    dist.all_reduce(value, op=dist.ReduceOp.SUM)
    return value / ranks.world_size


def any_rank(flag: bool, ranks: Ranks) -> bool:
    """True on every rank when ``flag`` is True on at least one."""
    if not ranks.is_distributed:
        return flag
    value = torch.tensor([int(flag)])
    if dist.get_backend() == "nccl":
        value = value.cuda()
    dist.all_reduce(value, op=dist.ReduceOp.MAX)
    return bool(value.item())


def seed_of_rank_0(seed: int, ranks: Ranks) -> int:
    """Rank 0's ``seed`` on every rank (a fresh seed is drawn on each)."""
    if not ranks.is_distributed:
        return seed
    value = torch.tensor([seed], dtype=torch.int64)
    if dist.get_backend() == "nccl":
        value = value.cuda()
    dist.broadcast(value, src=0)
    return int(value.item())


def data_seed(seed: int, ranks: Ranks, step: int = 0) -> int | np.random.SeedSequence:
    """The data stream of this rank: ``seed`` itself on rank 0 (single runs are unchanged),
    an independent child stream on the others (a resumed run starts new ones at ``step``)."""
    if ranks.rank == 0:
        return seed
    return np.random.SeedSequence([seed, ranks.rank, step])


def launch_on_this_machine(argv: list[str], nproc: int) -> int:
    """``elektronn-train ... --nproc N``: the same command as ``nproc`` ranks on this machine.

    What ``torchrun --standalone`` does, less its tracebacks on a signal: the ranks run in
    their own process group and this launcher passes Ctrl+C and SIGTERM on to each of them
    once, so they stop together at the end of a step and rank 0 saves. When a rank fails,
    the others are asked to stop and, after a grace period, killed. Returns the exit
    code of the rank that failed first, else 0.
    """
    command = [sys.executable, "-m", "elektronn.train", *without_nproc(argv)]
    port = free_port()
    ranks = []
    for rank in range(nproc):
        env = dict(
            os.environ,
            RANK=str(rank),
            WORLD_SIZE=str(nproc),
            LOCAL_RANK=str(rank),
            LOCAL_WORLD_SIZE=str(nproc),
            MASTER_ADDR="127.0.0.1",
            MASTER_PORT=str(port),
        )
        ranks.append(subprocess.Popen(command, env=env, process_group=0))

    def pass_on(signum: int, frame: object) -> None:
        for process in ranks:
            if process.poll() is None:
                process.send_signal(signum)

    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, pass_on)
    return wait_for_ranks(ranks)


def wait_for_ranks(ranks: list[subprocess.Popen], grace_s: float = 60.0) -> int:
    """Wait for every rank; once one has failed, stop the rest (SIGTERM, then SIGKILL).

    Returns the exit code of the rank that failed first (128 + N for signal N), else 0.
    """
    first_failure, failed_at = 0, None
    while any(process.poll() is None for process in ranks):
        codes = [process.returncode for process in ranks if process.returncode]
        if codes and failed_at is None:
            first_failure, failed_at = codes[0], time.monotonic()
            for process in ranks:
                if process.poll() is None:
                    process.terminate()
        if failed_at is not None and time.monotonic() - failed_at > grace_s:
            for process in ranks:
                process.kill()
        time.sleep(0.2)
    if failed_at is None:
        first_failure = next((process.returncode for process in ranks if process.returncode), 0)
    return 128 - first_failure if first_failure < 0 else first_failure  # as a shell reports it


def free_port() -> int:
    """A TCP port nobody listens on, for the ranks to meet at."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def without_nproc(argv: list[str]) -> list[str]:
    """``argv`` less its ``--nproc N`` / ``--nproc=N`` (each rank is one process)."""
    kept, skip_next = [], False
    for arg in argv:
        if skip_next:
            skip_next = False
        elif arg == "--nproc":
            skip_next = True
        elif not arg.startswith("--nproc="):
            kept.append(arg)
    return kept
