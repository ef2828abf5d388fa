"""Quality of the ISBI 2012 examples after a fixed training time (issues 4 and 18).

Trains each chosen example (the CNN ``examples/isbi2012_membranes.py`` and the U-Net
``examples/isbi2012_unet.py``, one after the other, each for ``--minutes``, default 30)
through the real CLI, then predicts the held-out validation slices z = 25..29 densely with
the final parameters (``_end.param``) and with the best monitored ones (``-BEST.param``, chosen
on monitor batches of the same slices, so slightly optimistic) and reports pixel error,
membrane F1 and adapted Rand error (threshold 0.5) side by side, against the trivial
all-interior baseline, plus each training curve (step, minutes, monitored error).

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


def validation_scores(param_file: Path) -> dict[str, float]:
    """Pixel error, membrane F1 and adapted Rand error (mean per slice) on z = 25..29.

    Dense prediction of the held-out slices with mirror padding, membrane where its
    probability is >= 0.5; segments are the connected components of the rest (seeded
    watershed), scored by scikit-image through ``elektronn.evaluate``.
    """
    from elektronn.evaluate import metrics
    from elektronn.net.paramfile import build_model_from_params
    from elektronn.predict.dense import predict_dense

    model = build_model_from_params(param_file)
    with h5py.File(ISBI / "train-volume.h5") as f:
        raw = f["raw"][:, :, 25:30]
    with h5py.File(ISBI / "train-labels.h5") as f:
        labels = f["labels"][:, :, 25:30].astype(np.int64)
    probs = predict_dense(model, raw[None], axes="cxyz", pad_raw=True)
    pixels = metrics.classification(probs, labels, 0.5)
    rand = [
        metrics.segmentation(
            probs[1][..., z], metrics.truth_segments(labels[..., z], "boundaries"), 0.5,
            "watershed",
        )["adapted_rand_error"]
        for z in range(labels.shape[-1])
    ]  # fmt: skip
    return {
        "pixel_error": pixels["pixel_error"],
        "trivial": pixels["baseline"]["pixel_error"],
        "membrane_f1": pixels["classes"]["1"]["f1"],
        "rand_error": float(np.mean(rand)),
    }


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
        wall = time.perf_counter() - t0
        errors = np.load(save_dir / "Backup" / f"{name}.errors.npy")
        for kept in ("_end", "-BEST"):  # the final parameters and the best monitored ones
            s = validation_scores(save_dir / f"{name}{kept}.param")
            rows.append(f"| {name} ({EXAMPLES[name].name}) | {kept}.param | {int(errors[-1, 0])} "
                        f"| {s['pixel_error']:.4f} | {s['membrane_f1']:.3f} | "
                        f"{s['rand_error']:.3f} | {s['trivial']:.4f} | {wall:.0f} |")  # fmt: skip
        curves.append((name, errors))
    print(f"\nISBI 2012, {args.minutes:g} min training per example; held-out z = 25..29")
    print("| example | parameters | steps | pixel error | membrane F1 | adapted Rand error | "
          "all interior | wall s |")  # fmt: skip
    print("|---|---|---:|---:|---:|---:|---:|---:|")
    print("\n".join(rows))
    for name, errors in curves:
        print(f"\n{name} curve (monitor batches):")
        print("| step | minutes | valid error % |\n|---:|---:|---:|")
        for row in errors[:: max(1, len(errors) // 12)]:
            print(f"| {int(row[0])} | {row[1] / 60:.1f} | {row[3]:.1f} |")


if __name__ == "__main__":
    main()
