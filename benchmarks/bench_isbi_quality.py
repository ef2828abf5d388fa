"""Quality of the ISBI 2012 example after a fixed training time (issue 4 target).

Trains ``examples/isbi2012_membranes.py`` through the real CLI for ``--minutes`` (default 30),
then predicts the held-out validation slices z = 25..29 densely with the final parameters and
reports the pixel error (threshold 0.5) against the trivial all-interior baseline (0.22 on
the whole volume), plus the training curve (step, minutes, monitored validation error).

Run: ``python benchmarks/bench_isbi_quality.py [--minutes 30]``.
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
EXAMPLE = ROOT / "elektronn" / "examples" / "isbi2012_membranes.py"
ISBI = ROOT.parent / "shared" / "data" / "isbi2012"
SAVE = Path("/tmp/elektronn-isbi-quality")


def train(minutes: float) -> Path:
    sets = [f"save_path={SAVE}", f"max_runtime={int(minutes * 60)}", "save_name=isbi"]
    command = [sys.executable, "-m", "elektronn.train", str(EXAMPLE)]
    for s in sets:
        command += ["--set", s]
    subprocess.run(command, check=True)
    return SAVE / "isbi"


def validation_pixel_error(save_dir: Path) -> tuple[float, float]:
    """(pixel error of the net, pixel error of predicting 'interior' everywhere) on z=25..29."""
    from elektronn.net.paramfile import build_model_from_params
    from elektronn.predict.dense import predict_dense

    model = build_model_from_params(save_dir / "isbi_end.param")
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
    args = parser.parse_args()
    if not ISBI.is_dir():
        sys.exit(f"ISBI data not found at {ISBI}")
    t0 = time.perf_counter()
    save_dir = train(args.minutes)
    error, trivial = validation_pixel_error(save_dir)
    errors = np.load(save_dir / "Backup" / "isbi.errors.npy")
    print(f"\nISBI 2012, {args.minutes:g} min training (wall {time.perf_counter() - t0:.0f} s)")
    print("| figure | elektronn | baseline (all interior) | ratio |\n|---|---:|---:|---:|")
    print(f"| validation pixel error, z=25..29 | {error:.4f} | {trivial:.4f} | "
          f"{error / trivial:.2f} |")  # fmt: skip
    print(
        "\nCurve (monitor batches of 20 patches):\n"
        "| step | minutes | valid error % |\n|---:|---:|---:|"
    )
    for row in errors[:: max(1, len(errors) // 12)]:
        print(f"| {int(row[0])} | {row[1] / 60:.1f} | {row[3]:.1f} |")


if __name__ == "__main__":
    main()
