"""Labels stay registered to their image through cropping, striding, flips and warps.

The data are piecewise-constant blocks of two grey values and the labels are a known function
of the image, ``label = image > 0.5``; any shift between labels and image by even one voxel
breaks that relation at every block edge.
"""

from __future__ import annotations

import numpy as np
import pytest
from makers import image_data

from elektronn.data import ImageData
from elektronn.data.registration import register, registration
from elektronn.data.volumes import IGNORE


def test_spec_1d_example():
    """label.shape=(5), image.shape=(7), offset 1: nothing cropped, image[i+1] <-> label[i]."""
    image = np.arange(7)[None, None, None, :]  # (ch, z, x, y) with y the 1-D axis
    labels = np.arange(5)[None, None, :] + 100
    cropped, placed = register(image, labels, (0, 0, 1), "test")
    assert cropped.shape == image.shape
    assert list(placed[0, 0]) == [IGNORE, 100, 101, 102, 103, 104, IGNORE]
    assert placed[0, 0, 3] - 100 == 2 and cropped[0, 0, 0, 3] == 3  # the centres


def test_large_image_is_cropped_small_image_cuts_labels():
    reg = registration((20,), (10,), (2,), "test")  # margin 3 on each side
    assert reg.image_slices == (slice(3, 17),) and reg.target_slices == (slice(2, 12),)
    with pytest.warns(UserWarning, match="cannot be trained"):
        cropped, placed = register(
            np.zeros((1, 1, 1, 10)), np.ones((1, 1, 10), np.int16), (0, 0, 2), "test"
        )
    assert cropped.shape[-1] == 10 and list(placed[0, 0]) == [-1, -1, 1, 1, 1, 1, 1, 1, -1, -1]


def block_volume(shape, block, seed=0):
    """uint8 (x, y, z) image of random blocks of grey 40 or 210."""
    rng = np.random.default_rng(seed)
    coarse = rng.random(tuple(-(-n // b) for n, b in zip(shape, block, strict=True))) > 0.5
    fine = np.kron(coarse, np.ones(block, bool))[tuple(slice(n) for n in shape)]
    return np.where(fine, 210, 40).astype(np.uint8)


def make(tmp_path, image, crop, **kwargs):
    """ImageData whose labels are (image > 0.5) on the centre, ``crop`` smaller per side."""
    centre = tuple(slice(c, n - c) for c, n in zip(crop, image.shape, strict=True))
    return image_data(tmp_path, image, (image > 127)[centre].astype(np.uint8), seed=1, **kwargs)


def agreement(data: ImageData, batch, strided=True) -> float:
    """Fraction of known labels equal to (image > 0.5) at the label's position in the patch."""
    images, labels = batch[:2]
    g = data.geometry
    region = g.squeeze(g.label_region)
    steps = g.squeeze(g.stride_slices) if strided else (slice(None),) * len(region)
    at_labels = images[(slice(None), 0, *region)][(slice(None), *steps)]
    known = labels >= 0
    assert known.mean() > 0.5
    return float(((at_labels > 0.5) == labels.astype(bool))[known].mean())


CASES_2D = {
    "n_dim": 2,
    "patch_shape": (25, 25),
    "int_offset": (6, 6),
    "stride": (2, 2),
}
CASES_3D = {
    "n_dim": 3,
    "patch_shape": (7, 25, 25),
    "int_offset": (1, 6, 6),
    "stride": (1, 2, 2),
}


@pytest.mark.parametrize("anisotropic", [True, False])
def test_2d_cut_and_flip_exact(tmp_path, anisotropic):
    image = block_volume((70, 70, 40), (4, 3, 5))
    data = make(tmp_path, image, (8, 8, 0), anisotropic_data=anisotropic, **CASES_2D)
    assert data.cubes[0].image.shape == (1, 40, 66, 66)  # cropped by 2 to labels + 2*offset
    for strided in (True, False):
        batch = data.getbatch(16, strided=strided, flip=True)
        assert agreement(data, batch, strided) == 1.0


def test_3d_cut_and_flip_exact(tmp_path):
    image = block_volume((60, 60, 20), (4, 3, 2))
    data = make(tmp_path, image, (6, 6, 3), **CASES_3D)
    assert data.cubes[0].image.shape == (1, 16, 60, 60)  # z cropped by 2, x/y kept
    for strided in (True, False):
        assert agreement(data, data.getbatch(8, strided=strided, flip=True), strided) == 1.0


def test_3d_isotropic_permutations_exact(tmp_path):
    image = block_volume((40, 40, 40), (4, 3, 5))
    data = make(
        tmp_path,
        image,
        (4, 4, 4),
        n_dim=3,
        patch_shape=(13, 13, 13),
        int_offset=(3, 3, 3),
        stride=(2, 2, 2),
        anisotropic_data=False,
    )
    assert agreement(data, data.getbatch(8, flip=True)) == 1.0


@pytest.mark.parametrize("case", [CASES_2D, CASES_3D], ids=["2d", "3d"])
def test_warps_keep_labels_registered(tmp_path, case):
    image = block_volume((90, 90, 24), (6, 6, 3))
    data = make(tmp_path, image, (8, 8, 2), **case)
    batch = data.getbatch(16, flip=True, warp_on=True)
    assert data.n_successful_warp == 16 and data.n_failed_warp == 0
    # nearest labels vs linearly interpolated images differ only right at block edges
    assert agreement(data, batch) > 0.95
    assert agreement(data, data.getbatch(8, strided=False, warp_on=True), strided=False) > 0.95


def test_downsampled_batches_stay_registered(tmp_path):
    image = block_volume((100, 100, 10), (8, 8, 1))
    data = make(tmp_path, image, (12, 12, 0), downsample_xy=2, **CASES_2D)
    assert agreement(data, data.getbatch(16, flip=True)) == 1.0
    assert agreement(data, data.getbatch(16, flip=True, warp_on=True)) > 0.95
