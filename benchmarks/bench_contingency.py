"""Peak memory of scoring two large segmentations on disk (``elektronn-evaluate --segments``).

    python benchmarks/bench_contingency.py [--edge 1024] [--folder /tmp/contingency]

Writes a ground truth and a segmentation of EDGE³ uint32 IDs as zarr arrays, chunk by chunk
(cells of 32³ voxels; the segmentation is the truth shifted by 8 voxels along x, so every cell
is split in two and merged with its neighbour), then scores them with
:func:`elektronn.evaluate.contingency.table_of` and prints a table: voxels, (truth, segment)
pairs, seconds, the process's peak RSS, and the bytes the two volumes hold for comparison.
"""

from __future__ import annotations

import argparse
import resource
import shutil
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import zarr

from elektronn.evaluate.contingency import boxes, table_of

CELL, SHIFT, CHUNK = 32, 8, (256, 256, 64)


def cells(box: tuple[slice, ...], shift: int) -> np.ndarray:
    """The IDs of 32³ cells (from 1) in a box, the grid moved by ``shift`` along x."""
    x, y, z = np.meshgrid(*(np.arange(s.start, s.stop) for s in box), indexing="ij")
    x = (x + shift) // CELL
    n = 1 + 4096 // CELL
    return (1 + x + n * (y // CELL) + n * n * (z // CELL)).astype(np.uint32)


def write(path: Path, edge: int, shift: int) -> zarr.Array:
    array = zarr.open_array(str(path), mode="w", shape=(edge,) * 3, chunks=CHUNK, dtype="uint32")
    for box in boxes(array.shape, CHUNK):
        array[box] = cells(box, shift)
    return array


def score(folder: Path, edge: int) -> None:
    """Score the two volumes in this process (a fresh one: its peak RSS is the scoring's)."""
    truth = zarr.open_array(str(folder / "truth.zarr"), mode="r")
    segments = zarr.open_array(str(folder / "seg.zarr"), mode="r")
    start = time.perf_counter()
    table = table_of(truth, segments, CHUNK)
    scores = table.scores("nats")
    seconds = time.perf_counter() - start
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20
    volumes = 2 * 4 * edge**3 / 2**30
    print(
        f"{'voxels':>14} {'pairs':>9} {'seconds':>8} {'peak RSS GiB':>13} {'volumes GiB':>12}"
        f" {'ratio':>6} {'ARE':>7}"
    )
    print(
        f"{table.voxels:>14,} {len(table.count):>9,} {seconds:>8.1f} {peak:>13.2f} "
        f"{volumes:>12.1f} {peak / volumes:>6.2f} {scores['adapted_rand_error']:>7.4f}"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--edge", type=int, default=1024)
    parser.add_argument("--folder", default="/tmp/contingency")
    parser.add_argument("--score-only", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    folder = Path(args.folder)
    if args.score_only:
        score(folder, args.edge)
        return
    shutil.rmtree(folder, ignore_errors=True)
    write(folder / "truth.zarr", args.edge, 0)
    write(folder / "seg.zarr", args.edge, SHIFT)
    command = [sys.executable, __file__, "--edge", str(args.edge), "--folder", str(folder)]
    subprocess.run([*command, "--score-only"], check=True)
    shutil.rmtree(folder, ignore_errors=True)


if __name__ == "__main__":
    main()
