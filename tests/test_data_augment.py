"""Augmentation through ImageData.getbatch: flips, grey values, warp switching and counters."""

from __future__ import annotations

import numpy as np
import pytest
from makers import coded_volume, image_data

from elektronn.data import DataError

pytestmark = pytest.mark.filterwarnings("ignore:.*labels within the offset")


def make(tmp_path, image, **kwargs):
    kwargs.setdefault("seed", 0)
    return image_data(tmp_path, image, np.zeros(image.shape[-3:], np.uint8), **kwargs)


def symmetry(patch) -> tuple[int, ...]:
    """Signed volume step along each patch axis, e.g. (100, 1) for the identity of a 2D patch."""
    origin = patch[(0,) * patch.ndim]
    return tuple(
        int(patch[tuple(1 if a == b else 0 for b in range(patch.ndim))] - origin)
        if patch.shape[a] > 1
        else 0
        for a in range(patch.ndim)
    )


def test_2d_flips_cover_the_8_symmetries(tmp_path):
    data = make(tmp_path, coded_volume((12, 12, 2)), n_dim=2, patch_shape=(5, 5))
    found = {symmetry(p[0]) for p in data.getbatch(200, flip=True)[0]}
    assert found == {(a, b) for a in (100, -100) for b in (1, -1)} | {
        (a, b) for a in (1, -1) for b in (100, -100)
    }


def test_upright_x_only_mirrors_y(tmp_path):
    data = make(tmp_path, coded_volume((12, 12, 2)), n_dim=2, patch_shape=(5, 7), upright_x=True)
    assert {symmetry(p[0]) for p in data.getbatch(100, flip=True)[0]} == {(100, 1), (100, -1)}


def test_flip_needs_square_patch(tmp_path):
    data = make(tmp_path, coded_volume((12, 12, 2)), n_dim=2, patch_shape=(5, 7))
    with pytest.raises(DataError, match="square x-y patch"):
        data.getbatch(1, flip=True)
    assert data.getbatch(1, flip=False)[0].shape == (1, 1, 5, 7)


def test_3d_anisotropic_flips(tmp_path):
    data = make(tmp_path, coded_volume((10, 10, 10)), n_dim=3, patch_shape=(3, 5, 5))
    found = {symmetry(p[0]) for p in data.getbatch(400, flip=True)[0]}
    assert len(found) == 16 and all(abs(s[0]) == 10000 for s in found)


def test_3d_isotropic_flips_permute_all_axes(tmp_path):
    data = make(
        tmp_path, coded_volume((8, 8, 8)), n_dim=3, patch_shape=(4, 4, 4), anisotropic_data=False
    )
    assert len({symmetry(p[0]) for p in data.getbatch(1500, flip=True)[0]}) == 48


def test_grey_augmentation(tmp_path):
    image = np.full((2, 10, 10, 6), 0.5, np.float32)
    data = make(tmp_path, image, n_dim=3, patch_shape=(4, 6, 6))
    images = data.getbatch(200, grey_augment_channels=[0])[0]
    per_example = images[:, 0].reshape(200, -1)
    assert (per_example == per_example[:, :1]).all()  # same alpha, c, gamma over the whole cube
    # clip(alpha*0.5 + c, 0, 1) ** gamma with alpha in [.85,1.15], c in [-.15,.15], gamma in [.5,2]
    values = per_example[:, 0]
    assert values.min() >= 0.275**2 - 1e-6 and values.max() <= 0.725**0.5 + 1e-6
    assert values.std() > 0.05 and (images[:, 1] == 0.5).all()
    with pytest.raises(DataError, match="channels 0..1"):
        data.getbatch(1, grey_augment_channels=[2])


def test_warp_fraction_and_counters(tmp_path):
    data = make(tmp_path, np.zeros((40, 40, 3), np.uint8), n_dim=2, patch_shape=(15, 15))
    data.getbatch(400, warp_on=0.25)
    assert abs(data.n_successful_warp - 100) < 30 and data.n_failed_warp == 0
    data.getbatch(10, warp_on=False)
    assert data.n_successful_warp + data.n_failed_warp < 140


def test_failed_warps_fall_back_to_plain_patches(tmp_path):
    image = coded_volume((15, 15, 3))
    data = make(tmp_path, image, n_dim=2, patch_shape=(15, 15))
    images = data.getbatch(5, warp_on=True, flip=False)[0]
    assert data.n_failed_warp == 5 and data.n_successful_warp == 0
    assert all(symmetry(p[0]) == (100, 1) for p in images)


def test_grey_augmentation_follows_its_formula_on_real_values():
    """clip(alpha*x + c, 0, 1) ** gamma per channel, to 1e-6, computed through exp2/log2 with
    a floor below the clip: values clipped to 0 must still come out (nearly) black."""
    from elektronn.data.grey import grey_augment

    image = np.random.default_rng(0).random((3, 4, 32, 32), dtype=np.float32)
    n_black = 0
    for seed in range(20):
        augmented = image.copy()
        grey_augment(np.random.default_rng(seed), augmented, [0, 2])
        draws = np.random.default_rng(seed)
        for channel in (0, 2):
            alpha = 1.0 + 0.3 * (draws.random() - 0.5)
            shift = 0.3 * (draws.random() - 0.5)
            gamma = 2.0 ** (2.0 * draws.random() - 1.0)
            clipped = np.clip(image[channel] * np.float32(alpha) + np.float32(shift), 0, 1)
            expected = np.power(clipped, np.float32(gamma))
            np.testing.assert_allclose(augmented[channel], expected, rtol=0, atol=1e-6)
            assert augmented[channel][clipped == 0].max(initial=0.0) < 1e-9
            n_black += int((clipped == 0).sum())
        assert (augmented[1] == image[1]).all()
    assert n_black > 100  # the clip to 0 was exercised
