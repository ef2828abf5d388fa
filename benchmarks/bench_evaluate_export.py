"""elektronn-evaluate on the ISBI volume, and exported TorchScript vs elektronn-predict.

    PYTHONPATH=. python benchmarks/bench_evaluate_export.py [N_SLICES]

No trained ISBI net ships with the project, so (1) scores a noisy prediction made from the
labels and (2) compares a freshly initialised 2D CNN (the speed and the equality do not depend
on the weights). Needs ../shared/data/isbi2012.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import h5py
import numpy as np
import torch

from elektronn.evaluate.cli import main as evaluate_main
from elektronn.export.convert import script, to_dense_net
from elektronn.net.model import ElektronnNet, NetSpec
from elektronn.predict import predict_dense

ISBI = Path(__file__).resolve().parents[2] / "shared" / "data" / "isbi2012"


def bench_evaluate(folder: Path) -> None:
    with h5py.File(ISBI / "train-labels.h5") as f:
        labels = f["labels"][()]
    rng = np.random.default_rng(0)
    p1 = np.clip(labels + rng.normal(0, 0.35, labels.shape), 0, 1).astype(np.float32)
    with h5py.File(folder / "prob.h5", "w") as f:
        f["prob"] = np.stack([1 - p1, p1])
        f["prob"].attrs["offset"] = (0, 0, 0)
    for extra in ([], ["--gt", "boundary", "--per-slice"]):
        start = time.perf_counter()
        evaluate_main([str(folder / "prob.h5"), f"{ISBI / 'train-labels.h5'}:labels", *extra])
        print(f"evaluate {labels.shape} {extra}: {time.perf_counter() - start:.2f} s")


def bench_export(n_slices: int) -> None:
    torch.manual_seed(0)
    spec = NetSpec(
        n_ch=1, n_lab=2, n_dim=2, filters=((6, 6), (5, 5), (5, 5)), pool=((2, 2), (2, 2), (1, 1)),
        nof_filters=(16, 32, 32), pooling_mode=("max",) * 3, activation_func=("relu",) * 3,
        dropout_rates=(), mlp_layers=(), rnn_layer_kwargs=None, input_shape=None,
    )  # fmt: skip
    model = ElektronnNet(spec).eval()
    with h5py.File(ISBI / "train-volume.h5") as f:
        raw = f["raw"][:, :, :n_slices]
    scripted = script(to_dense_net(model, "nll"))
    start = time.perf_counter()
    expected = predict_dense(model, raw[None], axes="cxyz")
    t_predict = time.perf_counter() - start
    x = torch.from_numpy(raw.transpose(2, 0, 1)[:, None].astype(np.float32) / 255)
    with torch.no_grad():
        scripted(x[:1])  # warm-up (TorchScript optimises on the first calls)
        start = time.perf_counter()
        prob = torch.cat([scripted(x[i : i + 1]) for i in range(len(x))]).numpy()
        t_script = time.perf_counter() - start
    diff = np.abs(prob.transpose(1, 2, 3, 0) - expected).max()
    print(f"predict_dense (MFP, tiled) {raw.shape}: {t_predict:.2f} s; TorchScript dense net "
          f"(one call per slice): {t_script:.2f} s; ratio {t_script / t_predict:.2f}; "
          f"max |diff| {diff:.2e}")  # fmt: skip


def main() -> int:
    p = argparse.ArgumentParser()
    p.add_argument("n_slices", nargs="?", type=int, default=4)
    args = p.parse_args()
    if not ISBI.is_dir():
        print(f"ISBI data not found at {ISBI}", file=sys.stderr)
        return 1
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads")
    with tempfile.TemporaryDirectory() as folder:
        bench_evaluate(Path(folder))
    bench_export(args.n_slices)
    return 0


if __name__ == "__main__":
    sys.exit(main())
