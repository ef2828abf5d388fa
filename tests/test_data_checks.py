"""Input checks of the training data that used to pass silently (issue 17, items 5 and 9)."""

from __future__ import annotations

import re
import warnings

import h5py
import numpy as np
import pytest

from elektronn.data import DataError, ImageData


def write_pairs(folder, image_shape, label_shape, n=3, dtype=np.uint8, high=255):
    """``n`` image/label files; returns the d_files and l_files entries."""
    rng = np.random.default_rng(0)
    for i in range(n):
        with h5py.File(folder / f"img{i}.h5", "w") as f:
            f["raw"] = (rng.random(image_shape) * high).astype(dtype)
        with h5py.File(folder / f"lab{i}.h5", "w") as f:
            f["lab"] = rng.integers(0, 2, label_shape).astype(np.uint8)
    return [(f"img{i}.h5", "raw") for i in range(n)], [(f"lab{i}.h5", "lab") for i in range(n)]


def image_data(folder, d_files, l_files, offset=2, **kwargs):
    return ImageData(d_files, l_files, data_path=str(folder), label_path=str(folder), n_dim=2,
                     patch_shape=(2 * offset + 1,) * 2, int_offset=(offset, offset), seed=0,
                     **kwargs)  # fmt: skip


@pytest.mark.parametrize("data_in_memory", [True, False])
def test_labels_as_large_as_their_images_give_one_note_per_run(tmp_path, capsys, data_in_memory):
    d_files, l_files = write_pairs(tmp_path, (20, 20, 3), (20, 20, 3))
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # the shipped examples' layout: no WARNING
        image_data(tmp_path, d_files, l_files, data_in_memory=data_in_memory)
    notes = [line for line in capsys.readouterr().out.splitlines() if "offset" in line]
    assert notes == [
        "Note: the labels within the net's offset of the image border cannot be trained in 3 "
        "of 3 cubes (36.0 % of their labels are ignored), because those images are not larger "
        "than their labels by 2*offset (expected where labels are as large as their images)."
    ]


def test_images_far_too_small_for_their_labels_warn_once(tmp_path):
    d_files, l_files = write_pairs(tmp_path, (20, 20, 3), (20, 20, 3))
    with pytest.warns(UserWarning) as caught:
        image_data(tmp_path, d_files, l_files, offset=6)
    assert len(caught) == 1, caught
    # the share of each cube that loses most of its labels, not only the total share
    assert "more than half of the labels are lost in " in str(caught[0].message)
    assert re.search(r"img0\.h5.* \(\d\d\.\d %\)", str(caught[0].message))


@pytest.mark.parametrize("data_in_memory", [True, False])
def test_labels_larger_than_their_image_are_refused(tmp_path, data_in_memory):
    d_files, l_files = write_pairs(tmp_path, (20, 20, 3), (24, 24, 3), n=1)
    with pytest.raises(DataError, match=r"img0.h5.*labels \(3, 24, 24\) are larger than their "
                                        r"image \(3, 20, 20\)"):  # fmt: skip
        image_data(tmp_path, d_files, l_files, data_in_memory=data_in_memory)


@pytest.mark.parametrize("data_in_memory", [True, False])
def test_float_images_above_1_next_to_uint8_images_are_refused(tmp_path, data_in_memory):
    d_files, l_files = write_pairs(tmp_path, (20, 20, 3), (16, 16, 3), n=1)
    with h5py.File(tmp_path / "float.h5", "w") as f:
        f["raw"] = np.full((20, 20, 3), 200.0, np.float32)
    d_files.append(("float.h5", "raw"))
    l_files.append(l_files[0])
    with pytest.raises(DataError, match=r"float.h5.*floats with values up to 200, but the image "
                                        r".*img0.h5.* divided by 255"):  # fmt: skip
        image_data(tmp_path, d_files, l_files, data_in_memory=data_in_memory)


def test_float_images_in_0_1_or_alone_are_accepted(tmp_path):
    d_files, l_files = write_pairs(tmp_path, (20, 20, 3), (16, 16, 3), n=2, dtype=np.float32)
    image_data(tmp_path, d_files, l_files)  # floats up to 255 and no integer cube: kept as they are
    with h5py.File(tmp_path / "u8.h5", "w") as f:
        f["raw"] = np.zeros((20, 20, 3), np.uint8)
    write_pairs(tmp_path, (20, 20, 3), (16, 16, 3), n=1, dtype=np.float32, high=1)
    image_data(tmp_path, [("u8.h5", "raw"), d_files[0]], l_files[:1] * 2)
