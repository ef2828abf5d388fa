"""Segmentation speed: Mvox/s per core of each method, one block vs 2x2x2 blocks vs a Dask
LocalCluster of 2 workers, and the peak RSS per worker.

Run ``python benchmarks/bench_segment.py`` (``--size 250``: the whole FIB-25 cube, minutes on
two cores; ``--size 128`` for a quick run). The prediction is made from the FIB-25 neuron IDs
(``../shared/data/fib25``; synthetic Voronoi cells where it is absent): a two-class boundary
map (borders blurred, noise 0.15) for components and watershed, affinities with long-range
offsets (noise 0.2) for mws. Each line prints the wall time, Mvox/s per core used, the
adapted Rand error against the IDs and against the one-block result, and the peak RSS of the
process that segmented (the workers' for the cluster; in process it includes the test volumes
this script holds). python-elf (the issue's reference) is
not on PyPI here, so there is no side-by-side with it.
"""

from __future__ import annotations

import argparse
import platform
import resource
import sys
import tempfile
import time
from pathlib import Path

import h5py
import numpy as np
import psutil
from skimage.metrics import adapted_rand_error

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
from test_segment import OFFSETS, affinities, cells, class_map  # noqa: E402

from elektronn.segment import segment_volume  # noqa: E402

FIB25 = Path(__file__).resolve().parents[2] / "shared" / "data" / "fib25" / "neuron_ids.h5"


def neuron_ids(size: int) -> np.ndarray:
    if FIB25.exists():
        with h5py.File(FIB25, "r") as f:
            return f["ids"][:size, :size, :size].astype(np.int64)
    return cells((size, size, size), size // 4)


def write(path: Path, prediction: np.ndarray, offsets=None) -> str:
    with h5py.File(path, "w") as f:
        data = f.create_dataset("prob", data=prediction)
        data.attrs["offset"] = np.zeros(3, np.int64)
        if offsets is not None:
            data.attrs["affinity_offsets"] = np.asarray(offsets)
    return f"{path}:prob"


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def are(a: np.ndarray, b: np.ndarray, ignore=()) -> float:
    return adapted_rand_error(a.astype(np.int64), b.astype(np.int64), ignore_labels=ignore)[0]


def run(spec: str, out: Path, method: str, block, scheduler=None,
        **options) -> tuple[float, np.ndarray]:  # fmt: skip
    start = time.perf_counter()
    segment_volume(spec, str(out), method=method, block=block, scheduler=scheduler,
                   progress=False, overwrite=True, **options)  # fmt: skip
    seconds = time.perf_counter() - start
    with h5py.File(out, "r") as f:
        return seconds, f["segments"][...]


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--size", type=int, default=250, help="edge of the cube (default 250)")
    args = p.parse_args()
    from distributed import LocalCluster

    ids = neuron_ids(args.size)
    size = args.size
    half = tuple(-(-size // 2) for _ in range(3))
    print(f"{size}^3 voxels ({'FIB-25' if FIB25.exists() else 'synthetic'}), "
          f"{platform.processor() or platform.machine()}, {psutil.cpu_count()} cores, "
          f"Python {platform.python_version()}")  # fmt: skip
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        specs = {"boundary": write(tmp / "b.h5", class_map(ids, noise=0.15)),
                 "affinities": write(tmp / "a.h5", affinities(ids), OFFSETS)}  # fmt: skip
        with LocalCluster(n_workers=2, threads_per_worker=1, dashboard_address=None) as cluster:
            client = cluster.get_client()
            for method, source in (("components", "boundary"), ("watershed", "boundary"),
                                   ("mws", "affinities")):  # fmt: skip
                options = {"foreground_class": 0} if method == "components" else {}
                spec = specs[source]
                one_s, one = run(spec, tmp / "one.h5", method, (size,) * 3, **options)
                for label, block, scheduler, cores in (
                    ("1 block", (size,) * 3, None, 1),
                    ("2x2x2 blocks", half, None, 1),
                    ("2x2x2, 2 workers", half, cluster.scheduler_address, 2),
                ):
                    seconds, seg = (one_s, one) if label == "1 block" else run(
                        spec, tmp / "seg.h5", method, block, scheduler, **options)  # fmt: skip
                    rss = max(client.run(peak_rss_mb).values()) if scheduler else peak_rss_mb()
                    print(f"{method:10s} {label:17s} {seconds:7.1f} s "
                          f"{size**3 / seconds / 1e6 / cores:6.2f} Mvox/s/core  "
                          f"ARE vs IDs {are(ids, seg, (0,)):.4f}  vs 1 block "
                          f"{are(one, seg):.2e}  peak RSS {rss:6.0f} MB")  # fmt: skip


if __name__ == "__main__":
    main()
