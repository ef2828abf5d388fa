"""Long-run check: memory stays flat and the worker count constant over a long training (issue 9).

A leak of a few MB per minute, or a worker that dies and is not noticed (or one restarted
too often), only shows after hours. This script trains the shipped ``demo`` (2D, synthetic EM
data, warping, flips, grey augmentation, plots and snapshots on) with background processes
for ``--minutes`` and samples every ``--every`` seconds, via psutil:

* the resident memory of the trainer and its forked batch workers: summed USS (private
  pages: what a leak grows), summed PSS (shared pages split between the processes that map
  them, so the volumes count once; on a shared machine it also moves when *other* processes
  map the same libraries, e.g. torch) and summed RSS (shared pages counted in every process);
* the number of batch workers (forked children; the short-lived plot processes are not
  counted).

Sampling stops when the trainer reports the end of training, before it closes its workers.

It prints the samples as it goes, then a table: memory at the start (first sample after the
warm-up) and at the end, the slope of a least-squares line through the samples after the
warm-up (MB/hour), and the smallest and largest worker count.

Run: ``python benchmarks/bench_longrun.py [--minutes 30] [--workers 2] [--every 10]``.
"""

from __future__ import annotations

import argparse
import os
import platform
import re
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import psutil

MB = 1e6


@dataclass
class Sample:
    """One look at the run, ``t`` seconds after training started."""

    t: float
    trainer_rss: float
    total_rss: float
    total_pss: float
    total_uss: float
    n_workers: int


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--minutes", type=float, default=30.0, help="training time (default 30)")
    parser.add_argument("--workers", type=int, default=2, help="background_processes (2)")
    parser.add_argument("--every", type=float, default=10.0, help="seconds between samples (10)")
    parser.add_argument(
        "--warmup", type=float, default=60.0, help="seconds left out of the fit (60)"
    )
    return parser.parse_args(argv)


def start_training(args: argparse.Namespace, folder: Path, log: Path) -> subprocess.Popen:
    """``elektronn-train demo`` for ``args.minutes``, its output into ``log``."""
    overrides = {
        "save_path": str(folder),
        "n_steps": 10**9,
        "max_runtime": int(args.minutes * 60),
        "background_processes": args.workers,
        "param_save_h": 0.05,  # a snapshot every 3 minutes: saving is part of the check
    }
    command = [sys.executable, "-m", "elektronn.train", "demo", "--gpu=false"]
    for name, value in overrides.items():
        command += ["--set", f"{name}={value!r}"]
    with open(log, "w") as out:
        return subprocess.Popen(command, stdout=out, stderr=subprocess.STDOUT,
                                stdin=subprocess.DEVNULL)  # fmt: skip


def wait_for_start(process: subprocess.Popen, log: Path, timeout: float = 600) -> None:
    """Block until the trainer prints that training starts (data loaded, workers forked)."""
    deadline = time.monotonic() + timeout
    while "Starting training" not in log.read_text():
        if process.poll() is not None or time.monotonic() > deadline:
            raise SystemExit(f"training did not start:\n{log.read_text()}")
        time.sleep(0.5)


def workers_of(trainer: psutil.Process) -> list[psutil.Process]:
    """The forked batch workers: children running the trainer's own command line."""
    own = trainer.cmdline()
    found = []
    for child in trainer.children():
        try:
            if child.cmdline() == own:
                found.append(child)
        except psutil.NoSuchProcess:
            continue
    return found


def sample(trainer: psutil.Process, t: float) -> Sample:
    """Memory of the trainer and its workers; a process ending meanwhile is left out."""
    workers = workers_of(trainer)
    rss = pss = uss = 0.0
    trainer_rss = 0.0
    for process in (trainer, *workers):
        try:
            info = process.memory_full_info()
        except psutil.NoSuchProcess:
            continue
        rss += info.rss
        pss += info.pss
        uss += info.uss
        if process is trainer:
            trainer_rss = info.rss
    return Sample(t, trainer_rss / MB, rss / MB, pss / MB, uss / MB, len(workers))


def slope_mb_per_hour(samples: list[Sample], field: str) -> float:
    """Least-squares slope of ``field`` over time; nan with fewer than 3 samples."""
    if len(samples) < 3:
        return float("nan")
    t = np.array([s.t for s in samples]) / 3600
    y = np.array([getattr(s, field) for s in samples])
    return float(np.polyfit(t, y, 1)[0])


def cpu_name() -> str:
    """The CPU model (Linux), else the machine type."""
    try:
        with open("/proc/cpuinfo") as info:
            for line in info:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.machine()


def report(samples: list[Sample], args: argparse.Namespace, log: Path) -> None:
    fitted = [s for s in samples if s.t >= args.warmup] or samples
    first, last = fitted[0], fitted[-1]
    counts = [s.n_workers for s in samples]
    steps = re.findall(r"End of training after (\d+) steps", log.read_text()) or ["?"]
    print(f"\nMachine: {cpu_name()}, {os.cpu_count()} cores; "
          f"{args.workers} workers; {len(samples)} samples every {args.every:g} s; fit from "
          f"t={first.t:.0f} s to t={last.t:.0f} s; steps done: {steps[-1]}")  # fmt: skip
    print("\n| memory | start MB | end MB | change MB | slope MB/h |")
    print("|---|---:|---:|---:|---:|")
    for label, field in (
        ("USS, trainer + workers", "total_uss"),
        ("PSS, trainer + workers", "total_pss"),
        ("RSS, trainer + workers", "total_rss"),
        ("RSS, trainer", "trainer_rss"),
    ):
        a, b = getattr(first, field), getattr(last, field)
        slope = slope_mb_per_hour(fitted, field)
        print(f"| {label} | {a:.1f} | {b:.1f} | {b - a:+.1f} | {slope:+.1f} |")
    print(f"\nWorker count: min {min(counts)}, max {max(counts)} (expected {args.workers})")


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    # A SIGTERM to this script must not orphan the trainer: exit through ``finally`` below.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit("bench_longrun: terminated"))
    folder = Path(tempfile.mkdtemp(prefix="elektronn-longrun-"))
    log = folder / "train.log"
    process = start_training(args, folder, log)
    try:
        wait_for_start(process, log)
        trainer = psutil.Process(process.pid)
        t0 = time.monotonic()
        samples: list[Sample] = []
        print("   t s  USS MB  PSS MB  RSS MB  trainer RSS MB  workers", flush=True)
        while process.poll() is None and "End of training" not in log.read_text():
            try:
                s = sample(trainer, time.monotonic() - t0)
            except psutil.NoSuchProcess:  # the trainer ended between poll() and sampling
                break
            samples.append(s)
            print(f"{s.t:6.0f} {s.total_uss:7.1f} {s.total_pss:7.1f} {s.total_rss:7.1f} "
                  f"{s.trainer_rss:15.1f} "
                  f"{s.n_workers:8d}", flush=True)  # fmt: skip
            time.sleep(args.every)
        process.wait()
    finally:
        if process.poll() is None:
            process.terminate()  # the trainer saves and stops its workers
            try:
                process.wait(timeout=60)
            except subprocess.TimeoutExpired:
                process.kill()
    if process.returncode != 0:
        raise SystemExit(f"training failed ({process.returncode}):\n{log.read_text()}")
    report(samples, args, log)
    print(f"Training output: {log}")


if __name__ == "__main__":
    main()
