"""Training-step speed of an example net: eager vs ``torch.compile``, fp32 vs bf16 (issue 10).

Times ``Trainer.train_step`` (forward, loss, backward, optimiser update, loss read back — what
a training step costs apart from the data) on the net of an example (``--example``, default
``neuro_3d``) with one fixed random batch, for each combination of the speed options ``precision``,
``channels_last`` and ``torch_compile``. The baseline is the default (eager, fp32) in the
same run. FLOPs per step are counted by ``torch.utils.flop_counter`` (forward + backward);
model FLOPs utilisation (MFU) is the achieved FLOP/s over the device's dense peak for the
arithmetic used (known for H100/H200; give ``--peak-tflops FP32,BF16`` for others; n/a on CPU).

Run: ``python benchmarks/bench_train_speed.py [--example isbi2012_unet] [--device cuda]
[--batch-size 8] [--steps 50]``.
"""

from __future__ import annotations

import argparse
import platform
import time
from pathlib import Path

import numpy as np
import torch
from torch.utils.flop_counter import FlopCounterMode

ROOT = Path(__file__).resolve().parents[1]
EXAMPLES = ROOT / "elektronn" / "examples"
EXAMPLE = EXAMPLES / "neuro_3d.py"
NOT_EXAMPLES = ("__init__", "config_template")

#: Dense peak TFLOP/s (fp32 without TF32, bf16 tensor cores) of the GPUs we were lent.
PEAK_TFLOPS = {"H100": (67.0, 989.4), "H200": (67.0, 989.4)}

VARIANTS = (  # (name, precision, channels_last, torch_compile); the first is the baseline
    ("eager fp32 (default)", "fp32", False, False),
    ("eager fp32 channels-last", "fp32", True, False),
    ("eager bf16", "bf16", False, False),
    ("eager bf16 channels-last", "bf16", True, False),
    ("compiled fp32", "fp32", False, True),
    ("compiled bf16", "bf16", False, True),
    ("compiled bf16 channels-last", "bf16", True, True),
)


def example_config(batch_size: int | None, example: Path = EXAMPLE, extra: tuple = ()):
    from elektronn.config import load_config

    sets = [
        "save_path='/tmp/elektronn-bench'",
        "plot_on=False",
        "random_seed=0",
        "background_processes=0",
        *extra,
    ]
    if batch_size is not None:
        sets.append(f"batch_size={batch_size}")
    return load_config(example, sets)


def variant_sets(precision: str, channels_last: bool, compile_option) -> tuple[str, ...]:
    """``--set`` values of one speed variant (the config is read-only once loaded)."""
    return (f"precision={precision!r}", f"channels_last={channels_last}",
            f"torch_compile={compile_option!r}")  # fmt: skip


def fixed_batch(config) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(0)
    arch = config.arch
    data = rng.random((config.batch_size, 1, *arch.input_shape), dtype=np.float32)
    labels = rng.integers(0, 2, (config.batch_size, *arch.output_shape)).astype(np.int16)
    return data, labels


def make_trainer(config, device: torch.device):
    from elektronn.train.run import build_trainer

    return build_trainer(config, device)


def flops_per_step(config, device: torch.device, batch) -> int:
    """Forward + backward FLOPs of one training step (the optimiser update not counted)."""
    trainer = make_trainer(config, device)
    x, y, extras = trainer._to_device(batch)
    with FlopCounterMode(display=False) as counter:
        trainer.loss(trainer.cnn(x), y, extras).backward()
    return counter.get_total_flops()


def steps_per_s(config, device: torch.device, batch, n: int, warmup: int) -> float:
    trainer = make_trainer(config, device)
    for _ in range(warmup):  # includes the compilation for torch_compile
        trainer.train_step(batch)
    t0 = time.perf_counter()
    for _ in range(n):
        trainer.train_step(batch)  # reads the loss back, so the GPU has finished
    return n / (time.perf_counter() - t0)


def peak_tflops(device: torch.device, given: str | None) -> tuple[float, float] | None:
    if given:
        fp32, bf16 = (float(v) for v in given.split(","))
        return fp32, bf16
    if device.type != "cuda":
        return None
    name = torch.cuda.get_device_name(device)
    return next((peak for key, peak in PEAK_TFLOPS.items() if key in name), None)


def describe(device: torch.device) -> str:
    if device.type == "cuda":
        return f"{torch.cuda.get_device_name(device)}, torch {torch.__version__}"
    cpu = platform.processor() or platform.machine()
    return f"CPU {cpu}, {torch.get_num_threads()} threads, torch {torch.__version__}"


def main() -> None:
    from elektronn.axes import to_user

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    names = sorted(p.stem for p in EXAMPLES.glob("*.py") if p.stem not in NOT_EXAMPLES)
    parser.add_argument("--example", default=EXAMPLE.stem, choices=names)
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--batch-size", type=int, default=None, help="default: the example's")
    parser.add_argument("--steps", type=int, default=30)
    parser.add_argument("--warmup", type=int, default=5)
    parser.add_argument("--peak-tflops", default=None, metavar="FP32,BF16")
    parser.add_argument("--skip-compile", action="store_true")
    args = parser.parse_args()
    device = torch.device(args.device)
    example = EXAMPLES / f"{args.example}.py"
    base = example_config(args.batch_size, example)
    batch = fixed_batch(base)
    flops = flops_per_step(base, device, batch)
    peak = peak_tflops(device, args.peak_tflops)
    arch = base.arch
    axes = "(x,y,z)" if len(arch.input_shape) == 3 else "(x,y)"
    print(
        f"Example net ({args.example}), input {axes} {to_user(arch.input_shape)} x batch "
        f"{base.batch_size}, output {to_user(arch.output_shape)};\n"
        f"{flops / 1e9:.2f} GFLOP per step; {describe(device)}\n"
    )
    print("| variant | steps/s | baseline steps/s | ratio | TFLOP/s | MFU |")
    print("|---|---:|---:|---:|---:|---:|")
    baseline = None
    for name, precision, channels_last, compile_option in VARIANTS:
        if compile_option and args.skip_compile:
            continue
        sets = variant_sets(precision, channels_last, compile_option)
        config = example_config(args.batch_size, example, sets)
        rate = steps_per_s(config, device, batch, args.steps, args.warmup)
        baseline = baseline or rate
        achieved = rate * flops / 1e12
        mfu = "n/a" if peak is None else f"{100 * achieved / peak[precision == 'bf16']:.1f} %"
        print(f"| {name} | {rate:.2f} | {baseline:.2f} | {rate / baseline:.2f} | "
              f"{achieved:.3f} | {mfu} |", flush=True)  # fmt: skip


if __name__ == "__main__":
    main()
