"""``elektronn-labels ome-zarr``: an h5 volume as the OME-Zarr image a prediction lies on."""

import h5py
import numpy as np
import pytest
import zarr
from ome_zarr.io import parse_url
from ome_zarr.reader import Reader
from test_predict_cli import save_run, tiny_net

from elektronn.labels import main as labels_main
from elektronn.predict.cli import main as predict_main

pytestmark = pytest.mark.usefixtures("one_thread")


def test_raw_h5_as_ome_zarr_under_its_prediction(tmp_path, capsys):
    xyz = np.random.default_rng(0).integers(0, 256, (40, 36, 3), dtype=np.uint8)
    with h5py.File(tmp_path / "raw.h5", "w") as f:
        f["raw"] = xyz
    raw = tmp_path / "raw.zarr"
    assert (
        labels_main(
            [
                "ome-zarr",
                f"{tmp_path / 'raw.h5'}:raw",
                str(raw),
                "--voxel-size",
                "4,4,50",
                "--unit",
                "nanometer",
                "--pyramid",
                "1",
            ]
        )
        == 0
    )
    node = next(iter(Reader(parse_url(str(raw)))()))
    assert [d.shape for d in node.data] == [(3, 36, 40), (3, 18, 20)]  # (z, y, x)
    assert node.metadata["coordinateTransformations"][0][0]["scale"] == [50.0, 4.0, 4.0]
    assert {a["unit"] for a in node.metadata["axes"]} == {"nanometer"}
    np.testing.assert_array_equal(np.asarray(node.data[0]), xyz.transpose(2, 1, 0))

    save_dir = save_run(tmp_path, tiny_net())
    for source, out in ((raw, "a.zarr"), (f"{tmp_path / 'raw.h5'}:raw", "b.zarr")):
        assert predict_main([str(save_dir), str(source), str(tmp_path / out), "--gpu=false"]) == 0
    a, b = (zarr.open_group(str(tmp_path / out)) for out in ("a.zarr", "b.zarr"))
    assert a["0"].shape == (2, 3, 36, 40)  # the raw image's grid
    np.testing.assert_array_equal(a["0"][...], b["0"][...])
    scale = a.attrs["ome"]["multiscales"][0]["datasets"][0]["coordinateTransformations"][0]
    assert scale["scale"] == [1.0, 50.0, 4.0, 4.0]  # the raw's voxel size, read back


def test_bad_input(tmp_path, capsys):
    with h5py.File(tmp_path / "raw.h5", "w") as f:
        f["raw"] = np.zeros((8, 8, 2), np.uint8)
    spec = f"{tmp_path / 'raw.h5'}:raw"
    assert labels_main(["ome-zarr", spec, str(tmp_path / "r.zarr"), "--voxel-size", "4,4"]) == 2
    assert "--voxel-size '4,4' must be 3 positive numbers" in capsys.readouterr().err
    assert labels_main(["ome-zarr", spec, str(tmp_path / "r.zarr"), "--axes", "zy"]) == 2
    assert "name them in stored order with --axes" in capsys.readouterr().err
    assert labels_main(["ome-zarr", spec, str(tmp_path / "r.zarr")]) == 0
    assert labels_main(["ome-zarr", spec, str(tmp_path / "r.zarr")]) == 2
    assert "already exists" in capsys.readouterr().err
