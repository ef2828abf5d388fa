"""Data pipeline benchmark: warped-patch speed per core, and memory with background workers.

Run ``python benchmarks/bench_data.py`` (about a minute; ``--quick`` for a smoke run). It prints

1. patches per CPU second and Mvox/s on one core (``torch.set_num_threads(1)``; run with
   ``OMP_NUM_THREADS=1``) for a 3D patch (7,127,127)
   and a 2D patch 256×256 with warping on: the warp alone (coordinates, bounding box,
   resampling of image and labels), the same warps composed with elastic deformation (the
   random B-spline field included; goal >= 0.8x the warp alone), whole ``getbatch`` calls (sampling,
   warp, flips, grey augmentation, elastic), and ``scipy.ndimage.map_coordinates`` (order=1
   image, order=0 labels) on the *same* coordinates, precomputed outside the timing -- so the
   ratio is conservative; then the peers' own transforms on the same output patch, interleaved
   with ours (MONAI and batchgenerators, when installed: ``pip install -e ".[peers]"``):
   MONAI's affine + flip + 90° rotation + grey pipeline (on the anisotropic (7,127,127) patch as
   one in-plane 2D affine applied to the stacked slices, what MONAI / nnU-Net users run on such
   stacks; against it also our warp restricted to such an in-plane affine), and the elastic
   transforms at matched strength (:func:`matched_elastic`);
2. the total PSS of trainer + workers for 0, 2 and 4 background workers over a generated data
   set of >= 1 GB float32 (written to /tmp and deleted afterwards), against the target
   ``PSS(0) + n * prefetched batch bytes + 100 MB``.
"""

from __future__ import annotations

import argparse
import math
import os
import platform
import shutil
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass

import h5py
import numpy as np
import psutil
import scipy
import torch
from scipy import ndimage

from elektronn.data import BackgroundBatches, ImageData
from elektronn.data.flips import random_flip
from elektronn.data.geometry import PatchGeometry
from elektronn.data.grey import grey_augment
from elektronn.data.warping import (
    elastic_displacement,
    elastic_settings,
    sample_warp_params,
    source_coordinates,
    start_range,
    warp_patch,
)

MB = 2**20
CASES = {
    # name: (n_dim, patch (internal order), int_offset, stride, volume (ch, z, x, y))
    "3D (7,127,127)": (3, (7, 127, 127), (1, 20, 20), (1, 2, 2), (1, 40, 400, 400)),
    "3D 64^3": (3, (64, 64, 64), (10, 10, 10), (2, 2, 2), (1, 100, 200, 200)),
    "2D 256x256": (2, (256, 256), (30, 30), (2, 2), (1, 10, 600, 600)),
}


#: RMS in-plane displacement [voxels] of nnU-Net's batchgenerators setting (alpha U(0, 200),
#: sigma U(9, 13)) on a 256² patch, as :func:`matched_elastic` measured it (2026-12-05); used
#: when batchgenerators is not installed.
BATCHGENERATORS_RMS = 2.48
ELASTIC_SPACING = [24, 24, 4]  # our control spacing (x, y, z) and MONAI's (x, y), voxels


@dataclass(frozen=True)
class MatchedElastic:
    """Elastic settings of equal RMS in-plane displacement: batchgenerators' (the target),
    our ``elastic_strength`` and the upper end of MONAI's ``magnitude_range=(0, m)``."""

    rms: float
    strength: float
    monai_magnitude: float


def rms(displacement: np.ndarray) -> float:
    """Root mean square length of ``(2, ...)`` in-plane displacement vectors."""
    return float(np.sqrt((displacement.astype(np.float64) ** 2).sum(axis=0).mean()))


def matched_elastic(patch: tuple[int, int] = (256, 256), draws: int = 40) -> MatchedElastic:
    """Our strength and MONAI's magnitude that give batchgenerators' RMS displacement.

    Measured, not derived: batchgenerators' offsets from its own ``elastic_deform_coordinates``
    (alpha, sigma drawn as its ``SpatialTransform`` draws them); our field's ``dense()`` at
    strength 1; MONAI's ``Rand2DElastic`` at magnitude 1 (no affine part) resampling a ramp
    image of source coordinates, minus the identity. Both displacements grow linearly with
    strength / magnitude, and MONAI's magnitude is drawn from U(0, m) (mean square m²/3), as
    batchgenerators' alpha is from U(0, 200).
    """
    target = BATCHGENERATORS_RMS
    try:
        from batchgenerators.augmentations.utils import (
            create_zero_centered_coordinate_mesh,
            elastic_deform_coordinates,
        )
    except ImportError:
        pass
    else:
        np.random.seed(0)  # batchgenerators draws from numpy's global generator
        mesh = create_zero_centered_coordinate_mesh(patch)
        squares = []
        for _ in range(draws):
            alpha, sigma = np.random.uniform(0.0, 200.0), np.random.uniform(9.0, 13.0)
            squares.append(rms(elastic_deform_coordinates(mesh, alpha, sigma) - mesh) ** 2)
        target = math.sqrt(np.mean(squares))
    rng = np.random.default_rng(0)
    unit = elastic_settings(True, ELASTIC_SPACING, 1.0, 2)
    ours = math.sqrt(np.mean([
        rms(elastic_displacement(rng, (1, *patch), unit).dense()) ** 2 for _ in range(draws)
    ]))  # fmt: skip
    return MatchedElastic(target, target / ours, target * math.sqrt(3) / monai_unit_rms(patch))


def monai_unit_rms(patch: tuple[int, int], draws: int = 20) -> float:
    """RMS displacement of MONAI's ``Rand2DElastic`` at magnitude 1 (``inf`` without MONAI)."""
    try:
        from monai.transforms import Rand2DElastic
    except ImportError:
        return math.inf
    margin = 16
    size = [n + 2 * margin for n in patch]
    ramp = np.stack(np.meshgrid(*(np.arange(n, dtype=np.float32) for n in size), indexing="ij"))
    identity = ramp[:, margin:-margin, margin:-margin]
    transform = Rand2DElastic(spacing=tuple(ELASTIC_SPACING[:2]), magnitude_range=(1.0, 1.0),
                              prob=1.0, spatial_size=patch, padding_mode="border")  # fmt: skip
    transform.set_random_state(0)
    inner = (slice(None), slice(8, -8), slice(8, -8))  # away from the border padding
    squares = [
        rms((np.asarray(transform(torch.from_numpy(ramp))) - identity)[inner]) ** 2
        for _ in range(draws)
    ]
    return math.sqrt(np.mean(squares))


def best_rates(functions: dict[str, Callable[[], int]], repeats: int) -> dict[str, float]:
    """Best items per CPU second of each function (which returns how many items it made).

    Timed in CPU time of the process (everything runs on one thread), so the time the shared
    machine's other jobs hold the core does not count; the functions run interleaved, so that
    what load still costs (caches, memory bandwidth) hits all of them alike, and the best of
    ``repeats`` runs is kept.
    """
    best = dict.fromkeys(functions, 0.0)
    for _ in range(repeats + 1):  # the first round warms up
        for name, function in functions.items():
            start = time.process_time()
            count = function()
            best[name] = max(best[name], count / max(time.process_time() - start, 1e-9))
    return best


def in_plane_rows(
    image: np.ndarray, labels: np.ndarray, geometry: PatchGeometry, n_patches: int
) -> dict[str, Callable[[], int]]:
    """Our warp restricted to one in-plane affine map per 3D patch (a 2D warp's parameters:
    no twist, no z scale or z-dependent stretch), alone and with flips and grey values into a
    batch: the transform the peers apply to stacked slices (our warp then runs its
    :attr:`~elektronn.data.warping.SourceCoordinates.in_plane` path)."""
    rng = np.random.default_rng(1)
    jobs = []
    for _ in range(n_patches):
        params = sample_warp_params(rng, 2)
        coords = source_coordinates(params, geometry.patch)
        start = tuple(int(rng.integers(a, b + 1)) for a, b in start_range(coords, labels.shape))
        jobs.append((params, start))
    batch = np.empty((8, image.shape[0], *geometry.patch), np.float32)

    def warp_only() -> int:
        for params, start in jobs:
            coords = source_coordinates(params, geometry.patch)
            start_range(coords, labels.shape)
            warp_patch(image, labels, coords, start, geometry)
        return len(jobs)

    def augment() -> int:
        for i, (params, start) in enumerate(jobs):
            coords = source_coordinates(params, geometry.patch)
            start_range(coords, labels.shape)
            patch, lab = warp_patch(image, labels, coords, start, geometry)
            patch, lab = random_flip(rng, patch, lab, geometry, True, False)
            batch[i % 8] = patch
            grey_augment(rng, batch[i % 8], [0])
        return len(jobs)

    return {"in-plane warp alone (ours)": warp_only, "in-plane warp+flip+grey (ours)": augment}


def warp_speed(
    name: str, n_patches: int, repeats: int, tmp: str, match: MatchedElastic
) -> list[tuple]:
    """Rows (what, patches/s, Mvox/s) for one patch case."""
    n_dim, patch, offset, stride, volume_shape = CASES[name]
    rng = np.random.default_rng(0)
    image = rng.random(volume_shape, dtype=np.float32)
    labels = (image[0] > 0.5).astype(np.int16)
    geometry = PatchGeometry.from_net(n_dim, patch, offset, stride)
    jobs = []
    for _ in range(n_patches):
        params = sample_warp_params(rng, n_dim)
        coords = source_coordinates(params, geometry.patch)
        start = tuple(int(rng.integers(a, b + 1)) for a, b in start_range(coords, labels.shape))
        jobs.append((params, start))

    def ours() -> int:
        for params, start in jobs:
            coords = source_coordinates(params, geometry.patch)
            start_range(coords, labels.shape)
            warp_patch(image, labels, coords, start, geometry)
        return len(jobs)

    elastic = elastic_settings(True, ELASTIC_SPACING, match.strength, n_dim)
    elastic_jobs = []
    field_rng = np.random.default_rng(0)
    for params, _ in jobs:  # the same warps; each field redrawn from the same generator state
        state = field_rng.bit_generator.state
        field = elastic_displacement(field_rng, geometry.patch, elastic)
        ranges = start_range(source_coordinates(params, geometry.patch, field), labels.shape)
        if ranges is not None:
            start = tuple(int(rng.integers(a, b + 1)) for a, b in ranges)
            elastic_jobs.append((state, params, start))

    def ours_elastic() -> int:
        for state, params, start in elastic_jobs:
            field_rng.bit_generator.state = state  # 1 us; training draws from one generator
            field = elastic_displacement(field_rng, geometry.patch, elastic)
            coords = source_coordinates(params, geometry.patch, field)
            start_range(coords, labels.shape)
            warp_patch(image, labels, coords, start, geometry)
        return len(elastic_jobs)

    points = []
    for params, start in jobs:
        c = source_coordinates(params, geometry.patch)
        u, v = c.positions()
        w = np.broadcast_to((c.w + start[0])[:, None, None], u.shape)
        grid = np.stack([w, u + start[1], v + start[2]]).astype(np.float64)
        points.append((grid, np.ascontiguousarray(grid[(slice(None), *geometry.label_region)])))

    def reference() -> int:
        for grid, label_grid in points:
            ndimage.map_coordinates(image[0], grid, order=1)
            ndimage.map_coordinates(labels, label_grid, order=0)
        return len(points)

    with h5py.File(os.path.join(tmp, "bench.h5"), "w") as h5:
        h5["raw"] = (image[0].transpose(1, 2, 0) * 255).astype(np.uint8)
        h5["lab"] = labels.transpose(1, 2, 0).astype(np.uint8)
    data = ImageData(
        [("bench.h5", "raw")],
        [("bench.h5", "lab")],
        data_path=tmp,
        label_path=tmp,
        n_dim=n_dim,
        patch_shape=patch,
        int_offset=offset,
        stride=stride,
        seed=0,
    )

    def batches(**augment) -> Callable[[], int]:
        def make() -> int:
            for _ in range(n_patches // 8):
                data.getbatch(8, warp_on=True, **augment)
            return n_patches // 8 * 8

        return make

    voxels = np.prod(geometry.patch) / 1e6
    peers = {
        **monai_augment(n_dim, patch, image, labels, n_patches),
        **monai_elastic(n_dim, patch, image, labels, n_patches, match),
        **batchgenerators_elastic(n_dim, patch, image, labels, n_patches),
    }
    if n_dim == 3 and patch[0] < patch[1]:  # an anisotropic stack
        peers.update(in_plane_rows(image, labels, geometry, n_patches))
    rates = best_rates(
        {
            **peers,
            "warp alone (ours)": ours,
            "warp+elastic alone (ours)": ours_elastic,
            "getbatch, warp": batches(flip=False),
            "getbatch, warp+flip+grey": batches(flip=True, grey_augment_channels=[0]),
            "getbatch, warp+elastic": batches(flip=False, elastic=elastic),
            "map_coordinates (same coords)": reference,
        },
        repeats,
    )
    return [(name, what, rate, rate * voxels) for what, rate in rates.items()]


def elastic_ratios(case: str, rates: dict[str, float]) -> str:
    """The elastic goals of one case: vs the warp alone (>= 0.8x), vs MONAI (>= 10x)."""
    elastic = rates["warp+elastic alone (ours)"]
    line = (
        f"{case:16} elastic / warp alone: {elastic / rates['warp alone (ours)']:.2f}x (goal 0.8x), "
        f"getbatch: {rates['getbatch, warp+elastic'] / rates['getbatch, warp']:.2f}x"
    )
    for what, rate in rates.items():
        if "Elastic" in what or what.startswith("batchgenerators"):
            line += f"; vs {what}: {elastic / rate:.1f}x (goal 10x)"
    return line


def augment_ratios(case: str, rates: dict[str, float]) -> str:
    """Ours against MONAI's affine pipelines of the same case (goal >= 4x), '' without MONAI.

    A stack is compared with our full 3D warp (twist and z scale: more than the peer does)
    and with our in-plane warp (the peer's transform).
    """
    pairs = []
    for what, rate in rates.items():
        if what.startswith("MONAI affine+flip+grey"):
            pairs.append(("getbatch, warp+flip+grey", what, rate))
            pairs.append(("in-plane warp+flip+grey (ours)", what, rate))
        elif what.startswith("MONAI affine ("):
            pairs.append(("warp alone (ours)", what, rate))
            pairs.append(("in-plane warp alone (ours)", what, rate))
    parts = [f"{ours} / {peer}: {rates[ours] / rate:.2f}x" for ours, peer, rate in pairs
             if ours in rates]  # fmt: skip
    return f"{case:16} " + "; ".join(parts) + " (goal 4x)" if parts else ""


def peer_source_box(n_dim: int, patch: tuple[int, ...], shape: tuple[int, ...]) -> tuple:
    """The box (z, x, y) a peer library transforms into ``patch``: 32 voxels larger in x and
    y (2 in z), so its rotation and deformation have room, as our warp's source box has."""
    spatial = patch if n_dim == 3 else (1, *patch)
    return tuple(
        slice(0, min(n + (32 if a else 2), m))
        for a, (n, m) in enumerate(zip(spatial, shape, strict=True))
    )


def peer_box(
    n_dim: int, patch: tuple[int, ...], image: np.ndarray, labels: np.ndarray
) -> tuple[torch.Tensor, torch.Tensor]:
    """The image ``(ch, z, x, y)`` and labels ``(1, z, x, y)`` (float32) of the peers' box."""
    box = peer_source_box(n_dim, patch, image.shape[1:])
    src = torch.from_numpy(np.ascontiguousarray(image[(slice(None), *box)]))
    return src, torch.from_numpy(labels[box][None].astype(np.float32))


def repeat_transform(transform: Callable, inputs: dict, n_patches: int) -> Callable[[], int]:
    """A timing function: ``n_patches`` calls of a dictionary transform on the same inputs."""

    def run() -> int:
        for _ in range(n_patches):
            transform(inputs)
        return n_patches

    return run


def peer_inputs(
    n_dim: int, patch: tuple[int, ...], image: np.ndarray, labels: np.ndarray
) -> tuple[torch.Tensor, torch.Tensor, tuple[int, ...]]:
    """Image, labels (channel first, float32) and output size, as a MONAI user passes them.

    2D patches and anisotropic stacks (fewer z slices than x) are 2D images: a stack's slices
    are its channels, so one in-plane 2D transform moves them all; 64³ is a 3D image.
    """
    src, lab = peer_box(n_dim, patch, image, labels)
    if n_dim == 2:
        return src[:, 0], lab[:, 0], patch
    if patch[0] < patch[1]:
        return src[0, : patch[0]], lab[0, : patch[0]], patch[1:]
    return src, lab, patch


def monai_augment(
    n_dim: int, patch: tuple[int, ...], image: np.ndarray, labels: np.ndarray, n_patches: int
) -> dict[str, Callable[[], int]]:
    """MONAI's affine alone, and affine + flips + 90° rotation + grey values (image bilinear,
    labels nearest), as dictionary transforms on the source box; empty without MONAI.

    MONAI runs in its fastest documented mode: metadata tracking off and the affine's base grid
    cached. The labels come out at the image's size (one ``spatial_size`` for all keys), where
    ours cover only the net's label region; the grey transforms match ours (contrast, shift,
    gamma in [0.5, 2]).
    """
    try:
        from monai.data import set_track_meta
        from monai.transforms import (
            Compose,
            RandAdjustContrastd,
            RandAffined,
            RandFlipd,
            RandRotate90d,
            RandScaleIntensityd,
            RandShiftIntensityd,
        )
    except ImportError:
        return {}
    set_track_meta(False)
    src, lab, spatial = peer_inputs(n_dim, patch, image, labels)
    keys = ["image", "labels"]
    affine = RandAffined(keys, spatial_size=spatial, prob=1.0, rotate_range=0.26,
                         shear_range=0.05, scale_range=0.1, mode=("bilinear", "nearest"),
                         padding_mode="zeros", cache_grid=True)  # fmt: skip
    plane = (len(spatial) - 2, len(spatial) - 1)
    pipeline = Compose([
        affine,
        *(RandFlipd(keys, prob=0.5, spatial_axis=a) for a in range(len(spatial))),
        RandRotate90d(keys, prob=0.5, spatial_axes=plane),
        RandScaleIntensityd("image", factors=0.15, prob=1.0),
        RandShiftIntensityd("image", offsets=0.15, prob=1.0),
        RandAdjustContrastd("image", prob=1.0, gamma=(0.5, 2.0)),
    ])  # fmt: skip
    shape = "stacked slices, 2D" if len(spatial) < n_dim else f"{len(spatial)}D"
    inputs = {"image": src, "labels": lab}
    return {
        f"MONAI affine ({shape})": repeat_transform(affine, inputs, n_patches),
        f"MONAI affine+flip+grey ({shape})": repeat_transform(pipeline, inputs, n_patches),
    }


def monai_elastic(
    n_dim: int,
    patch: tuple[int, ...],
    image: np.ndarray,
    labels: np.ndarray,
    n_patches: int,
    match: MatchedElastic,
) -> dict[str, Callable[[], int]]:
    """MONAI's elastic transforms (image bilinear, labels nearest) on the same output patch.

    ``Rand2DElasticd`` (2D patches and stacked slices) at the strength of :func:`matched_elastic`
    and, for 3D patches, ``Rand3DElasticd``, with rotation, scaling and shear like our warp, on
    a source box 32 voxels larger in x and y; empty when MONAI is not installed.
    """
    try:
        from monai.transforms import Rand2DElasticd, Rand3DElasticd
    except ImportError:
        return {}
    keys = ["image", "labels"]
    common = dict(rotate_range=0.26, shear_range=0.05, scale_range=0.1, prob=1.0,
                  mode=("bilinear", "nearest"), padding_mode="zeros")  # fmt: skip
    rows = {}
    if n_dim == 3:
        src, lab = peer_box(3, patch, image, labels)
        transform = Rand3DElasticd(keys, sigma_range=(5, 7), magnitude_range=(50, 150),
                                   spatial_size=patch, **common)  # fmt: skip
        rows["MONAI Rand3DElasticd"] = repeat_transform(
            transform, {"image": src, "labels": lab}, n_patches
        )
    if n_dim == 2 or patch[0] < patch[1]:
        src, lab, spatial = peer_inputs(n_dim, patch, image, labels)
        transform = Rand2DElasticd(keys, spacing=(24, 24),
                                   magnitude_range=(0.0, match.monai_magnitude),
                                   spatial_size=spatial, **common)  # fmt: skip
        name = "MONAI Rand2DElasticd" + (" (stacked slices)" if n_dim == 3 else "")
        rows[name] = repeat_transform(transform, {"image": src, "labels": lab}, n_patches)
    return rows


def batchgenerators_elastic(
    n_dim: int, patch: tuple[int, ...], image: np.ndarray, labels: np.ndarray, n_patches: int
) -> dict[str, Callable[[], int]]:
    """batchgenerators' ``SpatialTransform`` (elastic + rotation + scaling; image linear, labels
    nearest) to the same output patch from a box 32 voxels larger in x and y, batch of 1;
    empty when batchgenerators is not installed."""
    try:
        from batchgenerators.transforms.spatial_transforms import SpatialTransform
    except ImportError:
        return {}
    box = peer_source_box(n_dim, patch, image.shape[1:])
    data = np.ascontiguousarray(image[(slice(None), *box)])[None]
    seg = labels[box][None, None].astype(np.float32)
    if n_dim == 2:
        data, seg = data[:, :, 0], seg[:, :, 0]
    angle = (-0.26, 0.26)
    transform = SpatialTransform(patch, patch_center_dist_from_border=None, do_elastic_deform=True,
                                 alpha=(0.0, 200.0), sigma=(9.0, 13.0), angle_x=angle,
                                 angle_y=angle, angle_z=angle, scale=(0.9, 1.1), order_data=1,
                                 order_seg=0, random_crop=False)  # fmt: skip

    def run() -> int:
        for _ in range(n_patches):
            transform(data=data, seg=seg)
        return n_patches

    return {"batchgenerators SpatialTransform": run}


def peer_versions() -> str:
    """The installed peer libraries and their versions."""
    from importlib.metadata import PackageNotFoundError, version

    found = []
    for name in ("monai", "batchgenerators"):
        try:
            found.append(f"{name} {version(name)}")
        except PackageNotFoundError:
            found.append(f"{name} not installed")
    return ", ".join(found)


def write_big_volume(folder: str, n_z: int) -> float:
    """A uint8 (1024, 1024, n_z) volume and binary labels, written slab by slab; GiB float32."""
    rng = np.random.default_rng(1)
    with h5py.File(os.path.join(folder, "big.h5"), "w") as h5:
        raw = h5.create_dataset("raw", (1024, 1024, n_z), np.uint8, chunks=(1024, 1024, 1))
        lab = h5.create_dataset("lab", (1024, 1024, n_z), np.uint8, chunks=(1024, 1024, 1))
        for z0 in range(0, n_z, 16):
            slab = rng.integers(0, 256, (1024, 1024, min(16, n_z - z0)), dtype=np.uint8)
            raw[:, :, z0 : z0 + slab.shape[2]] = slab
            lab[:, :, z0 : z0 + slab.shape[2]] = slab > 127
    return 1024 * 1024 * n_z * 4 / 2**30


def total_pss(pids: list[int]) -> float:
    """Summed proportional set size (shared pages divided among their processes), in MB."""
    return sum(psutil.Process(p).memory_full_info().pss for p in pids) / MB


def memory(n_z: int, n_batches: int, tmp: str) -> tuple[float, list[tuple]]:
    """Rows (workers, PSS MB, prefetched MB, bound MB) over a >= 1 GB data set."""
    gib = write_big_volume(tmp, n_z)
    data = ImageData(
        [("big.h5", "raw")],
        [("big.h5", "lab")],
        data_path=tmp,
        label_path=tmp,
        n_dim=3,
        patch_shape=(7, 127, 127),
        int_offset=(1, 20, 20),
        stride=(1, 2, 2),
        seed=0,
    )
    os.remove(os.path.join(tmp, "big.h5"))
    kwargs = dict(batch_size=4, warp_on=True, flip=True, grey_augment_channels=[0])
    batch_bytes = sum(a.nbytes for a in data.getbatch(**kwargs)) / MB
    for _ in range(n_batches):
        data.getbatch(**kwargs)
    rows = [(0, total_pss([os.getpid()]), 0.0, None)]
    for n_proc in (2, 4):
        with BackgroundBatches(data, kwargs, n_proc) as background:
            for _ in range(n_batches):
                background.get()
            pss = total_pss([os.getpid(), *background.pids])
        prefetched = n_proc * background.slots_per_worker * batch_bytes
        rows.append((n_proc, pss, prefetched, rows[0][1] + prefetched + 100))
    return gib, rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="few patches, 0.25 GB data")
    parser.add_argument("--cases", nargs="+", choices=list(CASES), default=list(CASES))
    parser.add_argument("--skip-memory", action="store_true", help="no memory measurement")
    args = parser.parse_args()
    torch.set_num_threads(1)
    n_patches, repeats, n_z, n_batches = (16, 1, 64, 5) if args.quick else (48, 5, 272, 40)
    print(
        f"machine: {platform.machine()}, {os.cpu_count()} CPUs, "
        f"{psutil.virtual_memory().total / 2**30:.0f} GiB; Python {platform.python_version()}, "
        f"torch {torch.__version__}, numpy {np.__version__}, scipy {scipy.__version__}"
    )
    print(f"peers: {peer_versions()}")
    match = matched_elastic()
    print(
        f"elastic at matched RMS in-plane displacement {match.rms:.2f} voxels (batchgenerators "
        f"alpha U(0, 200), sigma U(9, 13)): ours elastic_strength {match.strength:.2f} at "
        f"spacing 24, MONAI Rand2DElastic spacing 24, magnitude_range (0, "
        f"{match.monai_magnitude:.2f})"
    )
    tmp = tempfile.mkdtemp(prefix="elektronn_bench_", dir="/tmp")
    try:
        print("\nWarped patch generation, one core")
        print(f"{'patch':16} {'method':42} {'patches/s':>10} {'Mvox/s':>8} {'vs scipy':>8}")
        for name in args.cases:
            rows = warp_speed(name, n_patches, repeats, tmp, match)
            reference = rows[-1][2]  # map_coordinates
            for case, what, rate, mvox in rows:
                ratio = "" if rate == reference else f"{rate / reference:7.1f}x"
                print(f"{case:16} {what:42} {rate:10.1f} {mvox:8.2f} {ratio}")
            rates = {what: rate for _, what, rate, _ in rows}
            print(elastic_ratios(name, rates))
            print(augment_ratios(name, rates))
        if args.skip_memory:
            return
        gib, rows = memory(n_z, n_batches, tmp)
        print(f"\nMemory, trainer + workers (PSS), {gib:.2f} GiB float32 volume, 3D patches, bs 4")
        print(f"{'workers':>7} {'PSS MB':>9} {'prefetched MB':>14} {'target MB':>10}")
        for n_proc, pss, prefetched, bound in rows:
            target = "" if bound is None else f"{bound:10.0f} {'ok' if pss <= bound else 'MISSED'}"
            print(f"{n_proc:7d} {pss:9.0f} {prefetched:14.1f} {target}")
    finally:
        shutil.rmtree(tmp)


if __name__ == "__main__":
    main()
