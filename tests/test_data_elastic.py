"""Elastic deformation composed with the warp: smooth, nearest labels, one box, off = as before."""

import hashlib

import numpy as np
import pytest
from scipy import ndimage

from elektronn.data.errors import DataError
from elektronn.data.geometry import PatchGeometry
from elektronn.data.image_data import ImageData
from elektronn.data.warping import (
    IDENTITY_WARP,
    _extremes_on_edges,
    elastic_displacement,
    elastic_settings,
    sample_warp_params,
    source_box,
    source_coordinates,
    start_range,
    warp_patch,
)

SETTINGS = elastic_settings(True, [12, 12, 3], 4.0, 3)


def test_the_field_is_smooth_and_as_strong_as_asked():
    rng = np.random.default_rng(0)
    field = elastic_displacement(rng, (9, 64, 64), SETTINGS).dense()
    assert field.shape == (2, 9, 64, 64) and field.dtype == np.float32
    assert 1.0 < field.std() < 4.0  # the spline averages the control points' N(0, 4^2)
    step_xy = np.abs(np.diff(field, axis=2)).max()
    assert step_xy < 4.0 * 6 / 12  # at most a few strengths per spacing between neighbours
    curvature = np.abs(np.diff(field, 2, axis=3)).max()
    assert curvature < step_xy / 2  # the slope changes slowly (noise: curvature ~ 2 slopes)
    flat = elastic_displacement(rng, (9, 64, 64), elastic_settings(True, 12, 0.0, 3)).dense()
    assert not flat.any()


#: Elastic settings whose boxes come from the patch's edges (gentle: the positions stay
#: monotonic) and from all positions (folding: the field may fold a row back).
FIELDS = {"gentle": ([24, 24, 2], 1.5, True), "folding": ([10, 10, 2], 3.0, False)}


@pytest.mark.parametrize("kind", list(FIELDS))
@pytest.mark.parametrize("n_dim", [2, 3])
def test_composed_warp_matches_map_coordinates_with_nearest_labels(n_dim, kind):
    rng = np.random.default_rng(3)
    image = rng.random((2, 12, 80, 80), dtype=np.float32)
    labels = rng.integers(0, 5, (12, 80, 80)).astype(np.int16)
    patch, offset = ((5, 31, 31), (1, 4, 4)) if n_dim == 3 else ((1, 31, 31), (0, 4, 4))
    geometry = PatchGeometry(n_dim, patch, offset, (1, 2, 2))
    spacing, strength, on_edges = FIELDS[kind]
    settings = elastic_settings(True, spacing, strength, n_dim)
    for params in (sample_warp_params(rng, n_dim), IDENTITY_WARP):
        field = elastic_displacement(rng, patch, settings)
        coords = source_coordinates(params, patch, field)
        terms = (coords.u_terms, coords.v_terms)
        assert _extremes_on_edges(coords.x, coords.y, terms, field.steps) == on_edges
        start = tuple(int(rng.integers(a, b + 1)) for a, b in start_range(coords, image.shape[1:]))
        box = source_box(coords, start, image.shape[1:])
        origin = tuple(s.start for s in box)
        data, lab = warp_patch(image[(slice(None), *box)], labels[box], coords, start,
                               geometry, origin)  # fmt: skip
        u, v = coords.positions()
        warp_u, warp_v = source_coordinates(params, patch).positions()
        shift = field.dense()
        assert np.allclose(u, warp_u + shift[0], atol=1e-4)  # the warp plus the displacement
        assert np.allclose(v, warp_v + shift[1], atol=1e-4)
        for axis, values in ((1, u), (2, v)):  # the exact box around them
            assert coords.low[axis] == np.floor(values.min())
            assert coords.high[axis] == np.ceil(values.max())
        w = np.broadcast_to((coords.w + start[0])[:, None, None], u.shape)
        points = np.stack([w, u + start[1], v + start[2]]).astype(np.float64)
        for c in range(2):
            expected = ndimage.map_coordinates(image[c], points, order=1)
            assert np.abs(data[c] - expected).max() < 1e-4
        region = (slice(None), *geometry.label_region)
        expected = ndimage.map_coordinates(labels, points[region], order=0)
        assert (lab == expected).mean() > 0.999 and lab.dtype == np.int16


@pytest.mark.parametrize("n_dim", [2, 3])
def test_the_box_is_exact_for_many_warps_and_fields(n_dim):
    """Whichever way the box is found (edges or all positions), it is the positions' own."""
    rng = np.random.default_rng(11)
    patch = (6, 47, 40) if n_dim == 3 else (1, 64, 57)
    paths = set()
    for strength in (0.5, 2.0, 4.0, 8.0):
        settings = elastic_settings(True, [16, 12, 3], strength, n_dim)
        for _ in range(10):
            params, field = (
                sample_warp_params(rng, n_dim),
                elastic_displacement(rng, patch, settings),
            )
            coords = source_coordinates(params, patch, field)
            u, v = coords.positions()
            assert coords.low[1:] == (np.floor(u.min()), np.floor(v.min()))
            assert coords.high[1:] == (np.ceil(u.max()), np.ceil(v.max()))
            grid = coords.grid()  # normalised to that box
            for entry, values, axis in ((0, v, 2), (1, u, 1)):
                expected = (values - coords.low[axis]) * 2 / (
                    coords.high[axis] - coords.low[axis]
                ) - 1
                assert np.abs(grid[..., entry] - expected).max() < 1e-5
            terms = (coords.u_terms, coords.v_terms)
            paths.add(_extremes_on_edges(coords.x, coords.y, terms, field.steps))
    assert paths == {True, False}


def test_elastic_changes_patches_only_when_on(tmp_path):
    from tiny import write_cubes

    folder = write_cubes(tmp_path / "data")

    def batch(**kwargs):
        data = ImageData([("raw_0.h5", "raw")], [("lab_0.h5", "lab")], data_path=str(folder),
                         label_path=str(folder), n_dim=2, patch_shape=(25, 25), seed=3,
                         int_offset=(4, 4), stride=(2, 2), mode="img-img", n_lab=2)  # fmt: skip
        return data.getbatch(4, **kwargs)

    off = batch(warp_on=0.7)
    assert all(np.array_equal(a, b) for a, b in zip(off, batch(warp_on=0.7, elastic=None)))
    on = batch(warp_on=0.7, elastic=elastic_settings(True, 8, 3.0, 2))
    assert not np.array_equal(off[0], on[0])
    assert np.isin(on[1], off[1]).all()  # labels keep their classes (nearest neighbour)


GOLDEN = "6477c997418fe0de6ab4b71baeab06e37cf1c8898ebb954483f06cc77e654df6"


def test_batches_without_elastic_are_those_before_it_existed(tmp_path):
    """The hash of warped 2D and 3D batches computed with the code before elastic existed."""
    from tiny import write_cubes

    folder = write_cubes(tmp_path / "data")

    def data(n_dim, patch, offset, stride):
        return ImageData([("raw_0.h5", "raw")], [("lab_0.h5", "lab")], data_path=str(folder),
                         label_path=str(folder), n_dim=n_dim, patch_shape=patch,
                         int_offset=offset, stride=stride, mode="img-img", n_lab=2, seed=3,
                         anisotropic_data=n_dim == 2)  # fmt: skip

    digest = hashlib.sha256()
    with pytest.warns(UserWarning):
        sources = (data(2, (25, 25), (4, 4), (2, 2)), data(3, (3, 21, 21), (1, 3, 3), (1, 1, 1)))
    for source in sources:
        x, y = source.getbatch(4, warp_on=0.7)
        digest.update(x.tobytes())
        digest.update(y.tobytes())
    assert digest.hexdigest() == GOLDEN


def test_bad_elastic_options_name_the_option():
    assert elastic_settings(False, 8, 3.0, 2) is None
    assert elastic_settings(0.5, [8, 6, 2], [3, 1], 3).spacing == (2.0, 8.0, 6.0)
    with pytest.raises(DataError, match="elastic_spacing"):
        elastic_settings(True, [8, 0, 2], 3.0, 3)
    assert elastic_settings(True, [8, 6], 3.0, 2).spacing == (1.0, 8.0, 6.0)
    with pytest.raises(DataError, match=r"elastic_spacing.*\(x, y, z\)"):
        elastic_settings(True, [8, 6], 3.0, 3)
    with pytest.raises(DataError, match="elastic_strength"):
        elastic_settings(True, 8, [1, 2, 3], 2)
