"""What a viewer shows: an OME-Zarr prediction read by napari's OME-Zarr reader lies on its
raw data, layer by layer named, whatever the reader does with translations."""

import makers
import numpy as np
import pytest
import torch
import zarr
from test_predict_cli import save_run
from test_predict_omezarr import ome_image

from elektronn.predict.cli import main

napari_ome_zarr = pytest.importorskip("napari_ome_zarr")
layers = pytest.importorskip("napari.layers")

pytestmark = [pytest.mark.usefixtures("one_thread"), pytest.mark.slow]

MEMBRANE_X = 17


def centre_pixel_net():
    """A 2D net (field of view 5) whose class 1 is the centre pixel's brightness: its output
    is bright exactly where the raw data is, so misplaced output shows as a shift."""
    net = makers.tiny_net(((3, 3), (3, 3)), ((1, 1), (1, 1)), (2, 2), act="relu").eval()
    convs = [m for m in net.modules() if isinstance(m, torch.nn.Conv2d)]
    with torch.no_grad():
        for conv in convs:
            conv.weight.zero_()
            conv.bias.zero_()
        for conv in convs[:-1]:
            k = conv.weight.shape[-1] // 2
            conv.weight[0, 0, k, k] = 1.0
        k = convs[-1].weight.shape[-1] // 2
        convs[-1].weight[1, 0, k, k] = 40.0
        convs[-1].bias[1] = -20.0
    return net


def world_x_of_maximum(path, channel=None):
    """x (world coordinates, as napari places it) where layer data peaks along x."""
    ((data, kwargs, _), *_) = napari_ome_zarr.napari_get_reader(str(path))(str(path))
    level0 = np.asarray(data[0] if isinstance(data, list) else data)
    if "channel_axis" in kwargs:
        level0 = np.take(level0, channel, axis=kwargs["channel_axis"])
    placement = {k: kwargs[k] for k in ("scale", "translate", "affine") if k in kwargs}
    image = layers.Image(level0, **placement)
    profile = level0
    while profile.ndim > 1:
        profile = profile.max(axis=0)
    index = [0] * level0.ndim
    index[-1] = int(np.argmax(profile))
    return image.data_to_world(index)[-1], kwargs


def test_napari_shows_the_prediction_on_the_raw_membrane(tmp_path):
    zyx = np.zeros((3, 30, 36), np.uint8)
    zyx[:, :, MEMBRANE_X] = 255
    raw = ome_image(tmp_path / "raw.zarr", zyx, voxel=(50.0, 4.0, 4.0), unit="nanometer")
    out = tmp_path / "prob.zarr"
    assert (
        main([str(save_run(tmp_path, centre_pixel_net())), str(raw), str(out), "--gpu=false"]) == 0
    )
    prob = zarr.open_group(str(out))["0"]
    assert prob.shape == (2, 3, 30, 36)  # the raw grid
    raw_x, _ = world_x_of_maximum(raw)
    prob_x, kwargs = world_x_of_maximum(out, channel=1)
    assert raw_x == MEMBRANE_X * 4.0
    assert prob_x == raw_x, "the prediction's membrane is not on the raw's membrane"
    assert kwargs["name"] == ["prob: class 0", "prob: class 1"]  # the layers' names
