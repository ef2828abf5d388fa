"""Synthetic EM-like membrane volumes, so the demo and the tests need no download.

Cells are the Voronoi regions of random seeds (per z-slice, drifting slowly along z like
neurites cut across serial sections); membranes are the pixels whose neighbour belongs to
another cell. The raw image is a blurred, noisy rendering of the membranes, so a small CNN
can learn the boundary map within minutes on a CPU.
"""

from __future__ import annotations

from pathlib import Path

import h5py
import numpy as np
from scipy import ndimage
from scipy.spatial import cKDTree


def cell_ids(shape: tuple[int, int, int], n_cells: int, rng: np.random.Generator) -> np.ndarray:
    """Voronoi cell IDs of shape (x, y, z); seeds drift along z."""
    nx, ny, nz = shape
    seeds = rng.uniform(0, [nx, ny], size=(n_cells, 2))
    drift = rng.normal(0, 0.7, size=(n_cells, 2))
    grid = np.stack(np.meshgrid(np.arange(nx), np.arange(ny), indexing="ij"), -1).reshape(-1, 2)
    ids = np.empty(shape, dtype=np.int32)
    for z in range(nz):
        _, nearest = cKDTree(seeds + z * drift).query(grid)
        ids[:, :, z] = nearest.reshape(nx, ny)
    return ids


def boundaries_2d(ids: np.ndarray) -> np.ndarray:
    """1 where a 4-neighbour within the same z-slice has another ID, else 0 (uint8)."""
    edge = np.zeros(ids.shape, dtype=bool)
    edge[1:] |= ids[1:] != ids[:-1]
    edge[:-1] |= ids[1:] != ids[:-1]
    edge[:, 1:] |= ids[:, 1:] != ids[:, :-1]
    edge[:, :-1] |= ids[:, 1:] != ids[:, :-1]
    return edge.astype(np.uint8)


def render_raw(membranes: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """uint8 raw image: dark blurred membranes on a textured bright background."""
    texture = ndimage.gaussian_filter(rng.normal(0, 1, membranes.shape), sigma=(3, 3, 0))
    image = 0.75 - 0.5 * ndimage.gaussian_filter(membranes.astype(np.float32), (1, 1, 0)) * 1.6
    image += 0.05 * texture + rng.normal(0, 0.06, membranes.shape)
    return (np.clip(image, 0, 1) * 255).astype(np.uint8)


def build_membrane_volume(
    shape: tuple[int, int, int] = (192, 192, 16), n_cells: int = 60, seed: int = 0
) -> tuple[np.ndarray, np.ndarray]:
    """A raw (uint8) and a boundary-label (uint8, 1 = membrane) volume of shape (x, y, z)."""
    rng = np.random.default_rng(seed)
    labels = boundaries_2d(cell_ids(shape, n_cells, rng))
    return render_raw(labels, rng), labels


def ensure_demo_data(folder: str | Path = "~/.elektronn/demo-data") -> str:
    """Write two demo cubes (train, valid) once; returns the folder (with a trailing '/')."""
    folder = Path(folder).expanduser()
    folder.mkdir(parents=True, exist_ok=True)
    for i in range(2):
        raw_path, lab_path = folder / f"raw_{i}.h5", folder / f"membranes_{i}.h5"
        if raw_path.is_file() and lab_path.is_file():
            continue
        raw, labels = build_membrane_volume(seed=i)
        with h5py.File(lab_path, "w") as f:
            f.create_dataset("labels", data=labels, compression="gzip")
        with h5py.File(raw_path, "w") as f:
            f.create_dataset("raw", data=raw)
    return str(folder) + "/"
