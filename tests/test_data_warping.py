"""The warp itself: parameter ranges, coordinates, and agreement with scipy's reference."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import ndimage

from elektronn.data.geometry import PatchGeometry
from elektronn.data.warping import (
    WarpParams,
    sample_warp_params,
    source_coordinates,
    start_range,
    warp_patch,
)

IDENTITY = WarpParams(0.0, 0.0, 0.0, (1.0, 1.0, 1.0), (0.0, 0.0, 0.0, 0.0))


@pytest.mark.parametrize("n_dim", [2, 3])
def test_parameter_ranges(n_dim):
    rng = np.random.default_rng(0)
    params = [sample_warp_params(rng, n_dim) for _ in range(2000)]
    deg = np.rad2deg
    assert all(abs(deg(p.shear)) <= 3 for p in params)
    assert all(1 <= s <= 1.1 for p in params for s in p.scale[1:])
    assert all(abs(s) <= 0.1 for p in params for s in p.stretch)
    rots = np.array([deg(p.rot) for p in params])
    assert rots.min() < -10 and rots.max() > 10  # both signs, also in 3D
    if n_dim == 2:
        assert all(p.twist == 0 and p.scale[0] == 1 and p.stretch[2:] == (0, 0) for p in params)
        assert np.std([p.scale[1] for p in params]) > 0.02  # x is scaled too, not only y
    else:
        assert all(abs(deg(p.rot)) + abs(deg(p.twist)) <= 15 + 1e-9 for p in params)
        assert np.std([p.scale[0] for p in params]) > 0.02


def test_identity_coordinates():
    coords = source_coordinates(IDENTITY, (3, 4, 5))
    z, x, y = np.meshgrid(np.arange(3), np.arange(4), np.arange(5), indexing="ij")
    u, v = coords.positions()
    assert np.allclose(coords.w, np.arange(3)) and np.allclose(u, x) and np.allclose(v, y)
    grid = coords.grid()  # normalised to [-1, 1] over the box
    assert np.allclose(grid[..., 1], x / 3 * 2 - 1) and np.allclose(grid[..., 0], y / 4 * 2 - 1)
    assert coords.low == (0, 0, 0) and coords.high == (2, 3, 4)
    assert start_range(coords, (3, 4, 5)) == ((0, 0), (0, 0), (0, 0))
    assert start_range(coords, (3, 3, 5)) is None


def test_rotation_by_90_degrees():
    params = WarpParams(np.pi / 2, 0.0, 0.0, (1.0, 1.0, 1.0), (0.0, 0.0, 0.0, 0.0))
    u, v = source_coordinates(params, (1, 5, 5)).positions()
    # u = -y', v = x' around the centre (2, 2): output (x, y) reads source (4 - y, x)
    assert np.allclose(u[0, 0, :], [4, 3, 2, 1, 0], atol=1e-5)
    assert np.allclose(v[0, :, 0], [0, 1, 2, 3, 4], atol=1e-5)


@pytest.mark.parametrize("n_dim", [2, 3])
def test_bounding_box_from_corners_contains_all_positions(n_dim):
    rng = np.random.default_rng(7)
    for _ in range(50):
        coords = source_coordinates(sample_warp_params(rng, n_dim), (7, 40, 30))
        u, v = coords.positions()
        for axis, values in ((0, coords.w), (1, u), (2, v)):
            assert np.floor(values.min()) == coords.low[axis]
            assert np.ceil(values.max()) == coords.high[axis]


@pytest.mark.parametrize("n_dim", [2, 3])
def test_same_result_as_map_coordinates(n_dim):
    rng = np.random.default_rng(3)
    image = rng.random((2, 12, 60, 60), dtype=np.float32)
    labels = rng.integers(0, 5, (12, 60, 60)).astype(np.int16)
    patch, offset = ((5, 31, 31), (1, 4, 4)) if n_dim == 3 else ((1, 31, 31), (0, 4, 4))
    geometry = PatchGeometry(n_dim, patch, offset, (1, 2, 2))
    for _ in range(5):
        coords = source_coordinates(sample_warp_params(rng, n_dim), patch)
        ranges = start_range(coords, image.shape[1:])
        start = tuple(int(rng.integers(a, b + 1)) for a, b in ranges)
        data, lab = warp_patch(image, labels, coords, start, geometry)
        u, v = coords.positions()
        w = np.broadcast_to((coords.w + start[0])[:, None, None], u.shape)
        points = np.stack([w, u + start[1], v + start[2]]).astype(np.float64)
        for c in range(2):
            expected = ndimage.map_coordinates(image[c], points, order=1)
            assert np.abs(data[c] - expected).max() < 1e-4
        region = (slice(None), *geometry.label_region)
        expected = ndimage.map_coordinates(labels, points[region], order=0)
        assert (lab == expected).mean() > 0.999  # ties at exactly .5 may round differently
        assert lab.dtype == np.int16 and lab.shape == expected.shape


def test_only_the_bounding_box_is_read():
    image = np.full((1, 3, 200, 200), np.nan, np.float32)
    image[:, :, 80:130, 80:130] = 1.0
    coords = source_coordinates(
        WarpParams(0.2, 0.01, 0.0, (1.0, 1.05, 1.05), (0.05, 0.0, 0.0, 0.0)), (1, 31, 31)
    )
    start = (1, 90, 90)  # centred on (105, 105)
    assert all(start[a] + coords.low[a] >= 80 and start[a] + coords.high[a] < 130 for a in (1, 2))
    data, _ = warp_patch(
        image, None, coords, start, PatchGeometry(2, (1, 31, 31), (0, 0, 0), (1, 1, 1))
    )
    assert np.allclose(data, 1.0)


def test_regression_labels_nearest():
    labels = np.linspace(-1, 1, 3 * 40 * 40, dtype=np.float32).reshape(3, 40, 40)
    geometry = PatchGeometry(2, (1, 21, 21), (0, 0, 0), (1, 1, 1))
    coords = source_coordinates(sample_warp_params(np.random.default_rng(0), 2), (1, 21, 21))
    start = tuple(a for a, _ in start_range(coords, labels.shape))
    _, lab = warp_patch(labels[None], labels, coords, start, geometry)
    assert lab.dtype == np.float32 and np.isin(lab, labels).all()


def _in_plane_patches(z_scale: float, image, labels, geometry) -> list[tuple]:
    """12 patches warped by random in-plane maps (2D warps; ``z_scale`` along z)."""
    rng = np.random.default_rng(3)
    patches = []
    for _ in range(12):
        flat = sample_warp_params(rng, 2)  # no twist, no z-dependent stretch
        params = WarpParams(flat.rot, flat.shear, 0.0, (z_scale, *flat.scale[1:]), flat.stretch)
        coords = source_coordinates(params, geometry.patch)
        start = tuple(int(rng.integers(a, b + 1)) for a, b in start_range(coords, labels.shape))
        patches.append((coords.in_plane, *warp_patch(image, labels, coords, start, geometry)))
    return patches


@pytest.mark.parametrize("z_scale", [1.0, 1.07])
def test_in_plane_warp_of_a_stack_equals_the_per_slice_path(z_scale, monkeypatch):
    """A warp without twist or z-dependent stretch moves every slice alike, so warp_patch
    resamples the stacked slices as channels of one image with one grid (the fast path); it
    must give exactly the patch and labels of the per-slice path, with and without z scale."""
    from elektronn.data.warping import SourceCoordinates

    rng = np.random.default_rng(7)
    image = rng.random((2, 30, 90, 90), dtype=np.float32)
    labels = rng.integers(0, 5, (30, 90, 90)).astype(np.int16)
    geometry = PatchGeometry.from_net(3, (7, 41, 41), (1, 6, 6), (1, 2, 2))
    fast = _in_plane_patches(z_scale, image, labels, geometry)
    with monkeypatch.context() as patched:
        patched.setattr(SourceCoordinates, "in_plane", property(lambda self: False))
        slow = _in_plane_patches(z_scale, image, labels, geometry)
    for (in_plane, data_fast, lab_fast), (_, data_slow, lab_slow) in zip(fast, slow, strict=True):
        assert in_plane and data_fast.shape == (2, 7, 41, 41)
        np.testing.assert_array_equal(data_fast, data_slow)
        np.testing.assert_array_equal(lab_fast, lab_slow)


def test_a_twisted_warp_is_not_in_plane():
    rng = np.random.default_rng(0)
    assert not source_coordinates(sample_warp_params(rng, 3), (5, 21, 21)).in_plane
    assert source_coordinates(sample_warp_params(rng, 2), (1, 21, 21)).in_plane
