"""Test error of the MNIST CNN example after a fixed training time (issue 7 target).

Trains ``examples/mnist_cnn.py`` through the real CLI for ``--minutes`` (default 30; warping
on for the first ``--warp-fraction`` of the time, then off, as the original's recipe), then
evaluates the final parameters on the whole 10,000-image test split. The anchors are
LeNet-5's 0.95 % and the original example's ≈ 0.5 % (after ~15 min on a GPU).

Run: ``python benchmarks/bench_mnist_quality.py [--minutes 30]``.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[1]
MNIST = ROOT.parent / "shared" / "data" / "mnist" / "mnist.pkl.gz"
SAVE = Path("/tmp/elektronn-mnist-quality")


def train(minutes: float, warp_fraction: float) -> Path:
    """Warped training, then fine-tuning from its parameters without warping at LR 0.002."""
    warped = int(minutes * 60 * warp_fraction)
    base = [sys.executable, "-m", "elektronn.train", "mnist_cnn"]
    sets = ["--set", f"save_path={SAVE}", "--set", "plot_on=False"]
    subprocess.run(base + sets + ["--set", "save_name=mnist", "--set", f"max_runtime={warped}"],
                   check=True)  # fmt: skip
    finetune = [
        "--set", "save_name=mnist_ft",
        "--set", f"max_runtime={int(minutes * 60) - warped}",
        "--set", f"param_file={SAVE / 'mnist' / 'mnist_end.param'}",
        "--set", f"data_load_kwargs=dict(path={str(MNIST)!r}, warp_on=False)",
        "--set", "SGD_params=dict(LR=0.002, momentum=0.9)",
    ]  # fmt: skip
    subprocess.run(base + sets + finetune, check=True)
    return SAVE / "mnist_ft"


@torch.no_grad()
def test_error(save_dir: Path) -> float:
    from elektronn.data.mnist import MNISTData
    from elektronn.net.paramfile import build_model_from_params

    model = build_model_from_params(save_dir / "mnist_ft_end.param")
    data = MNISTData(path=str(MNIST), convert2image=True, warp_on=False)
    wrong = total = 0
    for x, y in data.iter_split("test", 500):
        predicted = model(torch.from_numpy(x)).argmax(1).numpy()
        wrong += int(np.sum(predicted != y))
        total += len(y)
    return 100.0 * wrong / total


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--minutes", type=float, default=30.0)
    parser.add_argument("--warp-fraction", type=float, default=0.7)
    args = parser.parse_args()
    if not MNIST.is_file():
        sys.exit(f"MNIST not found at {MNIST}")
    t0 = time.perf_counter()
    save_dir = train(args.minutes, args.warp_fraction)
    error = test_error(save_dir)
    errors = np.load(save_dir / "Backup" / "mnist_ft.errors.npy")
    print(
        f"\nMNIST CNN example, {args.minutes:g} min training "
        f"(wall {time.perf_counter() - t0:.0f} s)"
    )
    print("| figure | elektronn | baseline | ratio |\n|---|---:|---:|---:|")
    print(f"| test error % (10,000 images) | {error:.2f} | 1.0 (target) | {error / 1.0:.2f} |")
    print("\nCurve (monitor batches):\n| step | minutes | valid error % |\n|---:|---:|---:|")
    for row in errors[:: max(1, len(errors) // 12)]:
        print(f"| {int(row[0])} | {row[1] / 60:.1f} | {row[3]:.2f} |")


if __name__ == "__main__":
    main()
