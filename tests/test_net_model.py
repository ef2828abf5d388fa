"""The network built from the config: every architecture option, shapes, counts, init."""

import math
from types import SimpleNamespace

import pytest
import torch
import torch.nn.functional as F

from elektronn.net.layers import (
    ACTIVATIONS,
    ConvBlock,
    Perceptron,
    RecurrentLayer,
    activation_function,
    pool_nd,
)
from elektronn.net.model import ElektronnNet, build_model

# Reference §2.4 Ex. 2 (neuro_3d_config.py), internal (z, x, y) order.
NEURO_FILTERS = [(1, 4, 4), (1, 3, 3), (3, 3, 3), (3, 3, 3), (1, 2, 2)]
NEURO_POOL = [(1, 2, 2), (1, 2, 2), (1, 1, 1), (1, 1, 1), (1, 1, 1)]


def config(**options) -> SimpleNamespace:
    """A normalised config with the net options (img-img 2D unless overridden)."""
    values = dict(
        mode="img-img",
        n_dim=2,
        arch=None,
        nof_filters=[],
        pooling_mode=[],
        activation_func=[],
        dropout_rates=[],
        MLP_layers=[],
        target="nll",
        rnn_layer_kwargs=None,
        MFP=[],
    )
    values.update(options)
    return SimpleNamespace(**values)


def conv_config(filters, pool, nof, act="relu", mlp=(), input_shape=None, **options):
    n_layers = len(nof) + len(mlp)
    arch = SimpleNamespace(filters=filters, pool=pool, input_shape=input_shape)
    return config(
        n_dim=len(filters[0]),
        arch=arch,
        nof_filters=list(nof),
        pooling_mode=options.pop("pooling_mode", ["max"] * len(nof)),
        activation_func=[act] * n_layers,
        MLP_layers=list(mlp),
        **options,
    )


def n_params(model: torch.nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


def mnist_config(**options):
    """Reference §2.4 Ex. 1 / §8.2: MNIST img-scalar CNN."""
    return conv_config(
        [(3, 3), (3, 3)],
        [(2, 2), (2, 2)],
        [16, 32],
        mlp=[300, 300],
        input_shape=(26, 26),
        mode="img-scalar",
        **options,
    )


def neuro_config(**options):
    return conv_config(NEURO_FILTERS, NEURO_POOL, [10, 25, 40, 50, 60], **options)


def test_parameter_count_mnist_example():
    model = build_model(mnist_config(), n_ch=1, n_lab=10)
    assert n_params(model) == 338_410
    assert model(torch.zeros(3, 1, 26, 26)).shape == (3, 10)


def test_parameter_count_and_output_shape_neuro_3d_example():
    model = build_model(neuro_config(), n_ch=1, n_lab=2)
    assert n_params(model) == 95_717
    assert model.conv_blocks[0].conv.kernel_size == (1, 4, 4)
    assert model.conv_blocks[0].pool == (1, 2, 2)
    with torch.no_grad():
        out = model(torch.zeros(1, 1, 7, 127, 127))
    assert out.shape == (1, 2, 3, 25, 25)


def test_output_shape_matches_architecture_calculator():
    arch_module = pytest.importorskip("elektronn.arch")
    user_filters = [[4, 4, 1], [3, 3, 1], [3, 3, 3], [3, 3, 3], [2, 2, 1]]
    user_pool = [[2, 2, 1], [2, 2, 1], [1, 1, 1], [1, 1, 1], [1, 1, 1]]
    arch = arch_module.compute_architecture(user_filters, user_pool, [127, 127, 7], 3)
    model = build_model(config(n_dim=3, arch=arch, nof_filters=[4] * 5, pooling_mode=["max"] * 5,
                               activation_func=["relu"] * 5), n_ch=1, n_lab=2)  # fmt: skip
    with torch.no_grad():
        out = model(torch.zeros(1, 1, *arch.input_shape))
    assert tuple(out.shape[2:]) == tuple(arch.output_shape) == (3, 25, 25)


def test_img_img_output_layer_is_a_linear_1x1_conv_without_dropout():
    model = build_model(conv_config([(3, 3)], [(2, 2)], [4], dropout_rates=[0.5]), 1, 3)
    out_layer = model.output_layer
    assert isinstance(out_layer, ConvBlock)
    assert out_layer.conv.kernel_size == (1, 1) and out_layer.conv.out_channels == 3
    assert out_layer.activation == "linear" and out_layer.dropout is None
    assert model.conv_blocks[0].dropout is not None and len(model.mlp) == 0


@pytest.mark.parametrize("name", sorted(ACTIVATIONS))
def test_every_activation_in_conv_and_mlp_layers(name):
    model = build_model(mnist_config(act=name), 1, 10)
    block, perceptron = model.conv_blocks[0], model.mlp[0]
    assert block.activation == name and perceptron.activation == name
    x = torch.randn(2, 1, 26, 26)
    expected = F.max_pool2d(F.conv2d(x, block.conv.weight, block.conv.bias), 2)
    torch.testing.assert_close(block(x), activation_function(name)(expected))
    h = torch.randn(2, 800)
    expected = F.linear(h, perceptron.linear.weight, perceptron.linear.bias)
    torch.testing.assert_close(perceptron(h), activation_function(name)(expected))
    assert model(x).shape == (2, 10)


def test_activation_functions_values():
    x = torch.tensor([-2.0, 0.0, 3.0])
    assert ACTIVATIONS["tanh"](x).tolist() == pytest.approx([math.tanh(-2), 0, math.tanh(3)])
    assert ACTIVATIONS["abs"](x).tolist() == [2.0, 0.0, 3.0]
    assert ACTIVATIONS["linear"](x).tolist() == [-2.0, 0.0, 3.0]
    assert ACTIVATIONS["sig"](x).tolist() == pytest.approx(
        [1 / (1 + math.e**2), 0.5, 1 / (1 + math.e**-3)]
    )
    assert ACTIVATIONS["relu"](x).tolist() == [0.0, 0.0, 3.0]
    with pytest.raises(ValueError, match="sigmoid"):
        activation_function("sigmoid")


def test_maxabs_pooling_keeps_the_larger_magnitude_with_its_sign():
    x = torch.tensor(
        [
            [1.0, -3.0, 2.0, 2.0],
            [2.0, 0.0, -2.0, 1.0],
            [-1.0, -1.0, 5.0, -5.0],
            [-0.5, 0.0, 0.0, 0.0],
        ]
    ).reshape(1, 1, 4, 4)
    assert pool_nd(x, (2, 2), "maxabs").flatten().tolist() == [-3.0, 2.0, -1.0, 5.0]
    assert pool_nd(x, (2, 2), "max").flatten().tolist() == [2.0, 2.0, 0.0, 5.0]
    x3 = torch.tensor([-4.0, 1.0, 3.0, -2.0]).reshape(1, 1, 1, 2, 2)
    assert pool_nd(x3, (1, 2, 2), "maxabs").flatten().tolist() == [-4.0]


def test_maxabs_pooling_in_the_net_and_its_gradient():
    cfg = conv_config([(2, 2)], [(2, 2)], [3], act="linear", pooling_mode=["maxabs"])
    model = build_model(cfg, 1, 2)
    block = model.conv_blocks[0]
    x = torch.randn(1, 1, 9, 9, requires_grad=True)
    h = F.conv2d(x, block.conv.weight).unfold(2, 2, 2).unfold(3, 2, 2).reshape(1, 3, 4, 4, 4)
    pick = h.abs().argmax(dim=-1, keepdim=True)
    expected = h.gather(-1, pick)[..., 0] + block.conv.bias.view(1, -1, 1, 1)
    torch.testing.assert_close(block(x), expected)
    model(x).sum().backward()
    assert x.grad is not None and torch.isfinite(x.grad).all()


def test_dropout_never_on_the_output_layer_and_off_in_eval():
    cfg = mnist_config(dropout_rates=[0.5] * 4)
    model = build_model(cfg, 1, 10)
    assert [b.dropout.rate for b in model.conv_blocks] == [0.5, 0.5]
    assert [p.dropout.rate for p in model.mlp] == [0.5, 0.5]
    assert model.output_layer.dropout is None
    x = torch.randn(4, 1, 26, 26)
    model.train()
    assert not torch.equal(model(x), model(x))
    model.eval()
    torch.testing.assert_close(model(x), model(x), rtol=0, atol=0)
    no_dropout = build_model(mnist_config(dropout_rates=[]), 1, 10)
    assert all(b.dropout is None for b in no_dropout.conv_blocks)


def test_conv_dropout_gates_positions_before_the_bias():
    torch.manual_seed(0)
    block = ConvBlock(1, 3, (1, 1), (1, 1), activation="linear", dropout_rate=0.5)
    with torch.no_grad():
        block.conv.weight.fill_(1.0)
        block.conv.bias.copy_(torch.tensor([10.0, 20.0, 30.0]))
    out = block.train()(torch.ones(2, 1, 8, 8))
    bias = block.conv.bias.view(1, 3, 1, 1)
    dropped = (out == bias).all(dim=1)
    kept = (out == bias + 2.0).all(dim=1)
    assert torch.all(dropped | kept)
    assert dropped.any() and kept.any()
    assert not torch.equal(dropped[0], dropped[1])


def test_anisotropic_3d_filters_and_pools():
    cfg = conv_config([(1, 3, 3), (2, 2, 2)], [(1, 2, 2), (1, 1, 1)], [2, 3], input_shape=None)
    cfg.n_dim = 3
    model = build_model(cfg, 2, 4)
    assert model(torch.randn(1, 2, 3, 8, 8)).shape == (1, 4, 2, 2, 2)


def test_mlp_head_for_img_scalar():
    model = build_model(mnist_config(), 1, 10)
    assert [type(m) for m in model.mlp] == [Perceptron, Perceptron]
    assert model.mlp[0].linear.in_features == 32 * 5 * 5
    assert isinstance(model.output_layer, Perceptron)
    assert model.output_layer.activation == "linear" and model.output_layer.dropout is None


def test_example_shape_sizes_the_mlp():
    model = build_model(mnist_config(), 1, 10, example_shape=(1, 30, 30))
    assert model.mlp[0].linear.in_features == 32 * 6 * 6


def test_vect_scalar_mlp():
    cfg = config(mode="vect-scalar", activation_func=["tanh", "relu"], MLP_layers=[8, 6])
    model = build_model(cfg, 1, 3, example_shape=(20,))
    assert len(model.conv_blocks) == 0
    assert model(torch.randn(5, 20)).shape == (5, 3)
    assert n_params(model) == 20 * 8 + 8 + 8 * 6 + 6 + 6 * 3 + 3


def test_vect_scalar_needs_the_example_shape():
    cfg = config(mode="vect-scalar", activation_func=["relu"], MLP_layers=[8])
    with pytest.raises(ValueError, match="example"):
        build_model(cfg, 1, 3)


def test_recurrent_layer_before_the_mlp():
    cfg = config(mode="vect-scalar", activation_func=["relu"], MLP_layers=[5],
                 rnn_layer_kwargs=dict(n_hid=6, activation_func="tanh"))  # fmt: skip
    model = build_model(cfg, 1, 3, example_shape=(4, 7))
    assert isinstance(model.rnn, RecurrentLayer)
    x = torch.randn(2, 4, 7)
    assert model(x).shape == (2, 3)
    sequence, _ = model.rnn.rnn(x)
    torch.testing.assert_close(model.rnn(x), sequence[:, -1])
    radius = torch.linalg.matrix_norm(model.rnn.rnn.weight_hh_l0.detach(), ord=2)
    assert float(radius) == pytest.approx(1.0, abs=1e-5)


@torch.no_grad()
def test_initialisation_follows_the_original():
    block = ConvBlock(16, 64, (5, 5), (2, 2), activation="relu")
    fan_in, fan_out = 16 * 25, 64 * 25 // 4
    assert float(block.conv.weight.std()) == pytest.approx(
        math.sqrt(2 / (fan_in + fan_out)), rel=0.05
    )
    assert torch.all(block.conv.bias == 1 / 25)
    assert torch.all(ConvBlock(1, 4, (3, 3), (1, 1), activation="sig").conv.bias == 0.5)
    assert float(ConvBlock(1, 4, (3, 3), (1, 1), activation="tanh").conv.bias.abs().max()) <= 1e-6
    perceptron = Perceptron(300, 100, "relu")
    assert torch.all(perceptron.linear.bias == 1.0)
    assert float(perceptron.linear.weight.abs().max()) <= math.sqrt(2 / 400)
    assert float(Perceptron(30, 10, "linear").linear.bias.abs().max()) <= 1e-6


def test_invalid_input_size_is_an_error_not_a_silent_crop():
    model = build_model(conv_config([(3, 3)], [(2, 2)], [2]), 1, 2)
    with pytest.raises(ValueError, match="not divisible by the pooling factor 2"):
        model(torch.zeros(1, 1, 11, 11))


def test_inconsistent_options_are_refused():
    cfg = conv_config([(3, 3)], [(2, 2)], [2])
    cfg.activation_func = ["relu", "relu"]
    with pytest.raises(ValueError, match="activation_func"):
        build_model(cfg, 1, 2)
    with pytest.raises(ValueError, match="dropout_rates"):
        build_model(conv_config([(3, 3)], [(2, 2)], [2], dropout_rates=[0.5, 0.5]), 1, 2)
    cfg = conv_config([(3, 3), (2, 2)], [(2, 2), (2, 2)], [2, 2], MFP=[True, False])
    with pytest.raises(ValueError, match="some pooling layers but not in all"):
        build_model(cfg, 1, 2)


def test_mfp_option_gives_the_dense_output_in_training():
    cfg = conv_config([(2, 2), (3, 3)], [(2, 2), (2, 2)], [2, 3], MFP=[True, True])
    model = build_model(cfg, 1, 2)
    assert model.spec.mfp
    fov = 4 + (2 - 1) * 1 + (3 - 1) * 2  # S + sum (f_i - 1) * S_(i-1)
    x = torch.randn(1, 1, fov - 1 + 2 * 4, fov - 1 + 2 * 4)
    out = model(x)
    assert out.shape == (1, 2, 8, 8)
    out.sum().backward()


def test_spec_round_trip_rebuilds_the_same_net():
    model = build_model(mnist_config(dropout_rates=[0.1] * 4), 1, 10)
    rebuilt = ElektronnNet(type(model.spec).from_dict(model.spec.to_dict()))
    assert rebuilt.spec == model.spec
    assert [k for k in rebuilt.state_dict()] == [k for k in model.state_dict()]
