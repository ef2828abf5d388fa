"""Training data in zarr v3 and OME-Zarr stores gives the patches of the same data in h5."""

from __future__ import annotations

import numpy as np
import pytest
import zarr
from makers import write_h5
from ome_zarr.format import FormatV05
from ome_zarr.writer import write_image
from test_data_ondisk import NETS, assert_same_batches

from elektronn.data import DataError, ImageData

pytestmark = pytest.mark.filterwarnings("ignore:.*cannot be trained:UserWarning")


def zyx(xyz: np.ndarray) -> np.ndarray:
    return np.ascontiguousarray(xyz.transpose(2, 1, 0))


def write_zarr_v3(path, **arrays):
    """Arrays stored (z, y, x) and named so in ``dimension_names``."""
    group = zarr.open_group(str(path), mode="w", zarr_format=3)
    for key, xyz in arrays.items():
        group.create_array(key, data=zyx(xyz), dimension_names=["z", "y", "x"])


def write_ome(path, xyz, axes="zyx"):
    """An OME-Zarr image written by ome-zarr-py (levels 0 and 1)."""
    group = zarr.open_group(str(path), mode="w", zarr_format=3)
    write_image(zyx(xyz) if axes == "zyx" else xyz, group, axes=axes, scale_factors=[2],
                fmt=FormatV05())  # fmt: skip


@pytest.fixture
def volume(tmp_path):
    """One volume as h5 (x, y, z), zarr v3 (z, y, x) and OME-Zarr images (image, labels)."""
    rng = np.random.default_rng(0)
    raw = rng.integers(0, 256, (36, 34, 12), np.uint8)
    lab = rng.integers(-1, 3, (30, 28, 10), np.int16)
    write_h5(tmp_path / "ref.h5", raw=raw, lab=lab)
    write_zarr_v3(tmp_path / "v3.zarr", raw=raw, lab=lab)
    write_ome(tmp_path / "raw.ome.zarr", raw)
    write_ome(tmp_path / "lab.ome.zarr", lab)
    zarr.create_array(str(tmp_path / "lab1.zarr"), data=zyx(lab), dimension_names=["z", "y", "x"])
    return tmp_path


STORES = {
    "zarr v3": ([("v3.zarr", "raw")], [("v3.zarr", "lab")]),
    "OME-Zarr": ([("raw.ome.zarr", "")], [("lab.ome.zarr", "s0")]),
    "root array": ([("raw.ome.zarr", "")], [("lab1.zarr", "")]),
}


@pytest.mark.parametrize("in_memory", [False, True])
@pytest.mark.parametrize("store", STORES)
def test_stores_give_the_batches_of_h5(volume, store, in_memory):
    common = dict(data_path=str(volume), label_path=str(volume), seed=3,
                  data_in_memory=in_memory, **NETS["3D"])  # fmt: skip
    h5 = ImageData([("ref.h5", "raw")], [("ref.h5", "lab")], **common)
    other = ImageData(*STORES[store], **common)
    assert other.cubes[0].shape == h5.cubes[0].shape
    assert_same_batches(h5, other, n_batches=3, batch_size=4, flip=True, warp_on=0.5)


def test_unexpected_axes_are_named(tmp_path):
    write_ome(tmp_path / "raw.zarr", np.zeros((2, 6, 20, 20), np.uint8), axes="tzyx")
    write_h5(tmp_path / "lab.h5", lab=np.zeros((20, 20, 6), np.int16))
    with pytest.raises(DataError, match=r"raw\.zarr.*axes \(t, z, y, x\)"):
        ImageData([("raw.zarr", "")], [("lab.h5", "lab")], data_path=str(tmp_path),
                  label_path=str(tmp_path), data_in_memory=False, **NETS["3D"])  # fmt: skip
