"""Blockwise prediction on Dask: single process vs ``--workers 1`` vs ``--workers N``, resume.

A generated uint8 zarr v3 volume (1024, 1024, Z) (x, y, z; Z = 64 is the issue's size, the
default 8 keeps the run to a few minutes on 2 cores) is predicted with the ISBI example's
net (untrained weights: speed does not depend on them), mirror-padded, through the command
line's own code path (``elektronn.predict.cli.main``):

* single process, h5 output (the path without Dask, as before),
* single process, OME-Zarr output (blocks one after the other, no Dask),
* ``--workers 1`` and ``--workers N`` (a LocalCluster started and closed by the command),
* resume: the ``--workers N`` output with half of its done records cleared, predicted
  again (only that half is computed), and the finished store again (nothing to do).

Peak RSS is sampled every 0.1 s over this process and its children (the Dask workers).
Run::

    python benchmarks/bench_predict_blockwise.py [--z 8] [--workers 2] [--tile 424,424,1]
"""

from __future__ import annotations

import argparse
import contextlib
import platform
import sys
import tempfile
import threading
import time
from pathlib import Path

import numpy as np
import psutil
import torch
import zarr

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench_predict import cpu_name, isbi_config  # noqa: E402

from elektronn.net.model import build_model  # noqa: E402
from elektronn.net.paramfile import save_params  # noqa: E402
from elektronn.predict.cli import main as predict  # noqa: E402
from elektronn.predict.stores import DONE  # noqa: E402


class PeakRss:
    """Largest RSS seen per process (this one and its children) while running."""

    def __init__(self) -> None:
        self.peaks: dict[int, int] = {}
        self.running = True
        self.thread = threading.Thread(target=self.sample, daemon=True)

    def sample(self) -> None:
        me = psutil.Process()
        while self.running:
            for p in [me, *me.children(recursive=True)]:
                with contextlib.suppress(psutil.Error):
                    self.peaks[p.pid] = max(self.peaks.get(p.pid, 0), p.memory_info().rss)
            time.sleep(0.1)

    def __enter__(self) -> PeakRss:
        self.thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.running = False
        self.thread.join()

    def workers(self) -> list[int]:
        """Peaks of the child processes that ran a net (the Dask workers, > 200 MB)."""
        me = psutil.Process().pid
        return sorted(v for k, v in self.peaks.items() if k != me and v > 200 * 2**20)


def timed(args: list[str]) -> tuple[float, PeakRss]:
    with PeakRss() as rss:
        start = time.perf_counter()
        assert predict(args) == 0, args
        return time.perf_counter() - start, rss


def make_volume(folder: Path, n_z: int) -> Path:
    """(1024, 1024, n_z) uint8 as a zarr v3 array with dimension names, (z, y, x) chunks."""
    path = folder / "raw.zarr"
    group = zarr.open_group(str(path), mode="w", zarr_format=3)
    array = group.create_array("raw", shape=(n_z, 1024, 1024), chunks=(8, 512, 512),
                               dtype="uint8", dimension_names=["z", "y", "x"])  # fmt: skip
    rng = np.random.default_rng(0)
    for z in range(0, n_z, 8):
        array[z : z + 8] = rng.integers(0, 256, array[z : z + 8].shape, dtype=np.uint8)
    return path


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--z", type=int, default=8)
    p.add_argument("--workers", type=int, default=2)
    p.add_argument("--tile", default="424,424,1", help="tile (user order) for every run")
    args = p.parse_args()
    torch.manual_seed(0)
    with tempfile.TemporaryDirectory() as name:
        folder = Path(name)
        config, net_name = isbi_config(folder)
        model = build_model(config, 1, 2)
        param = folder / "isbi.param"
        save_params(param, model, {"save_name": "isbi", "target": "nll"})
        source = f"{make_volume(folder, args.z)}:raw"
        common = ["--gpu=false", "--pad", "--tile", args.tile]
        voxels = 1024 * 1024 * args.z
        print(f"Net: {net_name}; volume (1024, 1024, {args.z}) uint8 zarr v3; torch "
              f"{torch.__version__}, {torch.get_num_threads()} threads, {cpu_name()}, "
              f"{psutil.cpu_count()} cores, Python {platform.python_version()}")  # fmt: skip
        rows = []
        seconds, rss = timed([str(param), source, str(folder / "single.h5"), *common])
        rows.append(("single process, h5 output", seconds, rss.peaks[psutil.Process().pid]))
        seconds, rss = timed([str(param), source, str(folder / "single.zarr"), *common])
        rows.append(("single process, OME-Zarr output", seconds, max(rss.peaks.values())))
        for n in (1, args.workers):
            out = folder / f"w{n}.zarr"
            seconds, rss = timed([str(param), source, str(out), *common, "--workers", str(n)])
            rows.append((f"--workers {n}", seconds, max(rss.workers(), default=0)))
        done = zarr.open_group(str(out), mode="r+")[DONE]
        flags = np.asarray(done[...])
        flags.reshape(-1)[: flags.size // 2] = 0
        done[...] = flags
        seconds, _ = timed([str(param), source, str(out), *common, "--workers", str(n)])
        rows.append((f"resume half, --workers {n}", seconds, 0))
        skip, _ = timed([str(param), source, str(out), *common, "--workers", str(n)])
        rows.append(("rerun of a finished store", skip, 0))
        same = np.abs(zarr.open_group(str(out))["0"][...] - zarr.open_group(
            str(folder / "single.zarr"))["0"][...]).max()  # fmt: skip
        report(rows, voxels, args.workers, same)


def report(rows: list, voxels: int, n: int, same: float) -> None:
    base = rows[0][1]
    print(f"\n{'run':<34} {'s':>7} {'Mvox/s':>8} {'vs single':>9} {'peak RSS MB':>12}")
    for label, seconds, rss in rows[:4]:
        print(f"{label:<34} {seconds:7.1f} {voxels / seconds / 1e6:8.3f} "
              f"{base / seconds:9.2f} {rss / 2**20:12.0f}")  # fmt: skip
    w1, wn = rows[2][1], rows[3][1]
    print(f"\nDask overhead at 1 worker: {100 * (w1 / base - 1):+.1f} % (target <= 10 %)")
    print(f"Scaling efficiency at {n} workers: {w1 / wn / n:.2f} ({w1 / wn:.2f}x of 1 worker)")
    print(f"Resume with half the blocks done: {rows[4][1]:.1f} s (full run {wn:.1f} s); "
          f"rerun of a finished store: {rows[5][1]:.1f} s")  # fmt: skip
    print(f"max |workers - single process OME-Zarr| = {same:.1e}")


if __name__ == "__main__":
    main()
