"""The valid U-Net: the calculator's classic numbers, and the torch module agreeing with it."""

import numpy as np
import pytest
import torch

from elektronn.arch import (
    ArchitectureError,
    UNetLevel,
    compute_unet_architecture,
    unet_param_counts,
)
from elektronn.config import ConfigError, load_config
from elektronn.net.model import NetSpec, net_from_spec
from elektronn.net.paramfile import (
    ParamFileError,
    build_model_from_params,
    init_from_param_file,
    load_params,
    save_params,
)
from elektronn.net.unet import UNet


def unet(arch, nof, n_ch=1, n_lab=2, act="relu", **spec_options) -> UNet:
    """The torch U-Net of a calculator result (internal order), in float64."""
    spec = NetSpec(
        n_ch=n_ch, n_lab=n_lab, n_dim=arch.n_dim, filters=arch.filters, pool=arch.pool,
        nof_filters=tuple(nof), pooling_mode=("max",) * len(nof),
        activation_func=(act,) * len(nof), dropout_rates=(), mlp_layers=(),
        rnn_layer_kwargs=None, input_shape=arch.input_shape, architecture="unet",
        unet_n_convs=arch.n_convs, unet_upsampling=arch.upsampling,
        unet_batch_norm=arch.batch_norm, **spec_options,
    )  # fmt: skip
    torch.manual_seed(0)
    return net_from_spec(spec).double().eval()


def test_classic_2d_unet_numbers():
    a = compute_unet_architecture([3] * 5, [2, 2, 2, 2, 1], 572, 2, force_center=True)
    assert a.input_shape == (572, 572) and a.output_shape == (388, 388)
    assert a.offset == (92.0, 92.0) and a.int_offset == (92, 92) and a.fov == (185, 185)
    assert a.stride == (1, 1) and a.step == (16, 16)
    assert a.valid_inputs[0][:3] == (188, 204, 220)
    assert [(level.encoder[0], level.decoder[0]) for level in a.levels] == [
        (568, 388),
        (280, 196),
        (136, 100),
        (64, 52),
        (28, 28),
    ]
    assert a.levels[1] == UNetLevel(
        filter=(3, 3), pool=(2, 2), encoder=(280, 280), decoder=(196, 196)
    )
    assert a.filters == ((3, 3),) * 5 and a.pool == ((2, 2),) * 4 + ((1, 1),)
    assert a.layer_shapes_for((188, 572))[0] == UNetLevel((3, 3), (2, 2), (184, 568), (4, 388))
    assert a.output_shape_for((188, 572)) == (4, 388)
    lines = a.summary_lines(1, [64, 128, 256, 512, 1024], [], 2, 1)
    assert any("FOV 185x185, offset (92.0, 92.0)" in line for line in lines)
    # the classic net's parameter count, also as the torch module counts it
    counts = unet_param_counts(a, 1, [64, 128, 256, 512, 1024], 2)
    assert sum(c for _, c in counts) == 31_030_658


def test_desired_input_rounds_down_to_a_valid_size():
    a = compute_unet_architecture([3] * 5, [2, 2, 2, 2, 1], 580, 2)
    assert a.input_shape == (572, 572)
    assert any("580 changed to 572" in m for m in a.messages)


@pytest.mark.parametrize("seed", range(6))
def test_the_module_gives_the_calculators_shapes_and_parameters(seed):
    rng = np.random.default_rng(seed)
    n_dim, n_levels = int(rng.integers(2, 4)), int(rng.integers(1, 4))
    filters = [[int(v) for v in rng.integers(1, 4, 3)][:n_dim] for _ in range(n_levels)]
    pool = [[int(v) for v in rng.integers(1, 3, 3)][:n_dim] for _ in range(n_levels - 1)]
    pool.append([1] * n_dim)
    n_convs = int(rng.integers(1, 3))
    up = ("transposed", "nearest")[seed % 2]
    a = compute_unet_architecture(
        filters, pool, None, n_dim, n_convs=n_convs, upsampling=up, batch_norm=seed % 3 == 0
    )
    nof = [int(v) for v in rng.integers(1, 4, n_levels)]
    model = unet(a, nof, n_ch=2, n_lab=3)
    counts = unet_param_counts(a, 2, nof, 3)
    assert sum(p.numel() for p in model.parameters()) == sum(c for _, c in counts)
    for k in range(3):  # the three smallest valid inputs per axis
        shape = tuple(valid[k] for valid in a.valid_inputs)
        if np.prod(shape) > 40**3:
            continue
        with torch.no_grad():
            out = model(torch.randn(1, 2, *shape, dtype=torch.float64))
        assert out.shape == (1, 3, *a.output_shape_for(shape))
        assert all(i - o == f - 1 for i, o, f in zip(shape, out.shape[2:], a.fov, strict=True))


def test_an_invalid_input_names_the_level_and_valid_sizes():
    a = compute_unet_architecture([3] * 5, [2, 2, 2, 2, 1], 572, 2)
    model = unet(a, [1, 1, 1, 1, 1])
    with pytest.raises(ArchitectureError, match=r"level 1 \(encoder\).*near it: \[188, 204, 220\]"):
        model(torch.zeros(1, 1, 190, 188, dtype=torch.float64))


def test_bad_unet_options_are_explained():
    with pytest.raises(ArchitectureError, match="last U-Net level"):
        compute_unet_architecture([3, 3], [2, 2], 100, 2)
    with pytest.raises(ArchitectureError, match="No input size below.*input 100, level 0 fails"):
        compute_unet_architecture([3, 2], [3, 1], 100, 2, n_convs=1)  # crops always 3
    with pytest.raises(ArchitectureError, match="unet_upsampling"):
        compute_unet_architecture([3, 3], [2, 1], 100, 2, upsampling="bilinear")


def write_config(tmp_path, extra: str):
    path = tmp_path / "unet.py"
    path.write_text(
        "save_path = '/tmp'\nsave_name = 'u'\nn_dim = 2\ndesired_input = 28\nfilters = [3, 3]\n"
        "pool = [2, 1]\nnof_filters = [4, 8]\nn_lab = 2\narchitecture = 'unet'\n" + extra
    )
    return path


def test_the_config_builds_the_unet_architecture(tmp_path):
    config = load_config(write_config(tmp_path, ""))
    assert config.arch.input_shape == (28, 28) and config.arch.output_shape == (12, 12)
    with pytest.raises(ConfigError, match="MFP"):
        load_config(write_config(tmp_path, "MFP = [True, True]\n"))
    with pytest.raises(ConfigError, match="MLP_layers"):
        load_config(write_config(tmp_path, "MLP_layers = [10]\n"))
    with pytest.raises(ConfigError, match="pooling_mode"):
        load_config(write_config(tmp_path, "pooling_mode = 'maxabs'\n"))
    with pytest.raises(ConfigError, match="'architecture' is 'resnet'"):
        load_config(write_config(tmp_path, "architecture = 'resnet'\n"))


def test_parameter_files_rebuild_the_unet_and_refuse_the_other_architecture(tmp_path):
    a = compute_unet_architecture([3, 3], [2, 1], 28, 2)
    model = unet(a, [4, 8]).float()
    path = tmp_path / "u.param"
    save_params(path, model, {"architecture": "unet"})
    rebuilt = build_model_from_params(path)
    assert isinstance(rebuilt, UNet)
    x = torch.randn(1, 1, 28, 28)
    with torch.no_grad():
        torch.testing.assert_close(rebuilt(x), model.eval()(x), rtol=0, atol=0)
    from types import SimpleNamespace

    from elektronn.net.model import build_model

    cnn_config = SimpleNamespace(
        mode="img-img", n_dim=2, arch=SimpleNamespace(filters=((3, 3),), pool=((1, 1),),
        input_shape=None), nof_filters=[4], pooling_mode=["max"], activation_func=["relu"],
        dropout_rates=[], MLP_layers=[], rnn_layer_kwargs=None, MFP=[], architecture="cnn",
    )  # fmt: skip
    cnn = build_model(cnn_config, 1, 2)
    with pytest.raises(ParamFileError, match="architecture 'unet'.*architecture='cnn'"):
        init_from_param_file(cnn, load_params(path), path)
