"""Quality of the ISBI 2012 examples after a fixed training time (issues 4 and 18).

Trains each chosen example (the CNN ``examples/isbi2012_membranes.py`` and the U-Net
``examples/isbi2012_unet.py``, one after the other, each for ``--minutes``, default 30)
through the real CLI, then predicts the held-out validation slices z = 25..29 densely with
the final parameters and reports the pixel errors (threshold 0.5) side by side, against the
trivial all-interior baseline, plus each training curve (step, minutes, monitored error).

Run: ``python benchmarks/bench_isbi_quality.py [--minutes 30] [--examples cnn unet]``.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import time
from pathlib import Path

import h5py
import numpy as np

ROOT = Path(__file__).resolve().parents[1]
EXAMPLES = {
    "cnn": ROOT / "elektronn" / "examples" / "isbi2012_membranes.py",
    "unet": ROOT / "elektronn" / "examples" / "isbi2012_unet.py",
}
ISBI = ROOT.parent / "shared" / "data" / "isbi2012"
SAVE = Path("/tmp/elektronn-isbi-quality")


def train(name: str, minutes: float) -> Path:
    sets = [f"save_path={SAVE}", f"max_runtime={int(minutes * 60)}", f"save_name={name}"]
    command = [sys.executable, "-m", "elektronn.train", str(EXAMPLES[name])]
    for s in sets:
        command += ["--set", s]
    subprocess.run(command, check=True)
    return SAVE / name


def validation_pixel_error(save_dir: Path) -> tuple[float, float]:
    """(pixel error of the net, pixel error of predicting 'interior' everywhere) on z=25..29."""
    from elektronn.net.paramfile import build_model_from_params
    from elektronn.predict.dense import predict_dense

    model = build_model_from_params(save_dir / f"{save_dir.name}_end.param")
    with h5py.File(ISBI / "train-volume.h5") as f:
        raw = f["raw"][:, :, 25:30]
    with h5py.File(ISBI / "train-labels.h5") as f:
        labels = f["labels"][:, :, 25:30]
    probs = predict_dense(model, raw[None], raw_order="xyz", pad_raw=True)
    membrane = probs[1] > 0.5
    return float(np.mean(membrane != labels.astype(bool))), float(np.mean(labels))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--minutes", type=float, default=30.0)
    parser.add_argument("--examples", nargs="+", choices=sorted(EXAMPLES), default=["cnn", "unet"])
    args = parser.parse_args()
    if not ISBI.is_dir():
        sys.exit(f"ISBI data not found at {ISBI}")
    rows, curves = [], []
    for name in args.examples:
        t0 = time.perf_counter()
        save_dir = train(name, args.minutes)
        error, trivial = validation_pixel_error(save_dir)
        errors = np.load(save_dir / "Backup" / f"{name}.errors.npy")
        rows.append(f"| {name} ({EXAMPLES[name].name}) | {int(errors[-1, 0])} | {error:.4f} | "
                    f"{trivial:.4f} | {time.perf_counter() - t0:.0f} |")  # fmt: skip
        curves.append((name, errors))
    print(f"\nISBI 2012, {args.minutes:g} min training per example")
    print("| example | steps | validation pixel error, z=25..29 | all interior | wall s |")
    print("|---|---:|---:|---:|---:|")
    print("\n".join(rows))
    for name, errors in curves:
        print(f"\n{name} curve (monitor batches):")
        print("| step | minutes | valid error % |\n|---:|---:|---:|")
        for row in errors[:: max(1, len(errors) // 12)]:
            print(f"| {int(row[0])} | {row[1] / 60:.1f} | {row[3]:.1f} |")


if __name__ == "__main__":
    main()
