"""Exact tiled prediction with a valid U-Net: tiles on the pooling lattice equal one pass."""

import numpy as np
import pytest
import torch

from elektronn.arch import compute_unet_architecture
from elektronn.net.model import NetSpec, net_from_spec
from elektronn.predict import PredictionError, predict_dense
from elektronn.predict.dense import default_tile
from elektronn.predict.geometry import net_geometry
from elektronn.predict.tiling import plan_tiles


def make_unet(filters, pool, nof, n_dim, batch_norm=False, upsampling="transposed"):
    """A small U-Net (user-order options), batch norm statistics made non-trivial."""
    a = compute_unet_architecture(
        filters, pool, None, n_dim, batch_norm=batch_norm, upsampling=upsampling
    )
    spec = NetSpec(
        n_ch=1,
        n_lab=2,
        n_dim=n_dim,
        filters=a.filters,
        pool=a.pool,
        nof_filters=tuple(nof),
        pooling_mode=("max",) * len(nof),
        activation_func=("tanh",) * len(nof),
        dropout_rates=(),
        mlp_layers=(),
        rnn_layer_kwargs=None,
        input_shape=None,
        architecture="unet",
        unet_batch_norm=batch_norm,
        unet_upsampling=upsampling,
    )
    torch.manual_seed(0)
    model = net_from_spec(spec)
    for m in model.modules():
        if isinstance(m, torch.nn.modules.batchnorm._BatchNorm):
            m.running_mean.uniform_(-0.2, 0.2)
            m.running_var.uniform_(0.5, 1.5)
    return model.eval()


def single_pass(model, raw):
    with torch.no_grad():
        return torch.softmax(model(torch.from_numpy(raw)[None]), 1)[0].numpy()


@pytest.mark.parametrize(
    "filters, pool, nof, n_dim, shape, tile, bn, up",
    [
        ([3, 3, 3], [2, 2, 1], (2, 3, 4), 2, (92, 108), (60, 44), False, "transposed"),
        ([3, 3, 3], [2, 2, 1], (2, 3, 4), 2, (76, 92), (44, 60), True, "nearest"),
        (
            [[3, 3, 1], [3, 3, 3]],
            [[2, 2, 1], [1, 1, 1]],
            (2, 3),
            3,
            (12, 34, 30),
            (10, 22, 26),
            True,
            "transposed",
        ),
    ],
)
def test_tiles_on_the_lattice_equal_one_pass(filters, pool, nof, n_dim, shape, tile, bn, up):
    model = make_unet(filters, pool, nof, n_dim, bn, up)
    model.arch.layer_shapes_for(shape)  # the volume is a valid input: one pass exists
    raw = np.random.default_rng(0).random((1, *shape), dtype=np.float32)
    tiled = predict_dense(model, raw, tile_shape=tile)
    geometry = net_geometry(model)
    plan = plan_tiles(geometry.axes, tiled.shape[1:], tile)
    assert plan.n_tiles > 1
    for axis, g in zip(plan.axes, geometry.axes, strict=True):
        assert all(s % g.lattice == 0 for s in axis.starts) and g.lattice == g.step
    assert max(g.lattice for g in geometry.axes) > 1
    np.testing.assert_allclose(tiled, single_pass(model, raw), rtol=0, atol=1e-5)


def test_a_volume_of_any_size_is_covered_and_its_lattice_kept():
    model = make_unet([3, 3, 3], [2, 2, 1], (2, 3, 4), 2)
    raw = np.random.default_rng(1).random((1, 97, 83), dtype=np.float32)  # no valid size
    out = predict_dense(model, raw, tile_shape=(60, 44))
    fov = model.arch.fov
    assert out.shape == (2, 97 - fov[0] + 1, 83 - fov[1] + 1)
    # voxels away from the far border equal the pass over the largest valid crop from 0
    crop = tuple(
        max(v for v in valid if v <= n) for valid, n in zip(model.arch.valid_inputs, raw.shape[1:])
    )
    ref = single_pass(model, np.ascontiguousarray(raw[:, : crop[0], : crop[1]]))
    np.testing.assert_allclose(out[:, : ref.shape[1], : ref.shape[2]], ref, rtol=0, atol=1e-5)
    padded = predict_dense(model, raw, tile_shape=(60, 44), pad_raw=True)
    assert padded.shape == (2, 97, 83)


def test_mfp_and_stitching_are_refused_for_a_unet():
    model = make_unet([3, 3], [2, 1], (2, 3), 2)
    raw = np.zeros((1, 40, 40), np.float32)
    with pytest.raises(PredictionError, match="U-Net"):
        predict_dense(model, raw, method="mfp")


def test_the_default_tile_may_reach_past_the_frame_and_stays_exact():
    """One tile rounded up over a frame of no valid size (its extra voxels cropped) instead of
    several: the same probabilities as tiles inside the frame."""
    model = make_unet([3, 3, 3], [2, 2, 1], (2, 3, 4), 2)
    raw = np.random.default_rng(2).random((1, 97, 83), dtype=np.float32)
    geometry = net_geometry(model)
    frame = tuple(g.output_size(n) for g, n in zip(geometry.axes, raw.shape[1:]))
    tile = default_tile(geometry.axes, raw.shape[1:], 10**9)
    assert all(g.output_size(t) >= n for g, t, n in zip(geometry.axes, tile, frame))
    assert plan_tiles(geometry.axes, frame, tile).n_tiles == 1
    np.testing.assert_allclose(
        predict_dense(model, raw), predict_dense(model, raw, tile_shape=(60, 44)), atol=1e-5
    )
