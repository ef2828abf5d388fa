"""Tile-size tuner (``elektronn-predict --profile``, the original ``elektronn-profile``).

Prediction speed grows with the tile: the halo (``fov - 1`` per axis) is a smaller share
of a larger tile, and larger batches of work keep the device busy. It is capped by memory.
The tuner times one MFP forward pass per tile size on random input, on the device that will
predict, going up a ladder of tile sizes until a size no longer fits in memory.
"""

from __future__ import annotations

import csv
import math
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import psutil
import torch

from ..axes import to_user
from .dense import DenseForward, dense_forward, evaluating, tile_probabilities, widest_layer
from .geometry import AxisGeometry, NetGeometry, net_geometry
from .progress import Stopwatch

Clock = Callable[[], float]

#: Output edge lengths tried (each rounded to the net's stride and capped by the volume).
LADDER = (16, 24, 32, 48, 64, 96, 128, 192, 256, 384, 512, 768, 1024, 1536, 2048)

#: Bytes per (input voxel x widest channel count) a forward pass needs at its peak,
#: float32 activations of ~4 layers alive at once (a safe over-estimate for MFP).
BYTES_PER_VOXEL_CHANNEL = 16

#: Least total time spent timing one tile size.
MIN_SECONDS = 0.25

#: Stop the ladder once one pass takes this long: larger tiles will not be faster enough.
MAX_SECONDS_PER_TILE = 20.0


@dataclass(frozen=True)
class ProfileRow:
    """One measured tile size (internal order)."""

    tile_in: tuple[int, ...]
    tile_out: tuple[int, ...]
    seconds: float

    @property
    def voxels_per_s(self) -> float:
        return math.prod(self.tile_out) / self.seconds

    @property
    def redundancy(self) -> float:
        """Input voxels per output voxel of this tile (the halo's cost)."""
        return math.prod(self.tile_in) / math.prod(self.tile_out)


def candidate_tiles(
    axes: tuple[AxisGeometry, ...], max_out: tuple[int, ...] | None
) -> list[tuple[int, ...]]:
    """Tile inputs with about the same output edge on every axis, smallest first.

    Axes whose output is capped (by ``max_out``, e.g. a thin z range) stay at the cap.
    """
    tiles: list[tuple[int, ...]] = []
    for edge in LADDER:
        out = []
        for i, g in enumerate(axes):
            cap = edge if max_out is None else min(edge, max_out[i])
            out.append(g.round_output(cap))
        tile = tuple(g.input_size(o) for g, o in zip(axes, out, strict=True))
        if tile not in tiles:
            tiles.append(tile)
    return tiles


def free_memory(device: torch.device) -> int:
    """Bytes a tile may use: free GPU memory, or half the available RAM on the CPU."""
    if device.type == "cuda":
        return torch.cuda.mem_get_info(device)[0]
    return psutil.virtual_memory().available // 2


def time_tile(
    forward: DenseForward,
    target: str,
    tile_in: tuple[int, ...],
    n_ch: int,
    device: torch.device,
    repeats: int,
    clock: Clock,
    min_seconds: float = MIN_SECONDS,
) -> float:
    """Best time of one pass over a random tile, after a warm-up pass.

    Passes repeat until there were ``repeats`` of them and :data:`MIN_SECONDS` went by,
    so small tiles get many tries: the minimum is what the tile costs when nothing else
    competes for the device (shared machines make single timings noisy).
    """
    tile = np.random.default_rng(0).random((n_ch, *tile_in), dtype=np.float32)
    times: list[float] = []
    total = Stopwatch()
    while len(times) <= repeats or total() < min_seconds:
        start = clock()
        tile_probabilities(forward, target, tile, device, stack=False)
        if device.type == "cuda":
            torch.cuda.synchronize(device)
        times.append(clock() - start)
    return min(times[1:])


def profile_tiles(
    model: torch.nn.Module,
    *,
    device: torch.device,
    target: str = "nll",
    method: str = "auto",
    max_out: tuple[int, ...] | None = None,
    precision: str = "fp32",
    repeats: int = 2,
    clock: Clock = time.perf_counter,
    report: Callable[[str], None] = print,
    min_seconds: float = MIN_SECONDS,
    past_peak: float | None = None,
) -> list[ProfileRow]:
    """Time dense prediction for a ladder of tile sizes that fit in memory.

    Parameters
    ----------
    max_out
        Largest useful output per axis (internal order), e.g. the volume to predict; by
        default only memory limits the tile.
    clock
        Wall time by default (what a prediction will take); ``time.process_time`` gives
        CPU time, which does not depend on other jobs of a shared machine (one thread).
    report
        Called with one line per measured size, so a long profile shows progress.
    min_seconds
        Least time spent timing one size (fewer passes for a short timing).
    past_peak
        Stop once a size is slower than this fraction of the fastest so far (the speed
        peaks where the activations still fit the caches); None times the whole ladder.

    Returns
    -------
    list of ProfileRow
        In the order measured; :func:`fastest` picks the winner.
    """
    geometry: NetGeometry = net_geometry(model)
    forward = dense_forward(model.to(device), method, geometry, precision)
    limit = free_memory(device) // (BYTES_PER_VOXEL_CHANNEL * widest_layer(model))
    rows: list[ProfileRow] = []
    with evaluating(model), torch.inference_mode():
        for tile_in in candidate_tiles(geometry.axes, max_out):
            if math.prod(tile_in) > limit:
                break
            try:
                seconds = time_tile(
                    forward, target, tile_in, geometry.n_ch, device, repeats, clock, min_seconds
                )
            except torch.OutOfMemoryError:
                break
            tile_out = tuple(g.output_size(n) for g, n in zip(geometry.axes, tile_in))
            rows.append(ProfileRow(tile_in, tile_out, seconds))
            report(format_row(rows[-1]))
            if seconds > MAX_SECONDS_PER_TILE:
                break
            if past_peak and rows[-1].voxels_per_s < past_peak * fastest(rows).voxels_per_s:
                break
    return rows


def fastest(rows: list[ProfileRow]) -> ProfileRow:
    return max(rows, key=lambda r: r.voxels_per_s)


def format_tile(shape: tuple[int, ...]) -> str:
    return ",".join(str(n) for n in to_user(shape))


TABLE_HEADER = (
    f"{'tile (x,y[,z])':>18} {'output':>16} {'redundancy':>10} {'s/tile':>8} {'Mvox/s':>8}"
)


def format_row(row: ProfileRow) -> str:
    return (
        f"{format_tile(row.tile_in):>18} {format_tile(row.tile_out):>16} "
        f"{row.redundancy:10.3f} {row.seconds:8.3f} {row.voxels_per_s / 1e6:8.3f}"
    )


def write_csv(rows: list[ProfileRow], path: Path) -> None:
    """``Speed_<name>.csv``: one line per tile size, user axis order."""
    with open(path, "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["tile_in_xyz", "tile_out_xyz", "redundancy", "seconds", "Mvox_per_s"])
        for r in rows:
            writer.writerow(
                [
                    format_tile(r.tile_in),
                    format_tile(r.tile_out),
                    f"{r.redundancy:.4f}",
                    f"{r.seconds:.5f}",
                    f"{r.voxels_per_s / 1e6:.4f}",
                ]
            )
