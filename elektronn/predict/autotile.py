"""The default tile: a short timing of a few valid tile sizes, cached per model and device.

The fixed voxel budget of :func:`.dense.default_tile` ignores the caches, and on a CPU large
tiles are slower (``benchmarks/RESULTS.md``: 0.61x the tuned tile on the ISBI net). So the
first prediction without ``--tile`` times the tuner's ladder (:mod:`.profile`) with one pass
per size, stopping once a size is clearly slower than the best so far, and stores the
winner in ``tile-cache.json`` beside the parameter file; later runs read it.
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

import torch

from .profile import fastest, profile_tiles

CACHE_NAME = "tile-cache.json"

#: Stop the short timing once a tile is this much slower than the best one so far.
PAST_PEAK = 0.8


def cache_key(
    param_file: Path,
    device: torch.device,
    method: str,
    precision: str,
    max_out: tuple[int, ...] | None,
) -> str:
    """What the best tile depends on: the net (file and its time), the device, the method."""
    name = torch.cuda.get_device_name(device) if device.type == "cuda" else "cpu"
    threads = torch.get_num_threads()
    stamp = int(param_file.stat().st_mtime)
    return f"{param_file.name}@{stamp}|{name}x{threads}|{method}|{precision}|{max_out}"


def read_cache(path: Path) -> dict:
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return {}


def write_cache(path: Path, cache: dict) -> None:
    """Best effort: a read-only save directory only costs the timing next time."""
    tmp = path.with_suffix(f".{os.getpid()}.tmp")
    try:
        tmp.write_text(json.dumps(cache, indent=1))
        os.replace(tmp, path)
    except OSError:
        tmp.unlink(missing_ok=True)


def tuned_tile(
    model: torch.nn.Module,
    param_file: Path,
    *,
    target: str,
    method: str,
    precision: str,
    max_out: tuple[int, ...] | None,
) -> tuple[int, ...] | None:
    """The fastest net tile input (internal order) by a short timing, or the cached one.

    None when not even the smallest tile fits (the caller keeps the old default).
    """
    device = next(model.parameters()).device
    path = param_file.parent / CACHE_NAME
    key = cache_key(param_file, device, method, precision, max_out)
    cache = read_cache(path)
    if key in cache:
        return tuple(cache[key])
    rows = profile_tiles(
        model,
        device=device,
        target=target,
        method=method,
        max_out=max_out,
        precision=precision,
        repeats=1,
        min_seconds=0.0,
        past_peak=PAST_PEAK,
        clock=time.perf_counter,
        report=lambda line: None,
    )
    if not rows:
        return None
    cache[key] = list(fastest(rows).tile_in)
    write_cache(path, cache)
    return tuple(cache[key])
