"""Local shape descriptors against small cases computed by hand."""

from __future__ import annotations

import numpy as np

from elektronn.config.targets import n_descriptors
from elektronn.data.lsd import local_shape_descriptors


def test_channel_counts_follow_the_paper():
    assert n_descriptors(3) == 10
    assert n_descriptors(2) == 6


def test_an_object_filling_the_patch_has_a_centred_isotropic_shape_inside():
    ids = np.zeros((41, 41), np.int32)
    lsd = local_shape_descriptors(ids, 2.0)
    centre = lsd[:, 20, 20]
    # mean offset 0 -> 0.5; variance of a full Gaussian window = sigma^2 -> 1; no correlation
    # -> 0.5; the object fills the whole window -> 1 (the window is cut at 3 sigma, which
    # leaves 98.9 % of the variance)
    np.testing.assert_allclose(centre, [0.5, 0.5, 0.989, 0.989, 0.5, 1.0], atol=2e-3)


def test_a_voxel_at_a_straight_border_sees_its_centre_of_mass_inside_its_object():
    ids = np.zeros((41, 41), np.int32)
    ids[:, 21:] = 1  # a vertical border between columns 20 and 21
    lsd = local_shape_descriptors(ids, 2.0)
    left, right = lsd[:, 20, 20], lsd[:, 20, 21]
    # centre of mass of the half window lies away from the border along axis 1 only
    assert left[1] < 0.5 < right[1]
    np.testing.assert_allclose([left[0], right[0]], 0.5, atol=1e-6)
    # the variance across the border shrinks, along it stays sigma^2; about half the window
    assert left[3] < 0.5 and abs(left[2] - 0.989) < 2e-3
    assert 0.45 < left[5] < 0.65
    # the mean offset of a half Gaussian is sigma * sqrt(2 / pi) (discretised): by hand
    weights = np.exp(-(np.arange(0, 7) ** 2) / 8.0)
    weights /= weights.sum()
    mean = -(weights * np.arange(0, 7)).sum()
    np.testing.assert_allclose(left[1], 0.5 + mean / 8.0, atol=0.02)


def test_a_diagonal_object_is_positively_correlated_and_unlabelled_voxels_are_ignored():
    ids = np.full((31, 31), -1, np.int32)
    for i in range(31):
        ids[i, max(0, i - 2) : i + 3] = 3
    lsd = local_shape_descriptors(ids, 3.0)
    assert lsd[4, 15, 15] > 0.9  # r near +1 along the diagonal
    assert (lsd[:, 0, 30] == -1).all()
