"""The architecture calculator: every worked example of reference §2.4, MFP geometry, closed forms.

Fast and torch-free: the calculator is plain Python, and these tests pin the sizes that the
data pipeline, the network and dense prediction all rely on.
"""

import dataclasses
import subprocess
import sys

import numpy as np
import pytest

from elektronn.arch import (
    MAX_INPUT,
    Architecture,
    ArchitectureError,
    arch_from_layers,
    compute_architecture,
    field_of_view,
    label_patch_shape,
    layer_param_counts,
    ram_estimate_bytes,
    to_internal_order,
)

NEURO_FILTERS = [[4, 4, 1], [3, 3, 1], [3, 3, 3], [3, 3, 3], [2, 2, 1]]
NEURO_POOL = [[2, 2, 1], [2, 2, 1], [1, 1, 1], [1, 1, 1], [1, 1, 1]]
NEURO_NOF = [10, 25, 40, 50, 60]


def neuro(**kwargs) -> Architecture:
    """The network of ``neuro_3d_config.py`` (reference Ex. 2)."""
    return compute_architecture(NEURO_FILTERS, NEURO_POOL, [127, 127, 7], 3, **kwargs)


def original_valid_inputs(filters, pools, mfp):
    """The original CNNCalculator rule (MFP needs ``out % p == 1``), for comparison.

    Its one other flaw is left out: with MFP it accepted ``out == 1``, whose fragments are empty.
    """
    valid = []
    for inp in range(2, MAX_INPUT):
        size = inp
        for f, p, m in zip(filters, pools, mfp):
            out = size - f + 1
            if out <= 0 or (p > 1 and out % p != (1 if m else 0)):
                break
            size = out // p
        else:
            if size > 0:
                valid.append(inp)
    return tuple(valid)


# --- Ex. 1: MNIST img-scalar -----------------------------------------------------------------


def test_ex1_mnist_img_scalar():
    a = compute_architecture([3, 3], [2, 2], 26, 2)
    assert a.valid_inputs == (tuple(range(10, MAX_INPUT, 4)),) * 2
    assert a.input_shape == (26, 26)
    assert a.layer_shapes == (((24, 12), (24, 12)), ((10, 5), (10, 5)))
    assert [field_of_view([3] * k, [2] * k) for k in (1, 2)] == [4, 10]
    assert list(np.cumprod([2, 2])) == [2, 4] and a.stride == (4, 4)
    assert a.fov == (10, 10) and a.offset == (5.0, 5.0) and a.int_offset == (5, 5)
    assert a.output_shape == (5, 5)
    assert not a.messages  # the original warned of the even FOV; one label per patch: no matter


def test_ex1_parameter_count_and_summary():
    a = compute_architecture([3, 3], [2, 2], 26, 2)
    counts = layer_param_counts(a, 1, [16, 32], [300, 300], 10)
    assert [c for _, c in counts] == [160, 4_640, 240_300, 90_300, 3_010]
    assert sum(c for _, c in counts) == 338_410
    lines = a.summary_lines(1, [16, 32], [300, 300], 10, 50)
    assert lines[-1] == "Parameters: 338,410"
    assert any("24x24" in line and "12x12" in line for line in lines)
    assert any("FOV 10x10" in line and "stride 4x4" in line for line in lines)


@pytest.mark.parametrize(
    "mode, expected",
    [("crop", 26), ("keep", 26), (None, 26), ("mirror", 30), ("0-pad", 30), ("c-pad", 30)],
)
def test_ex1_border_modes_for_28(mode, expected):
    a = compute_architecture([3, 3], [2, 2], 28, 2, border_mode=mode)
    assert a.input_shape == (expected, expected)
    assert any(f"28 changed to {expected}" in m and "size not possible" in m for m in a.messages)


def test_pad_border_modes_keep_a_valid_size():
    a = compute_architecture([3, 3], [2, 2], 26, 2, border_mode="mirror")
    assert a.input_shape == (26, 26)
    assert not any(m.startswith("Info") for m in a.messages)


def test_reject_border_mode_refuses_an_invalid_size():
    with pytest.raises(ArchitectureError, match="desired_input.*28.*reject"):
        compute_architecture([3, 3], [2, 2], 28, 2, border_mode="reject")
    assert compute_architecture([3, 3], [2, 2], 30, 2, border_mode="reject").input_shape == (30, 30)


# --- Ex. 2 / 2b: neuro 3D img-img ------------------------------------------------------------


def test_ex2_neuro_3d_per_axis_values():
    a = neuro(force_center=True)
    assert a.input_shape == (7, 127, 127)
    assert a.valid_inputs[0] == tuple(range(5, MAX_INPUT))
    assert a.valid_inputs[1] == a.valid_inputs[2] == tuple(range(31, MAX_INPUT, 4))
    assert a.fov == (5, 31, 31)
    assert a.offset == (2.5, 15.5, 15.5) and a.int_offset == (2, 15, 15)
    assert a.stride == (1, 4, 4)
    assert a.filters[0] == (1, 4, 4) and a.pool[0] == (1, 2, 2)
    assert a.messages == ()


def test_ex2_neuro_3d_layers_and_labels():
    a = neuro(force_center=True)
    x_sizes = [layer[1] for layer in a.layer_shapes]
    z_sizes = [layer[0] for layer in a.layer_shapes]
    assert x_sizes == [(124, 62), (60, 30), (28, 28), (26, 26), (25, 25)]
    assert [pooled for _, pooled in z_sizes] == [7, 7, 5, 3, 3]
    assert a.output_shape == a.dense_output_shape == (3, 25, 25)
    assert a.n_output_voxels == 1_875 and a.n_fragments == 1
    assert label_patch_shape(a.input_shape, a.int_offset) == (3, 97, 97)
    assert label_patch_shape(a.input_shape, a.int_offset, a.stride) == (3, 25, 25)


def test_ex2_neuro_3d_parameter_count():
    a = neuro()
    counts = layer_param_counts(a, 1, NEURO_NOF, [], 2)
    assert [c for _, c in counts] == [170, 2_275, 27_040, 54_050, 12_060, 122]
    assert sum(c for _, c in counts) == 95_717
    lines = a.summary_lines(1, NEURO_NOF, [], 2, 1)
    assert lines[-1] == "Parameters: 95,717"
    assert any("25x25x3 (1x1 conv)" in line for line in lines)  # printed in (x, y, z)


def test_ex2b_neuro_with_mfp():
    a = neuro(mfp=[1, 1, 0, 0, 0])
    assert a.valid_inputs[1] == tuple(range(34, MAX_INPUT, 4))
    assert a.input_shape == (7, 126, 126)
    assert any("127 changed to 126" in m and "size not possible" in m for m in a.messages)
    assert a.output_shape == (3, 24, 24)
    assert a.mfp_stride == (1, 4, 4) and a.n_fragments == 16
    assert a.dense_output_shape == (3, 96, 96)
    assert a.dense_output_shape[1] == 126 - 30 == label_patch_shape(a.input_shape, a.int_offset)[1]
    assert any("16 fragments" in line for line in a.summary_lines(1, NEURO_NOF, [], 2, 1))


# --- Ex. 3, 4, 5 -------------------------------------------------------------------------------


def test_ex3_2d_img_img_without_mfp():
    a = compute_architecture([6, 5, 4, 4], [2, 2, 1, 1], 180, 2, force_center=True)
    assert a.valid_inputs[0] == tuple(range(41, MAX_INPUT, 4))
    assert a.input_shape == (177, 177)
    assert a.fov == (41, 41) and a.offset == (20.5, 20.5) and a.int_offset == (20, 20)
    assert [layer[0] for layer in a.layer_shapes] == [(172, 86), (82, 41), (38, 38), (35, 35)]
    assert a.output_shape == (35, 35)
    assert label_patch_shape(a.input_shape, a.int_offset) == (137, 137)
    assert label_patch_shape(a.input_shape, a.int_offset, a.stride) == (35, 35)


def test_ex3_2d_img_img_with_mfp():
    a = compute_architecture([6, 5, 4, 4], [2, 2, 1, 1], 180, 2, mfp=[1] * 4, force_center=True)
    assert a.valid_inputs[0] == tuple(range(44, MAX_INPUT, 4))
    assert a.input_shape == (180, 180) and a.messages == ()
    assert a.output_shape == (35, 35)
    assert a.dense_output_shape == (140, 140) == label_patch_shape(a.input_shape, a.int_offset)


def test_ex4_docstring_example():
    """The original ran this without reordering; these user-order lists map to the same axes."""
    filters = [[6, 6, 1], [4, 4, 4], [2, 2, 2], [1, 1, 1]]
    pool = [[2, 2, 1], [2, 2, 2], [2, 2, 2], [1, 1, 1]]
    a = compute_architecture(filters, pool, [211, 211, 20], 3, mfp=[1, 1, 0, 0])
    assert a.input_shape == (18, 210, 210)  # (z, x, y): 211 -> 210, 20 -> 18
    assert any("20 changed to 18" in m and "size not possible" in m for m in a.messages)
    assert a.fov == (9, 23, 23)
    assert a.offset == (4.5, 11.5, 11.5)
    assert a.stride == (4, 8, 8)
    assert a.output_shape == (3, 24, 24)


def test_ex5_even_fov_is_an_error_for_img_img():
    with pytest.raises(ArchitectureError, match=r"field of view \(10\) on axis x.*'filters'"):
        compute_architecture([3, 3], [2, 2], 26, 2, force_center=True)


def test_even_fov_is_no_warning_where_one_label_per_patch_is_predicted():
    a = compute_architecture([[3, 3, 2]], [[2, 2, 1]], 20, 3)
    assert a.fov == (2, 4, 4)
    assert not [m for m in a.messages if "WARNING" in m]
    b = compute_architecture([[4, 4, 3]], [[2, 2, 1]], 21, 3, force_center=True)
    assert b.fov == (3, 5, 5)


# --- MFP geometry ------------------------------------------------------------------------------


def fragments(conv_out: np.ndarray, p: int) -> list[np.ndarray]:
    """MFP on one axis: per window offset a crop, whose p strided slices max pooling combines."""
    crops = [conv_out[o : len(conv_out) - p + o + 1] for o in range(p)]
    return [crop[i::p] for crop in crops for i in range(p)]


def test_mfp_pool_factor_three_gives_equal_fragments():
    a = compute_architecture([3, 3], [3, 1], 60, 2, mfp=[1, 0], force_center=True)
    assert a.fov == (11, 11) and a.mfp_stride == (3, 3)
    assert a.valid_inputs[0] == tuple(range(13, MAX_INPUT, 3))  # FOV - 1 + n * S
    for size in a.valid_inputs[0][:20]:
        conv_out = size - 3 + 1
        lengths = {len(frag) for frag in fragments(np.arange(conv_out), 3)}
        assert lengths == {(conv_out - 3 + 1) // 3}
    assert a.input_shape == (58, 58)
    assert a.layer_shapes[0][0] == (56, 18)
    assert a.output_shape == (16, 16) and a.n_fragments == 9
    assert a.dense_output_shape == (48, 48) == label_patch_shape(a.input_shape, a.int_offset)


def test_mfp_rejects_sizes_the_original_rule_let_through_for_pool_three():
    """``out % p == 1`` accepts out = 4 with p = 3, whose fragments differ in length."""
    assert 5 in original_valid_inputs([2], [3], [True])
    assert {len(frag) for frag in fragments(np.arange(4), 3)} == {0, 1}
    assert 5 not in compute_architecture([2], [3], None, 2, mfp=[1]).valid_inputs[0]


def test_mfp_never_yields_empty_fragments():
    """The original accepted a conv output of 1 before an MFP pool of 2: fragments of length 0."""
    a = compute_architecture([3, 2], [2, 2], None, 2, mfp=[0, 1])
    assert a.valid_inputs[0][0] == 10  # conv 8, pool 4, conv 3: fragments of length 1
    assert 6 not in a.valid_inputs[0]  # conv 4, pool 2, conv 1: fragments of length 0


@pytest.mark.parametrize(
    "filters, pools, mfp",
    [
        ([6, 5, 4, 4], [2, 2, 1, 1], [1, 1, 1, 1]),
        ([4, 3, 3, 3, 2], [2, 2, 1, 1, 1], [1, 1, 0, 0, 0]),
        ([6, 4, 2, 1], [2, 2, 2, 1], [1, 1, 0, 0]),
        ([3, 2, 5], [2, 2, 2], [0, 1, 1]),
    ],
)
def test_mfp_with_pool_two_matches_the_original_rule(filters, pools, mfp):
    a = compute_architecture(filters, pools, None, 2, mfp=mfp)
    assert a.valid_inputs[0] == original_valid_inputs(filters, pools, mfp)


def test_full_mfp_dense_output_is_input_minus_fov_plus_one():
    a = neuro(mfp=[1, 1, 1, 1, 1])
    assert a.dense_output_shape == tuple(i - f + 1 for i, f in zip(a.input_shape, a.fov))
    assert a.dense_output_shape == label_patch_shape(a.input_shape, a.int_offset)


def test_partial_mfp_keeps_a_residual_stride():
    a = compute_architecture([4, 3, 2], [2, 2, 1], None, 2, mfp=[1, 0, 0])
    assert a.stride == (4, 4) and a.mfp_stride == (2, 2)
    assert a.dense_output_shape == tuple(2 * n for n in a.output_shape)


# --- closed forms, anisotropy, input choice --------------------------------------------------


@pytest.mark.parametrize(
    "filters, pools",
    [([3, 3], [2, 2]), ([6, 5, 4, 4], [2, 2, 1, 1]), ([5, 3, 3], [2, 2, 1]), ([4, 3], [3, 2])],
)
def test_closed_forms_without_mfp(filters, pools):
    a = compute_architecture(filters, pools, None, 2)
    fov, s = a.fov[0], a.stride[0]
    assert fov == s + sum((f - 1) * int(np.prod(pools[:i])) for i, f in enumerate(filters))
    n_max = (MAX_INPUT - 1 - fov) // s + 1
    assert a.valid_inputs[0] == tuple(fov + (n - 1) * s for n in range(1, n_max + 1))
    assert a.input_shape[0] == a.valid_inputs[0][-1]
    assert a.output_shape[0] == (a.input_shape[0] - fov) // s + 1
    if fov % 2:  # labels sit at the neurons' centres and striding gives one label per output
        assert label_patch_shape(a.input_shape, a.int_offset, a.stride) == a.output_shape


def test_anisotropic_2d_tuples_are_per_axis():
    a = compute_architecture([[3, 5], [2, 2]], [[1, 2], [1, 2]], [20, 30], 2)
    assert a.filters == ((3, 5), (2, 2)) and a.pool == ((1, 2), (1, 2))
    assert a.fov == (4, 10) and a.stride == (1, 4)
    assert a.valid_inputs[0] == tuple(range(4, MAX_INPUT))
    assert a.input_shape == (20, 30)
    assert a.output_shape == (17, 6)


def test_3d_user_order_maps_to_z_x_y():
    a = compute_architecture([[5, 3, 1]], [[1, 1, 1]], [40, 30, 9], 3)
    assert a.filters == ((1, 5, 3),)
    assert a.input_shape == (9, 40, 30) and a.output_shape == (9, 36, 28)


def test_too_small_desired_input_takes_the_smallest():
    a = compute_architecture([6, 4], [2, 1], 3, 2)
    assert a.input_shape == (a.valid_inputs[0][0],) * 2 == (13, 13)
    assert "Info: input 3 changed to 13 on axis x (size too small)" in a.messages


def test_none_desired_takes_the_largest_silently():
    a = compute_architecture([6, 4], [2, 1], None, 2)
    assert a.input_shape == (a.valid_inputs[0][-1],) * 2
    assert a.messages == ()


def test_net_without_conv_layers_passes_the_input_through():
    a = compute_architecture([], [], 12, 2)
    assert a.fov == (1, 1) and a.output_shape == (12, 12) and a.layer_shapes == ()


# --- helpers, errors -------------------------------------------------------------------------


def test_user_order_to_internal():
    assert to_internal_order([4, 5, 1], 3) == (1, 4, 5)
    assert to_internal_order(3, 3) == (3, 3, 3)
    assert to_internal_order([4, 5], 2) == (4, 5)
    assert to_internal_order(np.array([4, 5, 1]), 3) == (1, 4, 5)
    assert to_internal_order(np.int64(2), 2) == (2, 2)


@pytest.mark.parametrize("value", [[4, 5], [1, 2, 3, 4], True, "345", [4.0, 5.0, 1.0], None])
def test_user_order_rejects_malformed_values(value):
    with pytest.raises(ArchitectureError, match=r"'filters'.*n_dim=3 needs one int or 3 ints"):
        to_internal_order(value, 3, "filters")


@pytest.mark.parametrize(
    "kwargs, match",
    [
        (dict(filters=[3], pool=[2, 2]), "'filters' has 1 entries but 'pool' has 2"),
        (dict(n_dim=4), "'n_dim' is 4"),
        (dict(mfp=[1]), "'MFP' has 1 entries but there are 2 conv layers"),
        (dict(filters=[0, 3]), "'filters' has an entry with a size below 1"),
        (dict(desired_input=[20, 20, 20]), "'desired_input'"),
        (dict(pool=[2, 5000]), "No input size below 5000 fits the layers on axis x"),
    ],
)
def test_malformed_architectures_name_the_option(kwargs, match):
    args = dict(filters=[4, 3], pool=[2, 1], desired_input=20, n_dim=2) | kwargs
    with pytest.raises(ArchitectureError, match=match):
        compute_architecture(**args)


def test_any_input_shape_is_sized_by_the_same_rule():
    a = compute_architecture([6, 4], [2, 1], 40, 2)  # valid: 13, 15, 17, ...
    assert a.layer_shapes_for(a.input_shape) == a.layer_shapes
    assert a.output_shape_for((13, 41)) == (1, 15)
    with pytest.raises(
        ArchitectureError,
        match=r"not divisible by the pooling factor 2.*near it: \[37, 39, 41, 43\]",
    ):
        a.output_shape_for((40, 41))
    with pytest.raises(ArchitectureError, match="smaller than the filter"):
        a.output_shape_for((5, 13))
    with pytest.raises(ArchitectureError, match=r"needs \(length \+ 1\) divisible by 2"):
        a.output_shape_for((13, 13), mfp=True)
    assert a.output_shape_for((14, 18), mfp=True) == (1, 3)
    with pytest.raises(ArchitectureError, match="2D net"):
        a.output_shape_for((13, 13, 13))


def test_a_built_net_gets_the_config_geometry():
    a = neuro(mfp=[1] * 5)
    b = arch_from_layers(3, a.filters, a.pool, True, a.input_shape)
    assert b == dataclasses.replace(a, messages=())


def test_ram_estimate_is_32_bit_images_and_16_bit_labels():
    assert ram_estimate_bytes(10, 10) == 60
    assert ram_estimate_bytes(2 * 128**3, 128**3) == 10 * 128**3


def test_calculator_imports_neither_torch_nor_numpy():
    code = "import sys, elektronn.arch; print('torch' in sys.modules, 'numpy' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.split() == ["False", "False"]


def test_the_3d_summary_prints_every_size_in_the_users_xyz_order():
    arch = compute_architecture([[4, 4, 1], [3, 3, 3]], [[2, 2, 1], [1, 1, 1]], [127, 127, 7], 3)
    assert arch.input_shape == (7, 127, 127)  # internal (z, x, y)
    lines = arch.summary_lines(1, [2, 2], [], 2, 1)
    assert lines[0].startswith("Architecture (3D, axes (x,y,z)): input 127x127x7,")
    assert "filters 4x4x1 -> 124x124x7, pool 2x2x1 -> 62x62x7" in lines[1]
    assert any(line.startswith("FOV 9x9x3, offset (4.5, 4.5, 1.5)") for line in lines), lines
