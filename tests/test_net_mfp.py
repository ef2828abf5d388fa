"""Max Fragment Pooling equals shift-and-stitch, for any pool factor, 2D and 3D."""

import pytest
import torch
from makers import tiny_net

from elektronn.net.mfp import mfp_forward, shift_and_stitch


def make_net(filters, pool, nof=None, act="tanh", pooling_mode="max", mlp=(), input_shape=None):
    """A tiny net in float64 (so that MFP and stitching agree to rounding)."""
    nof = nof or [3] * len(filters)
    kinds = dict(act=act, pooling_mode=pooling_mode, mlp=mlp, input_shape=input_shape)
    return tiny_net(filters, pool, nof, n_ch=2, n_lab=3, **kinds).double().eval()


def check_mfp_equals_stitch(model, k):
    """MFP on the input fov - 1 + k*S per axis: dense shape and equality with stitching."""
    fov, stride = model.arch.fov, model.arch.stride
    size = [f - 1 + n * s for f, n, s in zip(fov, k, stride, strict=True)]
    x = torch.randn(2, 2, *size, dtype=torch.float64)
    with torch.no_grad():
        dense = mfp_forward(model, x)
        stitched = shift_and_stitch(model, x)
    assert dense.shape == (2, 3, *[n - f + 1 for n, f in zip(size, fov, strict=True)])
    torch.testing.assert_close(dense, stitched, rtol=0, atol=1e-5)
    return dense


@pytest.mark.parametrize(
    "filters, pool, k",
    [
        ([(4, 4), (3, 3)], [(2, 2), (2, 2)], (2, 3)),
        ([(3, 3), (2, 2)], [(3, 3), (3, 3)], (1, 2)),
        ([(2, 3), (3, 2), (2, 2)], [(3, 2), (2, 1), (1, 1)], (2, 2)),
    ],
    ids=["2d-pool2", "2d-pool3", "2d-anisotropic"],
)
def test_mfp_equals_shift_and_stitch_2d(filters, pool, k):
    check_mfp_equals_stitch(make_net(filters, pool), k)


@pytest.mark.parametrize(
    "filters, pool, k",
    [
        ([(1, 3, 3), (2, 2, 2)], [(1, 2, 2), (1, 2, 2)], (2, 1, 2)),
        ([(2, 2, 2), (2, 2, 2)], [(3, 3, 3), (1, 1, 1)], (1, 1, 1)),
        ([(1, 4, 4), (1, 3, 3), (3, 3, 3)], [(1, 2, 2), (1, 2, 2), (1, 1, 1)], (2, 1, 1)),
    ],
    ids=["3d-pool122", "3d-pool3", "3d-neuro-like"],
)
def test_mfp_equals_shift_and_stitch_3d(filters, pool, k):
    check_mfp_equals_stitch(make_net(filters, pool), k)


def test_maxabs_and_relu_nets_too():
    model = make_net([(3, 3), (2, 2)], [(2, 2), (3, 3)], act="relu", pooling_mode="maxabs")
    check_mfp_equals_stitch(model, (1, 2))


def test_reference_example_3_geometry():
    """Reference §2.4 Ex. 3 with MFP: input 180 gives the dense output 140."""
    model = make_net(
        [(6, 6), (5, 5), (4, 4), (4, 4)], [(2, 2), (2, 2), (1, 1), (1, 1)], nof=[2] * 4
    )
    assert (model.arch.fov, model.arch.stride) == ((41, 41), (4, 4))
    with torch.no_grad():
        dense = mfp_forward(model, torch.randn(1, 2, 180, 180, dtype=torch.float64))
    assert dense.shape == (1, 3, 140, 140)


def test_the_net_geometry_matches_the_config_calculator():
    arch_module = pytest.importorskip("elektronn.arch")
    model = make_net([(1, 4, 4), (1, 3, 3), (3, 3, 3)], [(1, 2, 2), (1, 2, 2), (1, 1, 1)])
    user_filters = [[4, 4, 1], [3, 3, 1], [3, 3, 3]]
    user_pool = [[2, 2, 1], [2, 2, 1], [1, 1, 1]]
    arch = arch_module.compute_architecture(user_filters, user_pool, None, 3, mfp=[1, 1, 0])
    fov, stride = model.arch.fov, model.arch.stride
    assert fov == tuple(arch.fov) and stride == tuple(arch.stride)


def test_invalid_mfp_input_is_explained():
    model = make_net([(3, 3), (2, 2)], [(3, 3), (1, 1)])
    x = torch.randn(1, 2, 10, 10, dtype=torch.float64)  # conv output 8: (8 + 1) % 3 == 0 is OK
    assert mfp_forward(model, x).shape == (1, 3, 3, 3)  # fov 8
    with pytest.raises(ValueError, match=r"needs \(length \+ 1\) divisible by 3"):
        mfp_forward(model, torch.randn(1, 2, 11, 11, dtype=torch.float64))


def test_nets_with_an_mlp_head_cannot_predict_densely():
    model = make_net([(3, 3)], [(2, 2)], mlp=(4,), input_shape=(8, 8))
    x = torch.randn(1, 2, 8, 8, dtype=torch.float64)
    with pytest.raises(ValueError, match="fully connected"):
        mfp_forward(model, x)
    with pytest.raises(ValueError, match="fully connected"):
        shift_and_stitch(model, x)


def test_stitching_works_for_any_input_size():
    model = make_net([(3, 3), (2, 2)], [(2, 2), (2, 2)])
    fov = model.arch.fov[0]
    x = torch.randn(1, 2, fov + 2, fov + 5, dtype=torch.float64)
    with torch.no_grad():
        dense = shift_and_stitch(model, x)
        reference = torch.stack(
            [
                torch.stack(
                    [model(x[..., i : i + fov, j : j + fov])[0, :, 0, 0] for j in range(6)], -1
                )
                for i in range(3)
            ],
            -2,
        )
    torch.testing.assert_close(dense[0], reference, rtol=0, atol=1e-12)


def test_mfp_forward_is_differentiable():
    model = make_net([(2, 2), (3, 3)], [(2, 2), (2, 2)]).train()
    fov, stride = model.arch.fov[0], model.arch.stride[0]
    x = torch.randn(1, 2, fov - 1 + stride, fov - 1 + stride, dtype=torch.float64)
    mfp_forward(model, x).square().sum().backward()
    grads = [p.grad for p in model.parameters()]
    assert all(g is not None and torch.isfinite(g).all() for g in grads)
