"""On-disk data (``data_in_memory=False``) vs in memory: patches/s on one core, and memory.

Run ``python benchmarks/bench_data_disk.py`` (a few minutes; ``--quick`` for a smoke run). It
writes a uint8 image and label volume (x, y, z) = (1024, 1024, 192), 384 MiB together, as
chunked h5 datasets to /tmp (deleted afterwards) and prints

1. patches/s of ``getbatch`` (batch 8, flips and grey augmentation on) with and without warping
   for a 3D patch (7,127,127) and a 2D patch 256×256 (the cases of ``bench_data.py``), from
   disk and from memory with the same settings and seed, on one core. "disk" rounds start with
   the file in the page cache (read once, untimed), so they measure HDF5 and the conversions;
   "cold" rounds start with the file evicted from it (``posix_fadvise(DONTNEED)``), so most
   reads go to the disk;
2. the growth of the process RSS: on-disk data (constructed, labels checked, patches drawn)
   against the in-memory data of the same volume.
"""

from __future__ import annotations

import argparse
import os
import platform
import shutil
import tempfile
import time
from collections.abc import Callable

import h5py
import numpy as np
import psutil
import torch

from elektronn.data import ImageData

MB = 2**20
SHAPE = (1024, 1024, 192)
CHUNKS = (64, 64, 8)
NETS = {
    "3D (7,127,127)": dict(
        n_dim=3, patch_shape=(7, 127, 127), int_offset=(1, 20, 20), stride=(1, 2, 2)
    ),
    "2D 256x256": dict(n_dim=2, patch_shape=(256, 256), int_offset=(30, 30), stride=(2, 2)),
}


def write_volume(path: str) -> float:
    """Random uint8 image and binary labels, chunked, written slab by slab; MiB on disk."""
    rng = np.random.default_rng(0)
    with h5py.File(path, "w") as h5:
        raw = h5.create_dataset("raw", SHAPE, np.uint8, chunks=CHUNKS)
        lab = h5.create_dataset("lab", SHAPE, np.uint8, chunks=CHUNKS)
        for z0 in range(0, SHAPE[2], 32):
            slab = rng.integers(0, 256, (*SHAPE[:2], 32), dtype=np.uint8)
            raw[:, :, z0 : z0 + 32] = slab
            lab[:, :, z0 : z0 + 32] = slab > 127
    return os.path.getsize(path) / MB


def warm(path: str) -> None:
    """Read the whole file once, so that its pages are in the page cache."""
    with open(path, "rb") as file:
        while file.read(64 * MB):
            pass


def evict(path: str) -> None:
    """Drop the file's pages from the page cache (no root needed for clean pages)."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
        os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
    finally:
        os.close(fd)


def open_data(folder: str, net: str, in_memory: bool) -> ImageData:
    return ImageData(
        [("vol.h5", "raw")],
        [("vol.h5", "lab")],
        data_path=folder,
        label_path=folder,
        n_lab=2,
        seed=0,
        data_in_memory=in_memory,
        **NETS[net],
    )


def patches(data: ImageData, n_batches: int, warp: bool) -> Callable[[], int]:
    """A timing function: ``n_batches`` batches of 8; returns the number of patches."""
    kwargs = dict(batch_size=8, flip=True, grey_augment_channels=[0], warp_on=warp)

    def make() -> int:
        for _ in range(n_batches):
            data.getbatch(**kwargs)
        return 8 * n_batches

    return make


def best_rates(
    cases: dict[str, tuple[Callable[[], None], Callable[[], int]]], repeats: int
) -> dict[str, float]:
    """Best items/s of each ``(prepare, run)`` case; ``prepare`` (page cache) is not timed.

    The cases run interleaved, so that load from other processes on a shared machine hits
    all of them alike; the first round warms up.
    """
    best = dict.fromkeys(cases, 0.0)
    for _ in range(repeats + 1):
        for name, (prepare, run) in cases.items():
            prepare()
            start = time.perf_counter()
            count = run()
            best[name] = max(best[name], count / (time.perf_counter() - start))
    return best


def speed(folder: str, n_batches: int, repeats: int) -> list[tuple]:
    """Rows (patch, warp, memory, disk, disk cold) in patches/s."""
    path = os.path.join(folder, "vol.h5")
    rows = []
    for net in NETS:
        memory, disk = open_data(folder, net, True), open_data(folder, net, False)
        for warp in (False, True):
            rates = best_rates(
                {
                    "memory": (lambda: None, patches(memory, n_batches, warp)),
                    "disk": (lambda: warm(path), patches(disk, n_batches, warp)),
                    "cold": (lambda: evict(path), patches(disk, n_batches, warp)),
                },
                repeats,
            )
            rows.append((net, warp, rates["memory"], rates["disk"], rates["cold"]))
        del memory, disk
    return rows


def rss_growth(folder: str, n_batches: int) -> tuple[float, float]:
    """RSS growth (MiB) of on-disk data after drawing batches, then of in-memory data."""
    process = psutil.Process()
    before = process.memory_info().rss
    disk = open_data(folder, "3D (7,127,127)", False)
    for _ in range(n_batches):
        disk.getbatch(8, flip=True, grey_augment_channels=[0], warp_on=True)
    on_disk = (process.memory_info().rss - before) / MB
    before = process.memory_info().rss
    memory = open_data(folder, "3D (7,127,127)", True)
    in_memory = (process.memory_info().rss - before) / MB
    del memory
    return on_disk, in_memory


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer and shorter rounds")
    args = parser.parse_args()
    torch.set_num_threads(1)
    n_batches, repeats = (2, 1) if args.quick else (6, 5)
    print(
        f"machine: {platform.machine()}, {os.cpu_count()} CPUs, "
        f"{psutil.virtual_memory().total / 2**30:.0f} GiB; Python {platform.python_version()}, "
        f"torch {torch.__version__}, numpy {np.__version__}, h5py {h5py.__version__}"
    )
    folder = tempfile.mkdtemp(prefix="elektronn_bench_disk_", dir="/tmp")
    try:
        size = write_volume(os.path.join(folder, "vol.h5"))
        print(f"volume: uint8 image + labels {SHAPE} (x, y, z), chunks {CHUNKS}, {size:.0f} MiB")
        on_disk, in_memory = rss_growth(folder, 50)
        print(f"\nRSS growth: on disk {on_disk:.0f} MiB (after 50 batches), in memory "
              f"{in_memory:.0f} MiB, volume {size:.0f} MiB on disk")  # fmt: skip
        print("\ngetbatch(8), flips + grey augmentation, one core: patches/s")
        header = ("memory", "disk", "ratio", "cold", "ratio")
        print(f"{'patch':16} {'warp':5} " + " ".join(f"{h:>8}" for h in header))
        for net, warp, memory, disk, cold in speed(folder, n_batches, repeats):
            print(
                f"{net:16} {'on' if warp else 'off':5} {memory:8.1f} {disk:8.1f} "
                f"{disk / memory:8.2f} {cold:8.1f} {cold / memory:8.2f}"
            )
    finally:
        shutil.rmtree(folder)


if __name__ == "__main__":
    main()
