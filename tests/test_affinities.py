"""Affinity targets and ID relabelling against small cases computed by hand."""

from __future__ import annotations

import numpy as np
import pytest

from elektronn.config import ConfigError
from elektronn.config.targets import checked_offsets, nearest_neighbour_offsets
from elektronn.data.affinities import affinities, affinity_target, relabel_consecutive


def test_nearest_neighbours_are_one_step_back_per_axis():
    assert nearest_neighbour_offsets(2) == [(-1, 0), (0, -1)]
    assert nearest_neighbour_offsets(3) == [(-1, 0, 0), (0, -1, 0), (0, 0, -1)]


def test_uint64_ids_are_relabelled_without_overflow():
    big = np.array([[2**63 + 5, 0], [2**63 + 5, 2**40]], np.uint64)
    out = relabel_consecutive(big)
    assert out.dtype == np.int32
    # 2**40 < 2**63 + 5: consecutive in order of value; 0 is unlabelled
    np.testing.assert_array_equal(out, [[1, -1], [1, 0]])


def test_a_configured_unlabelled_id_and_negatives_become_minus_one():
    ids = np.array([7, -3, 9, 7, 4])
    np.testing.assert_array_equal(relabel_consecutive(ids, unlabelled_id=9), [1, -1, -1, 1, 0])


def test_affinities_by_hand_in_2d():
    ids = np.array([[1, 1, 2], [1, -1, 2]])
    aff, known = affinities(ids, [(0, -1), (-1, 0)])
    # offset (0, -1): voxel (i, j) against (i, j - 1)
    np.testing.assert_array_equal(aff[0], [[0, 1, 0], [0, 0, 0]])
    np.testing.assert_array_equal(known[0], [[0, 1, 1], [0, 0, 0]])
    # offset (-1, 0): voxel (1, j) against (0, j); the unlabelled voxel is masked
    np.testing.assert_array_equal(aff[1], [[0, 0, 0], [1, 0, 1]])
    np.testing.assert_array_equal(known[1], [[0, 0, 0], [1, 0, 1]])


def test_long_range_offset_pairs_leaving_the_patch_are_masked():
    ids = np.array([5, 5, 6, 5, 6])
    target = affinity_target(ids, [(3,)])
    # voxel v against v + 3: (0, 3) same, (1, 4) different, the rest outside
    np.testing.assert_array_equal(target[0], [1, 0, -1, -1, -1])


def test_offsets_with_the_wrong_number_of_axes_are_refused():
    with pytest.raises(ConfigError, match="needs 3 entries"):
        checked_offsets([(1, 0)], 3)
    with pytest.raises(ConfigError, match="zero offset"):
        checked_offsets([(0, 0)], 2)
    assert checked_offsets([[1, 0], (0, -4)], 2) == [(1, 0), (0, -4)]
    assert checked_offsets(None, 2) == [(-1, 0), (0, -1)]
