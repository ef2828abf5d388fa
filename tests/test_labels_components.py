"""``elektronn-labels components``: boundary maps to object IDs, by hand."""

from __future__ import annotations

import h5py
import numpy as np

from elektronn.labels.cli import main
from elektronn.labels.components import interior_components


def test_two_cells_split_by_a_membrane_become_two_touching_objects():
    boundary = np.array([[0, 1, 1, 0, 0], [0, 1, 1, 0, 0], [0, 0, 1, 1, 0]], np.uint8)
    # each membrane pixel goes to the cell it is nearest to
    np.testing.assert_array_equal(
        interior_components(boundary), [[1, 1, 2, 2, 2], [1, 1, 2, 2, 2], [1, 1, 1, 2, 2]]
    )
    # grown by 0 voxels the membrane stays unlabelled
    np.testing.assert_array_equal(interior_components(boundary, 0)[0], [1, 0, 0, 2, 2])


def test_the_command_numbers_objects_on_across_slices(tmp_path, capsys):
    boundary = np.zeros((4, 5, 2), np.uint8)
    boundary[:, 2] = 1  # a membrane along y = 2 in both slices: two cells each
    with h5py.File(tmp_path / "lab.h5", "w") as f:
        f["labels"] = boundary
    code = main(["components", f"{tmp_path / 'lab.h5'}:labels", f"{tmp_path / 'ids.h5'}:ids"])
    assert code == 0 and "4 objects" in capsys.readouterr().out
    with h5py.File(tmp_path / "ids.h5", "r") as f:
        ids = f["ids"][()]
    assert sorted(np.unique(ids[:, :, 0])) == [1, 2] and sorted(np.unique(ids[:, :, 1])) == [3, 4]


def test_a_float_map_is_refused_with_exit_2(tmp_path, capsys):
    with h5py.File(tmp_path / "lab.h5", "w") as f:
        f["labels"] = np.zeros((4, 4, 2), np.float32)
    code = main(["components", f"{tmp_path / 'lab.h5'}:labels", f"{tmp_path / 'ids.h5'}:ids"])
    assert code == 2 and "must be (x, y, z) integers" in capsys.readouterr().err
