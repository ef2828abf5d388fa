"""The architecture calculator reproduces every worked example of reference §2.4."""

import pytest

from elektronn.arch import (
    ArchitectureError,
    compute_architecture,
    param_count,
    ram_estimate_bytes,
    to_internal_order,
    valid_size_at_least,
    valid_size_at_most,
)

NEURO_FILTERS = [[4, 4, 1], [3, 3, 1], [3, 3, 3], [3, 3, 3], [2, 2, 1]]
NEURO_POOL = [[2, 2, 1], [2, 2, 1], [1, 1, 1], [1, 1, 1], [1, 1, 1]]


def test_ex1_mnist_img_scalar():
    a = compute_architecture([3, 3], [2, 2], 26, 2)
    assert a.valid_inputs[0][:6] == (10, 14, 18, 22, 26, 30)
    assert a.input_shape == (26, 26)
    assert [s[0] for s in a.layer_shapes] == [(24, 12), (10, 5)]
    assert a.fov == (10, 10) and a.stride == (4, 4) and a.offset == (5.0, 5.0)
    assert a.output_shape == (5, 5)
    assert sum("even field of view (10)" in m for m in a.messages) == 2
    assert param_count(a, 1, [16, 32], [300, 300], 10) == 338_410


@pytest.mark.parametrize("mode, expected", [("crop", 26), ("mirror", 30), ("0-pad", 30)])
def test_ex1_border_modes_for_28(mode, expected):
    a = compute_architecture([3, 3], [2, 2], 28, 2, border_mode=mode)
    assert a.input_shape == (expected, expected)


def test_reject_border_mode_refuses_invalid_size():
    with pytest.raises(ArchitectureError, match="reject"):
        compute_architecture([3, 3], [2, 2], 28, 2, border_mode="reject")


def test_ex2_neuro_3d():
    a = compute_architecture(NEURO_FILTERS, NEURO_POOL, [127, 127, 7], 3)
    assert a.input_shape == (7, 127, 127)
    assert a.valid_inputs[0][:3] == (5, 6, 7)
    assert a.valid_inputs[1][:3] == (31, 35, 39) and 127 in a.valid_inputs[1]
    assert a.fov == (5, 31, 31)
    assert a.offset == (2.5, 15.5, 15.5) and a.int_offset == (2, 15, 15)
    assert a.stride == (1, 4, 4)
    assert [s[1] for s in a.layer_shapes] == [(124, 62), (60, 30), (28, 28), (26, 26), (25, 25)]
    assert [s[0][1] for s in a.layer_shapes] == [7, 7, 5, 3, 3]
    assert a.output_shape == (3, 25, 25)
    assert a.label_patch_shape(strided=False) == (3, 97, 97)
    assert a.label_patch_shape(strided=True) == (3, 25, 25)
    assert param_count(a, 1, [10, 25, 40, 50, 60], [], 2) == 95_717


def test_ex2b_neuro_with_mfp():
    a = compute_architecture(NEURO_FILTERS, NEURO_POOL, [127, 127, 7], 3, mfp=[1, 1, 0, 0, 0])
    assert a.input_shape == (7, 126, 126)
    assert a.valid_inputs[1][:2] == (34, 38)
    assert a.output_shape == (3, 24, 24)
    assert a.n_fragments == 16
    assert a.dense_output_shape == (3, 96, 96)
    assert any("size not possible" in m for m in a.messages)


@pytest.mark.parametrize(
    "mfp, inp, out, label", [(None, 177, 35, 137), ([1, 1, 1, 1], 180, 35, 140)]
)
def test_ex3_2d_img_img(mfp, inp, out, label):
    a = compute_architecture([6, 5, 4, 4], [2, 2, 1, 1], 180, 2, mfp=mfp, force_center=True)
    assert a.input_shape == (inp, inp)
    assert a.fov == (41, 41) and a.int_offset == (20, 20)
    assert a.output_shape == (out, out)
    dense = a.dense_output_shape if mfp else a.label_patch_shape(strided=False)
    assert dense == (label, label)
    if mfp is None:
        assert [s[0] for s in a.layer_shapes] == [(172, 86), (82, 41), (38, 38), (35, 35)]


def test_ex4_docstring_example():
    filters = [[6, 6, 1], [4, 4, 4], [2, 2, 2], [1, 1, 1]]
    pool = [[2, 2, 1], [2, 2, 2], [2, 2, 2], [1, 1, 1]]
    a = compute_architecture(filters, pool, [211, 211, 20], 3, mfp=[1, 1, 0, 0])
    assert a.input_shape == (18, 210, 210)  # (z, x, y): 211 -> 210, 20 -> 18
    assert a.fov == (9, 23, 23)
    assert a.offset == (4.5, 11.5, 11.5)
    assert a.stride == (4, 8, 8)
    assert a.output_shape == (3, 24, 24)


def test_ex5_even_fov_is_an_error_for_img_img():
    with pytest.raises(ArchitectureError, match=r"field of view \(10\)"):
        compute_architecture([3, 3], [2, 2], 26, 2, force_center=True)


def test_closed_form_without_mfp():
    a = compute_architecture([5, 3, 3], [2, 2, 1], 100, 2)
    fov, s = a.fov[0], a.stride[0]
    assert all((v - fov) % s == 0 for v in a.valid_inputs[0])
    assert a.valid_inputs[0][0] == fov


def test_mfp_with_pool_factor_three_gives_equal_fragments():
    a = compute_architecture([4, 3], [3, 1], 60, 2, mfp=[1, 0])
    for size in a.valid_inputs[0][:10]:
        out = size - 4 + 1
        assert (out - 3 + 1) % 3 == 0
    assert a.dense_output_shape[0] == a.input_shape[0] - a.fov[0] + 1


def test_mfp_dense_output_is_input_minus_fov_plus_one():
    a = compute_architecture(NEURO_FILTERS, NEURO_POOL, [100, 100, 9], 3, mfp=[1, 1, 0, 0, 0])
    assert a.dense_output_shape == tuple(i - f + 1 for i, f in zip(a.input_shape, a.fov))


def test_too_small_desired_input_takes_smallest():
    a = compute_architecture([6, 4], [2, 1], 3, 2)
    assert a.input_shape[0] == a.valid_inputs[0][0]
    assert any("size too small" in m for m in a.messages)


def test_none_desired_takes_largest():
    a = compute_architecture([6, 4], [2, 1], None, 2)
    assert a.input_shape[0] == a.valid_inputs[0][-1]


def test_user_order_to_internal():
    assert to_internal_order([4, 5, 1], 3) == (1, 4, 5)
    assert to_internal_order(3, 3) == (3, 3, 3)
    assert to_internal_order([4, 5], 2) == (4, 5)
    with pytest.raises(ArchitectureError, match="n_dim=3"):
        to_internal_order([4, 5], 3)


def test_valid_size_helpers():
    a = compute_architecture([6, 4], [2, 1], 40, 2)
    assert valid_size_at_least(a, (40, 41)) == (41, 41)
    assert valid_size_at_most(a, (40, 41)) == (39, 41)


def test_ram_estimate():
    assert ram_estimate_bytes(10, 10) == 60
