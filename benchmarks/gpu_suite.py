"""GPU figures in one run (issue 18): training speed, MFU, data wait and prediction speed.

For the 3D CNN (``examples/neuro_3d.py``) and the 3D U-Net (``examples/neuro_3d_unet.py``):

1. train steps/s and model-FLOPs utilisation for fp32, bf16, channels-last and compiled
   variants (``Trainer.train_step`` on one fixed batch; FLOPs from
   ``torch.utils.flop_counter``; peaks as in ``bench_train_speed.py``);
2. the data-wait share of a real ``elektronn-train`` run on the ISBI stack with one
   background worker per CPU core (what the run prints at its end);
3. dense prediction speed in Mvox/s (``predict_dense`` of a random volume, default tiles).

On a CUDA machine the full suite takes well under 8 minutes; on a CPU (or with ``--smoke``)
it runs a smoke version (one eager fp32 variant, a few steps, tiny runs) in under a minute.
It prints one table headed by the device's name.

Run: ``python benchmarks/gpu_suite.py [--smoke] [--device cuda]``.
"""

from __future__ import annotations

import argparse
import os
import re
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
import bench_train_speed as speed  # noqa: E402

EXAMPLES = {
    "3D CNN (neuro_3d)": speed.ROOT / "elektronn" / "examples" / "neuro_3d.py",
    "3D U-Net (neuro_3d_unet)": speed.ROOT / "elektronn" / "examples" / "neuro_3d_unet.py",
}
WAIT = re.compile(r"waiting for data ([\d.]+) %")
#: The smoke version trains and predicts the smallest valid input of each net.
SMOKE = ("desired_input=[1, 1, 1]",)


def train_rows(example: Path, device: torch.device, smoke: bool, peak) -> list[str]:
    """One table row per speed variant: steps/s, TFLOP/s and MFU."""
    extra = SMOKE if smoke else ()
    base = speed.example_config(None, example, extra)
    batch = speed.fixed_batch(base)
    flops = speed.flops_per_step(base, device, batch)
    steps, warmup = (2, 1) if smoke else (30, 5)
    rows = []
    for name, precision, channels_last, compile_option in speed.VARIANTS[: 1 if smoke else None]:
        variant = speed.variant_sets(precision, channels_last, compile_option)
        config = speed.example_config(None, example, (*extra, *variant))
        rate = speed.steps_per_s(config, device, batch, steps, warmup)
        achieved = rate * flops / 1e12
        mfu = "n/a" if peak is None else f"{100 * achieved / peak[precision == 'bf16']:.1f} %"
        rows.append(f"train steps/s, {name} | {rate:.2f} | {achieved:.3f} TFLOP/s, MFU {mfu}")
    return rows


def data_wait(example: Path, device: torch.device, seconds: float) -> str:
    """Share of a short real training run spent waiting for batches (one worker per core)."""
    gpu = "false" if device.type == "cpu" else str(device.index or 0)
    sets = ["save_path=/tmp/elektronn-gpu-suite", "plot_on=False", f"max_runtime={seconds}",
            f"background_processes={os.cpu_count()}", "history_freq=[10**9]",
            "preview_data_path=None"]  # fmt: skip
    command = [sys.executable, "-m", "elektronn.train", str(example), f"--gpu={gpu}"]
    for value in sets:
        command += ["--set", value]
    result = subprocess.run(command, capture_output=True, text=True, timeout=600)
    match = WAIT.search(result.stdout)
    return f"{match.group(1)} %" if match else f"failed: {result.stderr.strip()[-200:]}"


def prediction_rate(example: Path, device: torch.device, smoke: bool) -> float:
    """Mvox/s of ``predict_dense`` (default tiles) on a random volume, after one warm-up."""
    from elektronn.net.model import build_model
    from elektronn.predict.dense import predict_dense

    config = speed.example_config(None, example, SMOKE if smoke else ())
    model = build_model(config, 1, 2).to(device).eval()
    extra = (0, 0, 0) if smoke else (16, 384, 384)
    shape = tuple(n + e for n, e in zip(config.arch.input_shape, extra, strict=True))
    raw = np.random.default_rng(0).random((1, *shape), dtype=np.float32)
    predict_dense(model, raw)
    t0 = time.perf_counter()
    out = predict_dense(model, raw)
    return out[0].size / (time.perf_counter() - t0) / 1e6


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--smoke", action="store_true", help="the CPU version (default on CPU)")
    parser.add_argument("--peak-tflops", default=None, metavar="FP32,BF16")
    args = parser.parse_args()
    device = torch.device(args.device)
    smoke = args.smoke or device.type == "cpu"
    peak = speed.peak_tflops(device, args.peak_tflops)
    has_data = (speed.ROOT.parent / "shared" / "data" / "isbi2012").is_dir()
    print(f"GPU suite{' (smoke)' if smoke else ''}: {speed.describe(device)}\n")
    print("| net | figure | value | details |\n|---|---|---:|---|")
    for name, example in EXAMPLES.items():
        for row in train_rows(example, device, smoke, peak):
            print(f"| {name} | {row} |", flush=True)
        wait = data_wait(example, device, 2 if smoke else 60) if has_data else "no ISBI data"
        print(f"| {name} | data wait, {os.cpu_count()} workers | {wait} | real run |", flush=True)
        rate = prediction_rate(example, device, smoke)
        print(f"| {name} | dense prediction Mvox/s | {rate:.3g} | predict_dense |", flush=True)


if __name__ == "__main__":
    main()
