"""Reading h5 volumes into ImageData: layouts, dtypes, options and readable errors."""

from __future__ import annotations

import warnings
from types import SimpleNamespace

import numpy as np
import pytest
from makers import coded_volume, image_data, write_h5

from elektronn.data import DataError, ImageData, batch_kwargs_from_config
from elektronn.data.volumes import IGNORE


def make(tmp_path, image, labels, **kwargs):
    """ImageData from one image/label pair written to tmp_path."""
    kwargs.setdefault("n_dim", 2)
    kwargs.setdefault("patch_shape", (4, 4))
    return image_data(tmp_path, image, labels, **kwargs)


def test_xyz_image_becomes_ch_z_x_y(tmp_path):
    image = coded_volume((6, 7, 3))
    data = make(tmp_path, image, np.zeros((6, 7, 3), np.uint8))
    volume = data.cubes[0].image
    assert volume.shape == (1, 3, 6, 7) and volume.dtype == np.float32
    assert volume[0, 2, 4, 5] == image[4, 5, 2]
    assert data.cubes[0].labels.shape == (3, 6, 7) and data.cubes[0].labels.dtype == np.int16


def test_channels_and_zchxy_order(tmp_path):
    image = np.stack([coded_volume((6, 6, 3)), -coded_volume((6, 6, 3))])
    data = make(tmp_path, image, np.zeros((6, 6, 3), np.uint8))
    assert data.n_ch == 2 and data.cubes[0].image[1, 2, 4, 5] == -image[0, 4, 5, 2]
    zfirst = image.transpose(3, 0, 1, 2)  # (z, ch, x, y)
    labels = np.arange(3 * 36).reshape(3, 6, 6) % 2
    data = make(tmp_path, zfirst, labels, zchxy_order=True)
    assert data.cubes[0].image[1, 2, 4, 5] == -image[0, 4, 5, 2]
    assert (data.cubes[0].labels == labels).all()


@pytest.mark.parametrize(
    ("dtype", "value", "expected"),
    [
        (np.uint8, 255, 1.0),
        (np.uint16, 65535, 1.0),
        (np.uint16, 255, 255 / 65535),
        (np.int16, 32767, 1.0),
        (np.float64, 0.25, 0.25),
        (np.bool_, True, 1.0),
    ],
)
def test_grey_values_scaled_by_their_dtype(tmp_path, dtype, value, expected):
    image = np.full((5, 5, 2), value, dtype)
    data = make(tmp_path, image, np.zeros((5, 5, 2), np.uint8))
    assert data.cubes[0].image.dtype == np.float32
    assert np.allclose(data.cubes[0].image, expected)


def test_regression_labels_are_float32(tmp_path):
    labels = np.linspace(-1, 1, 50).reshape(5, 5, 2)
    data = make(tmp_path, np.zeros((5, 5, 2), np.uint8), labels, target="regression")
    assert data.cubes[0].labels.dtype == np.float32 and data.n_lab == 1
    assert data.getbatch(2)[1].dtype == np.float32


def test_n_lab_detection_ignores_unlabelled(tmp_path):
    labels = np.full((5, 5, 2), IGNORE)
    labels[0, 0, 0] = 3
    assert make(tmp_path, np.zeros((5, 5, 2), np.uint8), labels).n_lab == 4


def test_path_join_without_trailing_slash(tmp_path):
    folder = tmp_path / "sub"
    folder.mkdir()
    write_h5(folder / "a.h5", raw=np.zeros((5, 5, 2), np.uint8), lab=np.zeros((5, 5, 2), np.uint8))
    data = ImageData(
        [("a.h5", "raw")],
        [("a.h5", "lab")],
        data_path=str(folder),
        label_path=str(folder),
        n_dim=2,
        patch_shape=(4, 4),
    )
    assert data.n_lab == 1


def test_lazy_label_info(tmp_path):
    write_h5(tmp_path / "img.h5", raw=np.zeros((6, 6, 2), np.uint8))
    write_h5(tmp_path / "lab.h5", lab=np.zeros((6, 6, 2), np.uint8), info=[[1, 0, 1], [0, 1, 0]])
    write_h5(tmp_path / "plain.h5", lab=np.zeros((6, 6, 2), np.uint8))
    data = ImageData(
        [("img.h5", "raw")] * 2,
        [("lab.h5", "lab"), ("plain.h5", "lab")],
        data_path=str(tmp_path),
        label_path=str(tmp_path),
        n_dim=2,
        patch_shape=(4, 4),
        n_lab=3,
        cube_prios=[1, 0],
    )
    _, _, info1, info2 = data.getbatch(3, ret_info=True)
    assert info1.shape == (3, 3) and info1.dtype == np.int16
    assert (info1 == [1, 0, 1]).all() and (info2 == [0, 1, 0]).all()
    assert (data.cubes[1].info == [[1, 1, 1], [0, 0, 0]]).all()


def test_standardise(tmp_path):
    image = np.random.default_rng(0).integers(0, 255, (9, 9, 4)).astype(np.uint8)
    data = make(tmp_path, image, np.zeros((9, 9, 4), np.uint8), pre_process="standardise")
    volume = data.cubes[0].image
    assert abs(volume.mean()) < 1e-5 and abs(volume.std() - 1) < 1e-4
    assert np.isclose(data.mean, image.mean() / 255, atol=1e-6)


def test_downsample_xy_keeps_registration(tmp_path):
    blocks = np.random.default_rng(1).random((6, 6, 3)) > 0.5
    image = np.kron(blocks, np.ones((4, 4, 1))).astype(np.uint8) * 200 + 20  # (24, 24, 3)
    labels = (image > 100).astype(np.uint8)[4:-4, 4:-4]  # centred, 8 smaller per axis
    data = make(tmp_path, image, labels, int_offset=(2, 2), patch_shape=(6, 6), downsample_xy=2)
    cube = data.cubes[0]
    assert cube.image.shape == (1, 3, 12, 12)
    assert np.allclose(cube.image[0], image[::2, ::2].transpose(2, 0, 1) / 255)
    known = cube.labels >= 0
    assert known.sum() == 3 * 8 * 8
    assert ((cube.image[0] > 0.5) == cube.labels.astype(bool))[known].all()


def test_valid_cubes_and_prios(tmp_path):
    for k in range(3):
        write_h5(tmp_path / f"i{k}.h5", raw=np.full((5, 5, 2), k, np.uint8))
        write_h5(tmp_path / f"l{k}.h5", lab=np.zeros((5, 5, 2), np.uint8))
    d_files = [(f"i{k}.h5", "raw") for k in range(3)]
    l_files = [(f"l{k}.h5", "lab") for k in range(3)]
    data = ImageData(
        d_files,
        l_files,
        data_path=str(tmp_path),
        label_path=str(tmp_path),
        n_dim=2,
        patch_shape=(4, 4),
        valid_cubes=[1],
        cube_prios=[0, 5, 1],
        seed=0,
    )
    train = np.rint(data.getbatch(50)[0] * 255)
    valid = np.rint(data.getbatch(20, source="valid")[0] * 255)
    assert set(np.unique(train)) == {2} and set(np.unique(valid)) == {1}
    assert data.has_source("valid") and not data.has_source("test")


def test_from_config_and_batch_kwargs(tmp_path):
    write_h5(tmp_path / "img.h5", raw=np.zeros((12, 12, 3), np.uint8))
    write_h5(tmp_path / "lab.h5", lab=np.zeros((8, 8, 3), np.uint8))
    config = SimpleNamespace(
        d_files=[("img.h5", "raw")],
        l_files=[("lab.h5", "lab")],
        data_path=str(tmp_path),
        label_path=str(tmp_path),
        n_dim=2,
        mode="img-img",
        target="nll",
        affinity_offsets=None,
        unlabelled_id=0,
        lsd_sigma=None,
        n_lab=2,
        valid_cubes=[],
        cube_prios=None,
        zchxy_order=False,
        pre_process=None,
        downsample_xy=False,
        anisotropic_data=True,
        upright_x=False,
        border_mode="crop",
        data_in_memory=True,
        arch=SimpleNamespace(input_shape=(9, 9), int_offset=(2, 2), stride=(2, 2)),
        batch_size=3,
        MFP=[False, False],
        flip_data=True,
        grey_augment_channels=[0],
        warp_on=0.5,
        example_ignore_threshold=0.1,
        lazy_labels=True,
        use_example_weights=False,
        elastic_deform=False,
        elastic_spacing=[32, 32, 4],
        elastic_strength=3.0,
    )
    data = ImageData.from_config(config)
    kwargs = batch_kwargs_from_config(config)
    assert kwargs == {
        "source": "train",
        "strided": True,
        "flip": True,
        "grey_augment_channels": [0],
        "warp_on": 0.5,
        "ignore_thresh": 0.1,
        "ret_info": True,
        "ret_example_weights": False,
        "elastic": None,
    }
    batch = data.getbatch(config.batch_size, **kwargs)
    assert [b.shape for b in batch] == [(3, 1, 9, 9), (3, 3, 3), (3, 2), (3, 2)]
    assert data.example_shape == (1, 9, 9)
    config.MFP = [True, False]
    assert batch_kwargs_from_config(config)["strided"] is False


def test_grey_augment_with_standardise_warns(tmp_path):
    write_h5(tmp_path / "img.h5", raw=np.zeros((6, 6, 2), np.uint8))
    write_h5(tmp_path / "lab.h5", lab=np.zeros((6, 6, 2), np.uint8))
    config = SimpleNamespace(
        d_files=[("img.h5", "raw")],
        l_files=[("lab.h5", "lab")],
        data_path=str(tmp_path),
        label_path=str(tmp_path),
        n_dim=2,
        mode="img-img",
        target="nll",
        affinity_offsets=None,
        unlabelled_id=0,
        lsd_sigma=None,
        n_lab=None,
        valid_cubes=[],
        cube_prios=None,
        zchxy_order=False,
        pre_process="standardise",
        downsample_xy=False,
        anisotropic_data=True,
        upright_x=False,
        border_mode="crop",
        data_in_memory=True,
        arch=SimpleNamespace(input_shape=(4, 4), int_offset=(0, 0), stride=(1, 1)),
        grey_augment_channels=[0],
    )
    with pytest.warns(UserWarning, match="grey augmentation"):
        ImageData.from_config(config)


# -- errors: one readable paragraph naming file, key and expectation --------------------------


def _error(tmp_path, image, labels, **kwargs) -> str:
    with pytest.raises(DataError) as info, warnings.catch_warnings():
        warnings.simplefilter("ignore")
        make(tmp_path, image, labels, **kwargs)
    return str(info.value)


def test_error_missing_file(tmp_path):
    with pytest.raises(DataError, match=r"nope\.h5 does not exist.*data_path"):
        ImageData(
            [("nope.h5", "raw")],
            [("nope.h5", "l")],
            data_path=str(tmp_path),
            n_dim=2,
            patch_shape=(4, 4),
        )


def test_error_missing_key_lists_keys(tmp_path):
    write_h5(tmp_path / "img.h5", raw=np.zeros((5, 5, 2), np.uint8), other=np.zeros(2))
    with pytest.raises(DataError, match=r"no dataset 'data'.*'other', 'raw'"):
        ImageData(
            [("img.h5", "data")],
            [("img.h5", "raw")],
            data_path=str(tmp_path),
            label_path=str(tmp_path),
            n_dim=2,
            patch_shape=(4, 4),
        )


def test_error_not_centrally_registrable(tmp_path):
    message = _error(tmp_path, np.zeros((10, 10, 2), np.uint8), np.zeros((7, 10, 2), np.uint8))
    assert "odd number" in message and "img.h5" in message and "lab.h5" in message


def test_error_labels_beyond_n_lab(tmp_path):
    labels = np.zeros((5, 5, 2), np.uint8)
    labels[1, 1, 1] = 2
    message = _error(tmp_path, np.zeros((5, 5, 2), np.uint8), labels, n_lab=2)
    assert "class 2" in message and "n_lab is 2" in message and "'lab'" in message


def test_error_non_integer_labels(tmp_path):
    labels = np.full((5, 5, 2), 0.5)
    assert "not whole numbers" in _error(tmp_path, np.zeros((5, 5, 2), np.uint8), labels)


def test_error_labels_beyond_int16(tmp_path):
    labels = np.full((5, 5, 2), 40000, np.int32)
    assert "beyond int16" in _error(tmp_path, np.zeros((5, 5, 2), np.uint8), labels)


def test_error_wrong_dimensionality(tmp_path):
    message = _error(tmp_path, np.zeros((5, 5), np.uint8), np.zeros((5, 5, 2), np.uint8))
    assert "(x, y, z) or (ch, x, y, z)" in message
    message = _error(tmp_path, np.zeros((5, 5, 2), np.uint8), np.zeros((5, 5), np.uint8))
    assert "img-img labels must be (x, y, z)" in message


def test_error_patch_larger_than_data(tmp_path):
    message = _error(
        tmp_path, np.zeros((5, 5, 2), np.uint8), np.zeros((5, 5, 2), np.uint8), patch_shape=(6, 6)
    )
    assert "smaller than the net's input patch (6, 6)" in message


def test_error_empty_data(tmp_path):
    message = _error(tmp_path, np.zeros((0, 5, 2), np.uint8), np.zeros((5, 5, 2), np.uint8))
    assert "empty" in message


def test_error_nan_in_image(tmp_path):
    image = np.zeros((5, 5, 2), np.float32)
    image[1, 1, 1] = np.nan
    assert "NaN" in _error(tmp_path, image, np.zeros((5, 5, 2), np.uint8))


def test_error_file_lists_of_different_length(tmp_path):
    with pytest.raises(DataError, match="d_files has 2 entries but l_files has 1"):
        ImageData([("a", "b")] * 2, [("a", "b")], n_dim=2, patch_shape=(4, 4))


def test_error_valid_cubes_out_of_range(tmp_path):
    message = _error(
        tmp_path, np.zeros((5, 5, 2), np.uint8), np.zeros((5, 5, 2), np.uint8), valid_cubes=[1]
    )
    assert "valid_cubes [1]" in message and "indices 0..0" in message


def test_error_cube_prios_wrong_length(tmp_path):
    message = _error(
        tmp_path, np.zeros((5, 5, 2), np.uint8), np.zeros((5, 5, 2), np.uint8), cube_prios=[1, 2]
    )
    assert "cube_prios has 2 entries but d_files has 1" in message


def test_error_bad_info(tmp_path):
    write_h5(tmp_path / "img.h5", raw=np.zeros((5, 5, 2), np.uint8))
    write_h5(tmp_path / "lab.h5", lab=np.zeros((5, 5, 2), np.uint8), info=[1, 1])
    with pytest.raises(DataError, match="two length-1 arrays of 0/1"):
        ImageData(
            [("img.h5", "raw")],
            [("lab.h5", "lab")],
            data_path=str(tmp_path),
            label_path=str(tmp_path),
            n_dim=2,
            patch_shape=(4, 4),
        )


# -- real data ---------------------------------------------------------------------------------


@pytest.mark.slow
def test_isbi2012(shared_data, capsys):
    folder = str(shared_data / "isbi2012")
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # labels as large as the image by design: a note only
        data = ImageData(
            [("train-volume.h5", "raw")],
            [("train-labels.h5", "labels")],
            data_path=folder,
            label_path=folder,
            n_dim=2,
            patch_shape=(95, 95),
            int_offset=(23, 23),
            stride=(4, 4),
            seed=0,
        )
    assert capsys.readouterr().out.count("Note: the labels within the net's offset") == 1
    assert data.n_lab == 2 and data.n_ch == 1
    cube = data.cubes[0]
    assert cube.image.shape == (1, 30, 512, 512) and 0 <= cube.image.min() < cube.image.max() <= 1
    labelled = cube.labels[:, 23:-23, 23:-23]
    assert (labelled >= 0).all() and (cube.labels[:, :23] == IGNORE).all()
    assert abs(labelled.mean() - 0.2196) < 0.01
    data_batch, labels = data.getbatch(8, warp_on=True, grey_augment_channels=[0])
    assert data_batch.shape == (8, 1, 95, 95) and labels.shape == (8, 13, 13)
    assert set(np.unique(labels)) <= {-1, 0, 1} and data.n_successful_warp == 8
