"""Patch sampling: positions, cube weights, orientations, ignore threshold, img-scalar, weights."""

from __future__ import annotations

import numpy as np
import pytest
from makers import coded_volume, image_data, write_h5

from elektronn.data import DataError, ImageData

pytestmark = pytest.mark.filterwarnings("ignore:.*labels within the offset")


def make(tmp_path, image, labels, **kwargs):
    kwargs.setdefault("seed", 0)
    return image_data(tmp_path, image, labels, **kwargs)


def test_batch_layouts(tmp_path):
    image = np.zeros((2, 30, 30, 12), np.uint8)
    labels = np.zeros((30, 30, 12), np.uint8)
    data2 = make(
        tmp_path, image, labels, n_dim=2, patch_shape=(11, 11), int_offset=(2, 2), stride=(2, 2)
    )
    batch = data2.getbatch(3)
    assert batch[0].shape == (3, 2, 11, 11) and batch[0].dtype == np.float32
    assert batch[1].shape == (3, 4, 4) and batch[1].dtype == np.int16
    assert data2.getbatch(2, strided=False)[1].shape == (2, 7, 7)
    data3 = make(
        tmp_path,
        image,
        labels,
        n_dim=3,
        patch_shape=(5, 11, 11),
        int_offset=(1, 2, 2),
        stride=(1, 2, 2),
    )
    batch = data3.getbatch(3, ret_info=True, ret_example_weights=True)
    assert [b.shape for b in batch] == [
        (3, 2, 5, 11, 11),
        (3, 3, 4, 4),
        (3, 1),
        (3, 1),
        (3, 3, 4, 4),
    ]
    assert data3.example_shape == (2, 5, 11, 11)


def test_every_position_reachable(tmp_path):
    image = coded_volume((7, 7, 3))
    data = make(tmp_path, image, np.zeros((7, 7, 3), np.uint8), n_dim=2, patch_shape=(5, 5))
    corners = data.getbatch(300, flip=False)[0][:, 0, 0, 0]
    starts = {(int(v) // 10000, int(v) % 10000 // 100, int(v) % 100) for v in corners}
    assert starts == {(z, x, y) for z in range(3) for x in range(3) for y in range(3)}


def test_3d_positions_reach_the_last_slice(tmp_path):
    image = coded_volume((6, 6, 5))
    data = make(tmp_path, image, np.zeros((6, 6, 5), np.uint8), n_dim=3, patch_shape=(4, 5, 5))
    corners = data.getbatch(200, flip=False)[0][:, 0, 0, 0, 0]
    assert {int(v) // 10000 for v in corners} == {0, 1} and {int(v) % 100 for v in corners} == {
        0,
        1,
    }


def _three_cubes(tmp_path, sizes):
    for k, size in enumerate(sizes):
        write_h5(tmp_path / f"i{k}.h5", raw=np.full((size, 6, 2), k, np.uint8))
        write_h5(tmp_path / f"l{k}.h5", lab=np.zeros((size, 6, 2), np.uint8))
    return [(f"i{k}.h5", "raw") for k in range(3)], [(f"l{k}.h5", "lab") for k in range(3)]


@pytest.mark.parametrize(
    ("prios", "expected"), [(None, [0.1, 0.3, 0.6]), ([2, 1, 1], [0.5, 0.25, 0.25])]
)
def test_cube_sampling_weights(tmp_path, prios, expected):
    d_files, l_files = _three_cubes(tmp_path, (6, 18, 36))
    data = ImageData(
        d_files,
        l_files,
        data_path=str(tmp_path),
        label_path=str(tmp_path),
        n_dim=2,
        patch_shape=(6, 6),
        cube_prios=prios,
        seed=0,
    )
    cubes = np.rint(data.getbatch(4000)[0][:, 0, 0, 0] * 255).astype(int)
    assert np.allclose(np.bincount(cubes, minlength=3) / 4000, expected, atol=0.03)


def _orientation(patch):
    """Which volume axes run along the two patch axes (0 = z, 1 = x, 2 = y)."""
    steps = (patch[1, 0] - patch[0, 0], patch[0, 1] - patch[0, 0])
    return tuple({10000: 0, 100: 1, 1: 2}[abs(int(s))] for s in steps)


@pytest.mark.parametrize(
    ("anisotropic", "expected"),
    [(True, {(1, 2)}), (False, {(1, 2), (2, 0), (0, 1)})],
)
def test_2d_slicing_orientations(tmp_path, anisotropic, expected):
    data = make(
        tmp_path,
        coded_volume((9, 9, 9)),
        np.zeros((9, 9, 9), np.uint8),
        n_dim=2,
        patch_shape=(7, 7),
        anisotropic_data=anisotropic,
    )
    batch = data.getbatch(60, flip=False)[0][:, 0]
    assert {_orientation(p) for p in batch} == expected


def test_isotropic_2d_skips_orientations_that_do_not_fit(tmp_path):
    data = make(
        tmp_path,
        coded_volume((9, 9, 3)),
        np.zeros((9, 9, 3), np.uint8),
        n_dim=2,
        patch_shape=(7, 7),
        anisotropic_data=False,
    )
    assert {_orientation(p) for p in data.getbatch(30, flip=False)[0][:, 0]} == {(1, 2)}


def test_ignore_threshold_redraws_unlabelled_patches(tmp_path):
    labels = np.full((40, 10, 4), -1, np.int16)
    labels[:25] = 1
    data = make(
        tmp_path, np.zeros((40, 10, 4), np.uint8), labels, n_dim=2, patch_shape=(5, 5), n_lab=2
    )
    _, lab = data.getbatch(50, ignore_thresh=0.5)
    assert ((lab < 0).mean(axis=(1, 2)) <= 0.5).all()
    _, lab = data.getbatch(200)
    assert ((lab < 0).mean(axis=(1, 2)) > 0.5).mean() > 0.2


def test_ignore_threshold_terminates_on_unlabelled_data(tmp_path):
    data = make(
        tmp_path,
        np.zeros((8, 8, 2), np.uint8),
        np.full((8, 8, 2), -1, np.int16),
        n_dim=2,
        patch_shape=(5, 5),
        n_lab=2,
    )
    _, lab = data.getbatch(4, ignore_thresh=0.1)
    assert (lab == -1).all()


def test_lazy_cubes_with_absent_classes_are_not_redrawn(tmp_path):
    labels = np.full((40, 10, 4), -1, np.int16)
    labels[:10] = 1
    write_h5(tmp_path / "img.h5", raw=np.zeros((40, 10, 4), np.uint8))
    write_h5(tmp_path / "lab.h5", lab=labels, info=[[0, 1], [1, 0]])
    data = ImageData(
        [("img.h5", "raw")],
        [("lab.h5", "lab")],
        data_path=str(tmp_path),
        label_path=str(tmp_path),
        n_dim=2,
        patch_shape=(5, 5),
        seed=0,
    )
    _, lab, info1, info2 = data.getbatch(100, ignore_thresh=0.5, ret_info=True)
    assert (lab < 0).all(axis=(1, 2)).mean() > 0.5
    assert (info1 == [0, 1]).all() and (info2 == [1, 0]).all()


def test_example_weights(tmp_path):
    image = np.zeros((2, 9, 9, 2), np.float32)
    image[1] = 0.5  # last channel: a previous prediction
    labels = np.zeros((9, 9, 2), np.uint8)
    labels[4:] = 1
    data = make(tmp_path, image, labels, n_dim=2, patch_shape=(9, 9), int_offset=(1, 1))
    _, lab, weights = data.getbatch(4, flip=False, strided=False, ret_example_weights=True)
    # d = label - 0.5: +0.5 -> 1 + 2 * 0.45, -0.5 -> 1 + 2 * 0.4
    assert np.allclose(weights, np.where(lab == 1, 1.9, 1.8))


def test_global_rng_untouched(tmp_path):
    data = make(
        tmp_path,
        np.zeros((30, 30, 5), np.uint8),
        np.zeros((30, 30, 5), np.uint8),
        n_dim=2,
        patch_shape=(11, 11),
    )
    state = np.random.get_state()[1].copy()
    data.getbatch(10, warp_on=True, grey_augment_channels=[0])
    assert (np.random.get_state()[1] == state).all()


def test_seeded_instances_reproduce(tmp_path):
    image = coded_volume((20, 20, 5))
    kwargs = dict(n_dim=2, patch_shape=(7, 7), seed=5)
    a = make(tmp_path, image, np.zeros((20, 20, 5), np.uint8), **kwargs).getbatch(5, warp_on=True)
    b = make(tmp_path, image, np.zeros((20, 20, 5), np.uint8), **kwargs).getbatch(5, warp_on=True)
    assert all((x == y).all() for x, y in zip(a, b, strict=True))


def test_validation_batches_are_not_augmented(tmp_path):
    write_h5(tmp_path / "img.h5", raw=np.full((20, 20, 3), 128, np.uint8))
    write_h5(tmp_path / "lab.h5", lab=np.zeros((20, 20, 3), np.uint8))
    data = ImageData(
        [("img.h5", "raw")] * 2,
        [("lab.h5", "lab")] * 2,
        data_path=str(tmp_path),
        label_path=str(tmp_path),
        n_dim=2,
        patch_shape=(8, 8),
        valid_cubes=[1],
    )
    images = data.getbatch(5, "valid", grey_augment_channels=[0], warp_on=True)[0]
    assert np.allclose(images, 128 / 255) and data.n_successful_warp == 0
    with pytest.raises(DataError, match="valid_cubes is empty"):
        make(
            tmp_path,
            np.zeros((9, 9, 2), np.uint8),
            np.zeros((9, 9, 2), np.uint8),
            n_dim=2,
            patch_shape=(8, 8),
        ).getbatch(1, "valid")


# -- img-scalar ----------------------------------------------------------------------------------


def _slices(tmp_path, size, n_z=6, **kwargs):
    """2D img-scalar data: slice z is constant z/10 with a bright ring border, label = z."""
    image = np.zeros((size, size, n_z), np.float32)
    for z in range(n_z):
        image[..., z] = z / 10
        image[[0, -1], :, z] = image[:, [0, -1], z] = 0.9
    return make(tmp_path, image, np.arange(n_z), n_dim=2, mode="img-scalar", **kwargs)


def test_img_scalar_labels_follow_their_slice(tmp_path):
    data = _slices(tmp_path, 12, patch_shape=(12, 12), border_mode="reject")
    images, labels = data.getbatch(20, flip=True, warp_on=False)
    assert labels.shape == (20,) and data.n_lab == 6
    assert (np.rint(images[:, 0, 5, 5] * 10) == labels).all()


@pytest.mark.parametrize(
    ("mode", "corner"),
    [("0-pad", 0.0), ("c-pad", 0.9), ("mirror", 0.9), ("crop", None), ("keep", None)],
)
def test_img_scalar_border_modes(tmp_path, mode, corner):
    size = 10 if mode in ("0-pad", "c-pad", "mirror") else 14
    data = _slices(tmp_path, size, patch_shape=(12, 12), border_mode=mode)
    image = data.cubes[0].image
    if mode == "keep":
        assert image.shape == (1, 6, 14, 14)
    else:
        assert image.shape == (1, 6, 12, 12)
    if corner is not None:
        assert np.allclose(image[0, 3, 0, 0], corner)
        assert np.allclose(image[0, 3, 5, 5], 0.3)
    if mode == "c-pad":  # the mean of the border ring of slice 3 is 0.9
        assert np.allclose(image[0, 3, :, 0], 0.9)


def test_img_scalar_reject_and_3d(tmp_path):
    with pytest.raises(DataError, match="'reject' refuses"):
        _slices(tmp_path, 10, patch_shape=(12, 12), border_mode="reject")
    write_h5(tmp_path / "img.h5", raw=np.ones((8, 8, 8), np.uint8))
    write_h5(tmp_path / "lab.h5", lab=[3])
    data = ImageData(
        [("img.h5", "raw")],
        [("lab.h5", "lab")],
        data_path=str(tmp_path),
        label_path=str(tmp_path),
        n_dim=3,
        patch_shape=(6, 6, 6),
        mode="img-scalar",
        border_mode="crop",
        n_lab=5,
    )
    images, labels = data.getbatch(2, warp_on=True)
    assert images.shape == (2, 1, 6, 6, 6) and (labels == 3).all()


def test_img_scalar_label_count_must_match_slices(tmp_path):
    write_h5(tmp_path / "img.h5", raw=np.ones((8, 8, 4), np.uint8))
    write_h5(tmp_path / "lab.h5", lab=[0, 1, 2])
    with pytest.raises(DataError, match="3 labels for 4 z-slices"):
        ImageData(
            [("img.h5", "raw")],
            [("lab.h5", "lab")],
            data_path=str(tmp_path),
            label_path=str(tmp_path),
            n_dim=2,
            patch_shape=(8, 8),
            mode="img-scalar",
        )


def test_choose_draws_what_rng_choice_draws():
    """The cube sequence of a seed stays what it was with ``rng.choice(p=...)``."""
    from elektronn.data.sampling import choose, sampling_probabilities

    for weights in ([1.0], [3.0, 7.0], [0.5, 0.0, 2.0, 1.5], [1.0] * 9):
        probabilities = sampling_probabilities(weights)
        ours, numpy = np.random.default_rng(11), np.random.default_rng(11)
        drawn = [choose(ours, probabilities) for _ in range(3000)]
        assert drawn == [int(numpy.choice(len(weights), p=probabilities)) for _ in range(3000)]
        assert ours.random() == numpy.random()  # the streams stay in step
