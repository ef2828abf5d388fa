"""OME-Zarr and zarr v3 in, OME-Zarr out, checked with the readers napari and others use."""

import numpy as np
import pytest
import zarr
from ome_zarr.format import FormatV05
from ome_zarr.io import parse_url
from ome_zarr.reader import Reader
from ome_zarr.writer import write_image
from ome_zarr_models import open_ome_zarr
from test_predict_blockwise import error_of, level0
from test_predict_cli import save_run, tiny_net

from elektronn.predict import predict_dense
from elektronn.predict.cli import main

pytestmark = pytest.mark.usefixtures("one_thread")


def ome_image(path, zyx, axes="zyx", voxel=(50.0, 4.0, 4.0), unit=None):
    """An OME-Zarr image written by ome-zarr-py: levels 0 and 1 (y, x halved)."""
    group = zarr.open_group(str(path), mode="w", zarr_format=3)
    write_image(
        zyx, group, axes=axes, scale_factors=[2], fmt=FormatV05(), scale=dict(zip(axes, voxel))
    )
    if unit:  # ome-zarr-py 0.18 drops the units it is given; set them as NGFF says
        ome = dict(group.attrs["ome"])
        for axis in ome["multiscales"][0]["axes"]:
            axis["unit"] = unit
        group.attrs["ome"] = ome
    return path


def test_ome_zarr_in_and_out(tmp_path):
    model = tiny_net(2)
    xyz = np.random.default_rng(0).integers(0, 256, (40, 36, 3), dtype=np.uint8)
    source = ome_image(
        tmp_path / "raw.zarr", np.ascontiguousarray(xyz.transpose(2, 1, 0)), unit="nanometer"
    )
    out = tmp_path / "prob.zarr"
    args = [str(save_run(tmp_path, model)), str(source), str(out), "--gpu=false"]
    assert main([*args, "--block", "16,16,1", "--pyramid", "1"]) == 0
    expected = predict_dense(model, xyz[None], axes="cxyz")
    np.testing.assert_allclose(level0(out), expected, atol=1e-6, rtol=0)

    image = open_ome_zarr(zarr.open_group(str(out), mode="r"))  # validates NGFF 0.5
    multiscale = image.attributes.ome.multiscales[0]
    assert [(a.name, a.type, a.unit) for a in multiscale.axes] == [
        ("c", "channel", None),
        ("z", "space", "nanometer"),
        ("y", "space", "nanometer"),
        ("x", "space", "nanometer"),
    ]
    node = next(iter(Reader(parse_url(str(out)))()))
    assert [d.shape for d in node.data] == [(2, 3, 36, 40), (2, 3, 18, 20)]  # the input's grid
    scale, shift = node.metadata["coordinateTransformations"][0]
    assert scale["scale"] == [1.0, 50.0, 4.0, 4.0]
    assert shift["translation"] == [0.0, 0.0, 0.0, 0.0]  # the input's origin
    assert node.metadata["channel_names"] == ["class 0", "class 1"]  # napari's layer names
    border = level0(out, valid=False)
    assert not border[:, :4].any() and not border[:, -4:].any()  # outside the net's view: 0
    assert node.metadata["coordinateTransformations"][1][0]["scale"] == [1.0, 50.0, 8.0, 8.0]


def test_ome_zarr_level_and_voxel_size(tmp_path):
    model = tiny_net(2)
    xyz = np.random.default_rng(1).integers(0, 256, (48, 40, 2), dtype=np.uint8)
    source = ome_image(tmp_path / "raw.zarr", np.ascontiguousarray(xyz.transpose(2, 1, 0)))
    out = tmp_path / "prob.zarr"
    args = [
        str(save_run(tmp_path, model)),
        str(source),
        str(out),
        "--gpu=false",
        "--level",
        "1",
        "--voxel-size",
        "5,5,30",
    ]
    assert main(args) == 0
    level1 = np.asarray(zarr.open_group(str(source))["s1"][...]).transpose(2, 1, 0)
    np.testing.assert_allclose(
        level0(out), predict_dense(model, level1[None], axes="cxyz"), atol=1e-6, rtol=0
    )
    node = next(iter(Reader(parse_url(str(out)))()))
    assert node.metadata["coordinateTransformations"][0][0]["scale"] == [1.0, 30.0, 5.0, 5.0]


def test_zarr_v3_array_in_its_dimension_order(tmp_path):
    model = tiny_net(2)
    xyz = np.random.default_rng(2).integers(0, 256, (33, 30, 2), dtype=np.uint8)
    store = zarr.open_group(str(tmp_path / "raw.zarr"), mode="w", zarr_format=3)
    store.create_array(
        "em", data=np.ascontiguousarray(xyz.transpose(2, 0, 1)), dimension_names=["z", "x", "y"]
    )
    out = tmp_path / "prob.h5"
    assert (
        main(
            [str(save_run(tmp_path, model)), f"{tmp_path / 'raw.zarr'}:em", str(out), "--gpu=false"]
        )
        == 0
    )
    import h5py

    with h5py.File(out) as f:
        np.testing.assert_allclose(
            f["prob"][()], predict_dense(model, xyz[None], axes="cxyz"), atol=1e-6, rtol=0
        )


def test_ome_zarr_with_unexpected_axes(tmp_path, capsys):
    source = ome_image(
        tmp_path / "raw.zarr",
        np.zeros((2, 3, 30, 30), np.uint8),
        axes="tzyx",
        voxel=(1.0, 50.0, 4.0, 4.0),
    )
    args = [str(save_run(tmp_path, tiny_net(2))), str(source), str(tmp_path / "p.zarr")]
    err = error_of(args, capsys)
    assert "has axes (t, z, y, x)" in err and "no t or others" in err
