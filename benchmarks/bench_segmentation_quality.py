"""Segmentation quality at equal training time: boundary classes vs affinities vs affinities + LSDs.

For each dataset (FIB-25: train z 0..174, validate z 175..249; ISBI 2012: train z 0..24,
validate z 25..29) and each variant, one after the other, ``--minutes`` of training each:

* (a) boundary classes (``target='nll'``) segmented by ``--method watershed``;
* (b) affinities (the ``*_affinities`` examples) segmented by ``mws`` and by ``watershed``;
* (c) affinities + local shape descriptors (``lsd_sigma``), segmented by ``mws``;

then the prediction of the validation part (with the net's context around it), the
segmentation, and the split / merge VOI (nats) and adapted Rand error against the IDs (label 0
ignored), beside the one-segment baseline, in one table (Markdown, also written as JSON).
The ground-truth affinities segmented by ``mws`` give the post-processing's upper bound.

Run ``python benchmarks/bench_segmentation_quality.py`` (hours: 30 minutes per variant by
default). ``--crop N`` cuts the validation volumes to N x N in x and y and ``--minutes`` can
be small for a smoke run. Data: ``../shared/data`` beside the checkout.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

import h5py
import numpy as np

from elektronn.data.affinities import affinity_target, relabel_consecutive
from elektronn.evaluate.contingency import score_arrays
from elektronn.labels.components import interior_components

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT.parent / "shared" / "data"
EXAMPLES = ROOT / "elektronn" / "examples"
BLOCK = (128, 128, 128)


@dataclass(frozen=True)
class Dataset:
    """One dataset: the examples to train and where its validation part lies."""

    name: str
    classes_example: str
    affinity_example: str
    raw: tuple[Path, str]
    valid_z: tuple[int, int]
    context_z: int
    lsd_sigma: float


FIB25 = Dataset("fib25", "fib25_affinities.py", "fib25_affinities.py",
                (DATA / "fib25" / "raw.h5", "raw"), (175, 250), 20, 5.0)  # fmt: skip
ISBI = Dataset("isbi2012", "isbi2012_unet.py", "isbi2012_affinities.py",
               (DATA / "isbi2012" / "train-volume.h5", "raw"), (25, 30), 0, 6.0)  # fmt: skip


def run(*command: str, env: dict | None = None) -> subprocess.CompletedProcess:
    """A command line, its output kept; a failure is recorded, not raised."""
    result = subprocess.run(command, capture_output=True, text=True, env=env)
    if result.returncode:
        print(f"  FAILED ({result.returncode}): {' '.join(command)}\n  {result.stderr[-800:]}")
    return result


def truth_ids(data: Dataset, work: Path) -> np.ndarray:
    """The validation IDs ``(x, y, z)``: FIB-25's neurons; ISBI's interior components."""
    z0, z1 = data.valid_z
    if data.name == "fib25":
        with h5py.File(DATA / "fib25" / "neuron_ids.h5", "r") as f:
            return f["ids"][:, :, z0:z1]
    with h5py.File(DATA / "isbi2012" / "train-labels.h5", "r") as f:
        boundary = f["labels"][:, :, z0:z1]
    return np.stack([interior_components(boundary[:, :, z]) for z in range(z1 - z0)], -1)


def prepare_labels(data: Dataset, work: Path) -> dict[str, str]:
    """Label files the variants need, made once: FIB-25 boundaries, ISBI IDs."""
    if data.name == "fib25":
        target = f"{work / 'fib25-boundaries.h5'}:lab"
        run("elektronn-labels", "boundaries", f"{DATA / 'fib25' / 'neuron_ids.h5'}:ids", target,
            "--3d", "--overwrite")  # fmt: skip
        return {"boundaries": str(work / "fib25-boundaries.h5")}
    run("elektronn-labels", "components", f"{DATA / 'isbi2012' / 'train-labels.h5'}:labels",
        f"{work / 'train-ids.h5'}:ids", "--overwrite")  # fmt: skip
    return {"ids_dir": str(work)}


def train(data: Dataset, variant: str, work: Path, minutes: float, labels: dict) -> Path:
    """Train one variant for ``minutes``; returns its save directory."""
    save = f"{data.name}-{variant}"
    sets = [f"save_path={str(work)!r}", f"save_name={save!r}", f"max_runtime={minutes * 60}",
            "n_steps=10**9", "plot_on=False"]  # fmt: skip
    example = data.affinity_example
    if variant == "a":
        example = data.classes_example
        if data.name == "fib25":
            sets += ["target='nll'", "n_lab=2", "affinity_offsets=None",
                     f"label_path={str(Path(labels['boundaries']).parent) + '/'!r}",
                     "l_files=[('fib25-boundaries.h5', 'lab', (0, 175)), "
                     "('fib25-boundaries.h5', 'lab', (175, 250))]"]  # fmt: skip
    if variant == "c":
        sets.append(f"lsd_sigma={data.lsd_sigma}")
    env = None
    if data.name == "isbi2012":
        env = {**os.environ, "ISBI2012_IDS_DIR": labels["ids_dir"]}
    args = [a for s in sets for a in ("--set", s)]
    run("elektronn-train", str(EXAMPLES / example), *args, env=env)
    return work / save


def validation_raw(data: Dataset, work: Path, crop: int | None) -> tuple[str, int]:
    """The validation raw with the net's context in z; returns the file and its z start."""
    z0, z1 = data.valid_z
    start = max(0, z0 - data.context_z)
    with h5py.File(data.raw[0], "r") as f:
        raw = f[data.raw[1]][:crop, :crop, start:z1]
    path = work / f"{data.name}-valid-raw.h5"
    with h5py.File(path, "w") as f:
        f["raw"] = raw
    return f"{path}:raw", start


def score(truth: np.ndarray, seg_file: Path, pred_file: Path, z_start: int,
          valid_z: tuple[int, int]) -> dict:  # fmt: skip
    """VOI and ARAND of a segmentation against the truth on the prediction's region."""
    with h5py.File(pred_file, "r") as f:
        offset = [int(v) for v in f["prob"].attrs["offset"]]
    with h5py.File(seg_file, "r") as f:
        seg = f["segments"][()]
    x0, y0, z0 = offset[0], offset[1], z_start + offset[2] - valid_z[0]
    region = truth[x0 : x0 + seg.shape[0], y0 : y0 + seg.shape[1], z0 : z0 + seg.shape[2]]
    keep = slice(max(0, -z0), None)
    return score_arrays(region[:, :, keep], seg[:, :, keep], BLOCK, unit="nats")


def upper_bound(truth: np.ndarray, offsets: list, work: Path, name: str) -> dict | None:
    """mws on the ground-truth affinities: what the post-processing reaches at best."""
    ids = relabel_consecutive(truth)
    target = affinity_target(ids, [tuple(o) + (0,) * (3 - len(o)) for o in offsets])
    prob = np.where(target < 0, 0.5, target).astype(np.float32)
    path = work / f"{name}-gt-aff.h5"
    with h5py.File(path, "w") as f:
        f["prob"] = prob
        f["prob"].attrs["affinity_offsets"] = [list(o) + [0] * (3 - len(o)) for o in offsets]
        f["prob"].attrs["offset"] = [0, 0, 0]
    seg = work / f"{name}-gt-seg.h5"
    if run("elektronn-segment", f"{path}:prob", f"{seg}:segments", "--method", "mws",
           "--overwrite").returncode:  # fmt: skip
        return None
    with h5py.File(seg, "r") as f:
        return score_arrays(truth, f["segments"], BLOCK, unit="nats")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--minutes", type=float, default=30.0, help="training per variant")
    parser.add_argument("--datasets", default="fib25,isbi2012")
    parser.add_argument("--variants", default="a,b,c")
    parser.add_argument("--crop", type=int, default=None, help="validation x, y extent")
    parser.add_argument("--json", default=None, help="also write the rows here")
    args = parser.parse_args()
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        for data in (d for d in (FIB25, ISBI) if d.name in args.datasets.split(",")):
            if not data.raw[0].exists():
                print(f"{data.name}: {data.raw[0]} is absent; skipped")
                continue
            labels = prepare_labels(data, work)
            truth = truth_ids(data, work)[: args.crop, : args.crop]
            one = score_arrays(truth, np.ones_like(truth), BLOCK, unit="nats")
            rows.append((data.name, "one segment", "-", one))
            raw, z_start = validation_raw(data, work, args.crop)
            for variant in args.variants.split(","):
                save_dir = train(data, variant, work, args.minutes, labels)
                pred = work / f"{save_dir.name}-pred.h5"
                if run(
                    "elektronn-predict", str(save_dir), raw, str(pred), "--gpu=false"
                ).returncode:
                    continue
                methods = {"a": ["watershed"], "b": ["mws", "watershed"], "c": ["mws"]}[variant]
                for method in methods:
                    seg = work / f"{save_dir.name}-{method}.h5"
                    if run("elektronn-segment", f"{pred}:prob", f"{seg}:segments", "--method",
                           method, "--overwrite").returncode:  # fmt: skip
                        continue
                    rows.append((data.name, variant, method,
                                 score(truth, seg, pred, z_start, data.valid_z)))  # fmt: skip
            offsets = [(-1, 0, 0), (0, -1, 0), (0, 0, -1)] if data.name == "fib25" else [
                (-1, 0), (0, -1)]  # fmt: skip
            bound = upper_bound(truth, offsets, work, data.name)
            if bound is not None:
                rows.append((data.name, "ground-truth affinities", "mws", bound))
    print("| data | variant | method | ARAND | VOI split | VOI merge |")
    print("| --- | --- | --- | --- | --- | --- |")
    for name, variant, method, s in rows:
        are, split, merge = s["adapted_rand_error"], s["voi_split"], s["voi_merge"]
        print(f"| {name} | {variant} | {method} | {are:.3f} | {split:.3f} | {merge:.3f} |")
    if args.json:
        Path(args.json).write_text(json.dumps([list(r) for r in rows], indent=1, default=float))


if __name__ == "__main__":
    sys.exit(main())
