"""data_in_memory=False: volumes stay on disk, and the patches equal those of the memory mode."""

from __future__ import annotations

import importlib.util
import os
import warnings
from types import SimpleNamespace

import h5py
import numpy as np
import psutil
import pytest
from makers import write_h5

from elektronn.data import BackgroundBatches, DataError, ImageData
from elektronn.data.ondisk import DiskCube, OpenFiles

NETS = {
    "2D": dict(n_dim=2, patch_shape=(20, 20), int_offset=(3, 3), stride=(2, 2)),
    "3D": dict(n_dim=3, patch_shape=(5, 16, 16), int_offset=(1, 3, 3), stride=(1, 2, 2)),
}
pytestmark = pytest.mark.filterwarnings("ignore:.*cannot be trained:UserWarning")
AUGMENTED = dict(flip=True, grey_augment_channels=[0], warp_on=0.7, ret_info=True)


def both_modes(tmp_path, d_files, l_files, **kwargs):
    """The same ImageData (same seed) in memory and on disk."""
    common = dict(data_path=str(tmp_path), label_path=str(tmp_path), seed=3, **kwargs)
    memory = ImageData(d_files, l_files, **common)
    disk = ImageData(d_files, l_files, data_in_memory=False, **common)
    assert all(isinstance(cube, DiskCube) for cube in disk.cubes)
    return memory, disk


def assert_same_batches(memory, disk, n_batches=6, expect_warps=True, **kwargs):
    for _ in range(n_batches):
        for a, b in zip(memory.getbatch(**kwargs), disk.getbatch(**kwargs), strict=True):
            assert a.dtype == b.dtype
            np.testing.assert_array_equal(a, b)
    assert (memory.n_successful_warp, memory.n_failed_warp) == (
        disk.n_successful_warp,
        disk.n_failed_warp,
    )
    assert disk.n_successful_warp > 0 or not (expect_warps and kwargs.get("warp_on"))


def img_img_files(tmp_path, rng):
    """Three cubes: labels smaller than the image (image cropped), z-ranges with labels as
    large as the image (labels cut), and a validation cube; int16 labels with -1 voxels."""
    write_h5(
        tmp_path / "a.h5",
        raw=rng.integers(0, 256, (36, 34, 24), np.uint8),
        lab=rng.integers(-1, 3, (28, 26, 20), np.int16),
    )
    write_h5(
        tmp_path / "b.h5",
        raw=rng.integers(0, 256, (30, 30, 40), np.uint8),
        lab=rng.integers(0, 3, (30, 30, 40), np.uint8),
    )
    d_files = [("a.h5", "raw"), ("b.h5", "raw", (10, 34)), ("b.h5", "raw", (0, 10))]
    l_files = [("a.h5", "lab"), ("b.h5", "lab", (10, 34)), ("b.h5", "lab", (0, 10))]
    return d_files, l_files


@pytest.mark.parametrize("net", NETS)
def test_augmented_patches_equal_the_memory_mode(tmp_path, net):
    d_files, l_files = img_img_files(tmp_path, np.random.default_rng(0))
    memory, disk = both_modes(
        tmp_path, d_files, l_files, valid_cubes=[2], anisotropic_data=False, **NETS[net]
    )
    assert memory.n_lab == disk.n_lab == 3 and memory.n_ch == disk.n_ch == 1
    for cube_m, cube_d in zip(memory.cubes, disk.cubes, strict=True):
        assert cube_m.shape == cube_d.shape and cube_m.size == cube_d.size
    assert_same_batches(memory, disk, batch_size=8, ignore_thresh=0.5, **AUGMENTED)
    assert_same_batches(memory, disk, batch_size=4, strided=False, **AUGMENTED)
    assert_same_batches(memory, disk, n_batches=2, batch_size=4, source="valid")


def test_channels_zchxy_float_regression(tmp_path):
    rng = np.random.default_rng(1)
    image = rng.random((14, 2, 36, 36)).astype(np.float32)  # (z, ch, x, y)
    labels = rng.random((12, 30, 30)).astype(np.float32)
    write_h5(tmp_path / "c.h5", raw=image, lab=labels)
    memory, disk = both_modes(
        tmp_path,
        [("c.h5", "raw")],
        [("c.h5", "lab")],
        zchxy_order=True,
        target="regression",
        **NETS["3D"],
    )
    assert disk.n_ch == 2 and disk.n_lab == 1
    assert_same_batches(memory, disk, batch_size=4, **AUGMENTED)


def test_uint16_multichannel_xyz(tmp_path):
    rng = np.random.default_rng(2)
    write_h5(
        tmp_path / "c.h5",
        raw=rng.integers(0, 65536, (2, 34, 34, 8), np.uint16),
        lab=rng.integers(0, 2, (30, 30, 8), np.uint8),
    )
    memory, disk = both_modes(tmp_path, [("c.h5", "raw")], [("c.h5", "lab")], **NETS["2D"])
    assert_same_batches(memory, disk, batch_size=4, **AUGMENTED)


def test_zchxy_without_channel_axis(tmp_path):
    rng = np.random.default_rng(10)
    write_h5(
        tmp_path / "c.h5",
        raw=rng.integers(0, 256, (8, 34, 36), np.uint8),  # (z, x, y)
        lab=rng.integers(0, 2, (8, 30, 32), np.uint8),
    )
    memory, disk = both_modes(
        tmp_path, [("c.h5", "raw")], [("c.h5", "lab")], zchxy_order=True, **NETS["2D"]
    )
    assert disk.n_ch == 1 and disk.cubes[0].shape == memory.cubes[0].shape == (8, 34, 36)
    assert_same_batches(memory, disk, batch_size=4, **AUGMENTED)


@pytest.mark.parametrize("image_dtype", [np.uint8, np.float32])
def test_downsample_xy_per_box(tmp_path, image_dtype):
    """Factor 3 on x = 95 keeps the centred 93 voxels (from 1), on y = 94 the first 93."""
    rng = np.random.default_rng(3)
    image = rng.random((95, 94, 6)).astype(image_dtype) * 255
    write_h5(tmp_path / "c.h5", raw=image, lab=rng.integers(0, 3, (85, 84, 6), np.uint8))
    memory, disk = both_modes(
        tmp_path, [("c.h5", "raw")], [("c.h5", "lab")], downsample_xy=3, **NETS["2D"]
    )
    assert memory.cubes[0].shape == disk.cubes[0].shape
    assert_same_batches(memory, disk, batch_size=4, **AUGMENTED)


def test_standardise_and_n_lab_detection_stream_over_the_file(tmp_path, monkeypatch):
    monkeypatch.setattr("elektronn.data.volumes._CHUNK_VOXELS", 2000)  # several slabs
    d_files, l_files = img_img_files(tmp_path, np.random.default_rng(4))
    memory, disk = both_modes(tmp_path, d_files, l_files, pre_process="standardise", **NETS["2D"])
    assert (memory.mean, memory.std) == (disk.mean, disk.std) and disk.n_lab == 3
    assert_same_batches(memory, disk, batch_size=4, **AUGMENTED)


@pytest.mark.parametrize(
    ("net", "mode"), [("2D", "crop"), ("2D", "keep"), ("3D", "crop"), ("3D", "mirror")]
)
def test_img_scalar(tmp_path, net, mode):
    rng = np.random.default_rng(5)
    shape, labels = ((26, 24, 10), np.arange(10) % 3) if net == "2D" else ((20, 22, 7), [1])
    write_h5(tmp_path / "c.h5", raw=rng.integers(0, 256, shape, np.uint8), lab=labels)
    memory, disk = both_modes(
        tmp_path,
        [("c.h5", "raw")],
        [("c.h5", "lab")],
        mode="img-scalar",
        border_mode=mode,
        n_dim=NETS[net]["n_dim"],
        patch_shape=NETS[net]["patch_shape"],
    )
    warps = mode == "keep"  # cropped to the patch, there is no room for a warp
    assert_same_batches(memory, disk, batch_size=4, expect_warps=warps, **AUGMENTED)


def test_padding_border_modes_need_memory(tmp_path):
    write_h5(tmp_path / "c.h5", raw=np.zeros((18, 18, 4), np.uint8), lab=np.arange(4) % 2)
    kwargs = dict(data_path=str(tmp_path), label_path=str(tmp_path), mode="img-scalar")
    kwargs.update(n_dim=2, patch_shape=(20, 20), border_mode="0-pad")
    ImageData([("c.h5", "raw")], [("c.h5", "lab")], **kwargs)  # fine in memory
    with pytest.raises(DataError, match="pads the images .* set data_in_memory=True"):
        ImageData([("c.h5", "raw")], [("c.h5", "lab")], data_in_memory=False, **kwargs)


def test_background_workers_open_their_own_files(tmp_path):
    d_files, l_files = img_img_files(tmp_path, np.random.default_rng(6))
    memory, disk = both_modes(tmp_path, d_files, l_files, **NETS["2D"])
    kwargs = dict(batch_size=4, **AUGMENTED)
    disk.getbatch(**kwargs)  # the trainer has the files open when the workers are forked
    with BackgroundBatches(disk, kwargs, n_proc=2, seed=11) as background:
        received = [background.get() for _ in range(6)]
    expected = []
    for seed in np.random.SeedSequence(11).spawn(2):  # the workers' streams
        memory.reseed(seed)
        expected += [memory.getbatch(**kwargs) for _ in range(6)]
    for batch in received:
        assert any(all(np.array_equal(a, b) for a, b in zip(batch, e)) for e in expected)


def test_handles_are_reopened_in_a_new_process(tmp_path, monkeypatch):
    write_h5(tmp_path / "c.h5", raw=np.zeros((4, 4, 4), np.uint8))
    files = OpenFiles()
    inherited = files.dataset(str(tmp_path / "c.h5"), "raw", "image")
    assert files.dataset(str(tmp_path / "c.h5"), "raw", "image") is inherited
    monkeypatch.setattr(os, "getpid", lambda: -1)  # as after fork
    reopened = files.dataset(str(tmp_path / "c.h5"), "raw", "image")
    assert reopened is not inherited and not inherited.id.valid and reopened.id.valid


def test_from_config_reads_the_option(tmp_path):
    d_files, l_files = img_img_files(tmp_path, np.random.default_rng(7))
    config = SimpleNamespace(
        d_files=d_files[:1],
        l_files=l_files[:1],
        data_path=str(tmp_path),
        label_path=str(tmp_path),
        n_dim=2,
        mode="img-img",
        target="nll",
        affinity_offsets=None,
        unlabelled_id=0,
        lsd_sigma=None,
        n_lab=3,
        valid_cubes=[],
        cube_prios=None,
        zchxy_order=False,
        pre_process=None,
        downsample_xy=False,
        anisotropic_data=True,
        upright_x=False,
        border_mode="crop",
        data_in_memory=False,
        arch=SimpleNamespace(input_shape=(20, 20), int_offset=(3, 3), stride=(2, 2)),
        grey_augment_channels=[],
    )
    assert isinstance(ImageData.from_config(config).cubes[0], DiskCube)


def test_same_errors_as_memory_mode(tmp_path):
    write_h5(tmp_path / "c.h5", raw=np.zeros((30, 30, 4), np.uint8), lab=np.full((30, 30, 4), 5))
    kwargs = dict(data_path=str(tmp_path), label_path=str(tmp_path), data_in_memory=False)
    kwargs.update(NETS["2D"])
    with pytest.raises(DataError, match="contain the class 5, but n_lab is 3"):
        ImageData([("c.h5", "raw")], [("c.h5", "lab")], n_lab=3, **kwargs)
    with pytest.raises(DataError, match="does not exist"):
        ImageData([("missing.h5", "raw")], [("c.h5", "lab")], **kwargs)
    with pytest.raises(DataError, match="z-range \\(2, 9\\) does not lie within"):
        ImageData([("c.h5", "raw", (2, 9))], [("c.h5", "lab", (2, 9))], **kwargs)


def test_nan_in_an_image_is_refused_when_read(tmp_path):
    image = np.zeros((30, 30, 4), np.float32)
    image[:, :, 2] = np.nan
    write_h5(tmp_path / "c.h5", raw=image, lab=np.zeros((30, 30, 4), np.uint8))
    data = ImageData(
        [("c.h5", "raw")],
        [("c.h5", "lab")],
        data_path=str(tmp_path),
        label_path=str(tmp_path),
        data_in_memory=False,
        **NETS["2D"],
    )
    with pytest.raises(DataError, match="contains NaN values"):
        for _ in range(20):
            data.getbatch(4)


def test_rss_stays_far_below_the_volume(tmp_path):
    """256 MiB on disk, 768 MiB in memory mode (float32 image, int16 labels): the on-disk mode
    grows by its slab-sized temporaries (the label check at start) and torch's first use only,
    and drawing patches adds nothing."""
    with h5py.File(tmp_path / "big.h5", "w") as h5:
        raw = h5.create_dataset("raw", (512, 512, 512), np.uint8, chunks=(64, 64, 64))
        lab = h5.create_dataset("lab", (512, 512, 512), np.uint8, chunks=(64, 64, 64))
        slab = np.random.default_rng(8).integers(0, 256, (512, 512, 64), np.uint8)
        for z0 in range(0, 512, 64):
            raw[:, :, z0 : z0 + 64] = slab
            lab[:, :, z0 : z0 + 64] = slab > 127
        del slab
    process = psutil.Process()
    before = process.memory_info().rss
    data = ImageData(
        [("big.h5", "raw")],
        [("big.h5", "lab")],
        data_path=str(tmp_path),
        label_path=str(tmp_path),
        n_lab=2,
        data_in_memory=False,
        **NETS["3D"],
    )
    data.getbatch(8, **AUGMENTED)
    started = process.memory_info().rss
    for _ in range(10):
        data.getbatch(8, **AUGMENTED)
    assert started - before < 64 * 2**20
    assert process.memory_info().rss - started < 4 * 2**20


@pytest.mark.skipif(importlib.util.find_spec("zarr") is None, reason="zarr is not installed")
@pytest.mark.parametrize("store", ["c.zarr", "c.n5"])
def test_zarr_and_n5_stores_equal_h5(tmp_path, store):
    import zarr

    if store.endswith(".n5") and not hasattr(zarr, "N5Store"):
        pytest.skip("N5 needs zarr 2")
    rng = np.random.default_rng(9)
    image, labels = rng.integers(0, 256, (30, 30, 8), np.uint8), rng.integers(0, 2, (30, 30, 8))
    write_h5(tmp_path / "c.h5", raw=image, lab=labels)
    path = str(tmp_path / store)
    group = zarr.open_group(zarr.N5Store(path) if store.endswith(".n5") else path, mode="w")
    create = getattr(group, "create_array", None) or group.create_dataset  # zarr 3 / zarr 2
    create("raw", data=image)
    create("lab", data=labels)
    common = dict(data_path=str(tmp_path), label_path=str(tmp_path), seed=3, **NETS["2D"])
    for data in both_modes(tmp_path, [(store, "raw")], [(store, "lab")], **NETS["2D"]):
        from_h5 = ImageData([("c.h5", "raw")], [("c.h5", "lab")], **common)
        assert_same_batches(from_h5, data, batch_size=4, **AUGMENTED)


@pytest.mark.skipif(importlib.util.find_spec("zarr") is not None, reason="zarr is installed")
def test_zarr_store_without_zarr_is_a_clear_error(tmp_path):
    (tmp_path / "c.zarr").mkdir()
    with warnings.catch_warnings(), pytest.raises(DataError, match="package 'zarr' is not"):
        ImageData(
            [("c.zarr", "raw")],
            [("c.zarr", "lab")],
            data_path=str(tmp_path),
            label_path=str(tmp_path),
            data_in_memory=False,
            **NETS["2D"],
        )
