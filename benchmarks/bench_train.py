"""Training speed of elektronn against a minimal hand-written PyTorch loop (issue 4).

Prints a table with:

* time from process start to the first training step of ``elektronn-train`` (the original
  compiled Theano functions for minutes);
* update steps/s of the ISBI example net in elektronn's ``Trainer.train_step`` versus a
  minimal ``torch.optim.SGD`` loop on the same net and the same batch (ratio);
* the fraction of training time spent waiting for batches, with background processes.

Run: ``python benchmarks/bench_train.py`` (needs ../shared/data/isbi2012 for the last row).
"""

from __future__ import annotations

import re
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

ROOT = Path(__file__).resolve().parents[1]
EXAMPLE = ROOT / "elektronn" / "examples" / "isbi2012_membranes.py"
ISBI = ROOT.parent / "shared" / "data" / "isbi2012"


def isbi_config():
    from elektronn.config import load_config

    sets = [
        "save_path='/tmp/elektronn-bench'",
        "plot_on=False",
        "random_seed=0",
        "background_processes=0",
    ]
    return load_config(EXAMPLE, sets)


def fixed_batch(config, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    arch = config.arch
    data = rng.random((config.batch_size, 1, *arch.input_shape), dtype=np.float32)
    labels = rng.integers(0, 2, (config.batch_size, *arch.output_shape)).astype(np.int16)
    return data, labels


def elektronn_steps_per_s(config, batch, n: int) -> float:
    from elektronn.train.run import build_trainer

    trainer = build_trainer(config)
    try:
        for _ in range(5):
            trainer.train_step(batch)
        t0 = time.perf_counter()
        for _ in range(n):
            trainer.train_step(batch)
        return n / (time.perf_counter() - t0)
    finally:
        trainer.close()


def minimal_steps_per_s(config, batch, n: int) -> float:
    from elektronn.net.model import build_model

    torch.manual_seed(0)
    model = build_model(config, 1, 2)
    sgd = config.SGD_params
    opt = torch.optim.SGD(model.parameters(), lr=sgd["LR"], momentum=sgd["momentum"])
    x = torch.from_numpy(batch[0])
    y = torch.from_numpy(batch[1]).long()

    def one_step():
        opt.zero_grad(set_to_none=True)
        F.cross_entropy(model(x), y).backward()
        opt.step()

    for _ in range(5):
        one_step()
    t0 = time.perf_counter()
    for _ in range(n):
        one_step()
    return n / (time.perf_counter() - t0)


def cli_run(seconds: int) -> tuple[float, float, str]:
    """(seconds to the first status line, data-wait %, output) of a real ISBI training run."""
    sets = ["save_path=/tmp/elektronn-bench", f"max_runtime={seconds}", "history_freq=200",
            "plot_on=False", "initial_prev_h=100"]  # fmt: skip
    command = [sys.executable, "-m", "elektronn.train", str(EXAMPLE)]
    for s in sets:
        command += ["--set", s]
    t0 = time.perf_counter()
    proc = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    first, lines = None, []
    for line in proc.stdout:
        lines.append(line)
        if first is None and line.startswith("00000"):
            first = time.perf_counter() - t0
    proc.wait()
    out = "".join(lines)
    wait = re.search(r"waiting for data ([\d.]+) %", out)
    return first or float("nan"), float(wait.group(1)) if wait else float("nan"), out


def main() -> None:
    config = isbi_config()
    batch = fixed_batch(config)
    n = 200
    ours, minimal = [], []
    for _ in range(3):  # interleave to share the machine's load fairly
        ours.append(elektronn_steps_per_s(config, batch, n))
        minimal.append(minimal_steps_per_s(config, batch, n))
    ours_best, minimal_best = max(ours), max(minimal)
    print(f"ISBI example net, input {config.arch.input_shape}, batch {config.batch_size}, "
          f"{torch.get_num_threads()} threads, best of 3 x {n} steps")  # fmt: skip
    print("| figure | elektronn | baseline | ratio |\n|---|---:|---:|---:|")
    print(f"| update steps/s (Trainer.train_step vs minimal torch SGD loop) | {ours_best:.1f} | "
          f"{minimal_best:.1f} | {ours_best / minimal_best:.2f} |")  # fmt: skip
    if ISBI.is_dir():
        first, wait, out = cli_run(60)
        print(f"| time from process start to first step [s] | {first:.1f} | 10 (target) | "
              f"{first / 10:.2f} |")  # fmt: skip
        print(f"| waiting for data, background_processes=1 [% of time] | {wait:.1f} | 2 (target) | "
              f"{wait / 2:.2f} |")  # fmt: skip
    else:
        print(f"(ISBI data not found at {ISBI}: start-up and data-wait rows skipped)")


if __name__ == "__main__":
    main()
