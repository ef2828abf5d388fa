"""Named axes: orders, views of stored arrays, and that no other module permutes by hand."""

import ast
from pathlib import Path

import h5py
import numpy as np
import pytest

from elektronn import axes
from elektronn.axes import AxesView, mirror_indices

PACKAGE = Path(axes.__file__).parent

#: Axis swaps that are not an axis-order rule: a batch dimension made of slices.
NOT_AXIS_ORDER = {
    "data/warping.py": "z slices as the batch of grid_sample, and back",
    "predict/dense.py": "a stack's z slices as the batch of a 2D net, and back",
    "labels/stack.py": "an image file's colour axis first",
    "data/flips.py": "augmentation: a random transposition of the spatial axes",
    "data/sampling.py": "augmentation: a random transposition of the spatial axes",
}


def test_orders():
    assert axes.internal_axes(3) == "zxy" and axes.internal_axes(2) == "xy"
    assert axes.to_user((5, 6, 7)) == (6, 7, 5) and axes.to_internal((6, 7, 5)) == (5, 6, 7)
    assert axes.reorder((1, 2, 3), "xyz", "zyx") == (3, 2, 1)
    assert axes.reorder((1, 2), "xy", "xyz", missing=0) == (1, 2, 0)
    assert axes.is_stack(3, 2) and not axes.is_stack(3, 3) and not axes.is_stack(2, 2)
    assert axes.net_axes(2, 3) == "xy" and axes.net_axes(3, 3) == "zxy"
    assert axes.plain_axes(4, 3, 2) == "cxyz" and axes.plain_axes(3, 2, 1) == "xyz"
    assert axes.plain_axes(3, 3, 2) is None  # (ch, x, y) is never guessed


def test_a_view_reads_and_writes_in_the_stored_order(tmp_path):
    czyx = np.arange(2 * 3 * 4 * 5).reshape(2, 3, 4, 5)
    with h5py.File(tmp_path / "a.h5", "w") as f:
        f["a"] = czyx
        view = AxesView(f["a"], "czyx")
        assert view.shape == (2, 5, 4, 3)  # (c, x, y, z)
        expected = np.stack([czyx[:, 2, y, 1:3] for y in range(4)], axis=-1)  # (c, x, y)
        np.testing.assert_array_equal(view[:, 1:3, :, 2:3][..., 0], expected)
        view[:, 0:1, 0:1, 0:1] = np.array([-1, -2]).reshape(2, 1, 1, 1)
        assert f["a"][0, 0, 0, 0] == -1 and f["a"][1, 0, 0, 0] == -2
    zyx = AxesView(czyx[0], "zyx")
    assert zyx.shape == (1, 5, 4, 3)  # a missing channel axis reads as length 1
    internal = zyx.seen_as("czxy")
    assert internal.shape == (1, 3, 5, 4)
    np.testing.assert_array_equal(internal[...][0, 1, 2, 3], czyx[0, 1, 3, 2])


def test_a_mirrored_window_is_numpy_symmetric_padding():
    xy = np.arange(6 * 7).reshape(1, 6, 7)
    window = AxesView(xy, "cxy").mirrored_window((0, -3, 4), (1, 12, 8))
    expected = np.pad(xy, ((0, 0), (3, 3), (0, 5)), mode="symmetric")[:, :12, 4:12]
    np.testing.assert_array_equal(window[...], expected)
    index = np.arange(-7, 12)
    np.testing.assert_array_equal(
        np.arange(5)[mirror_indices(index, 5)], np.pad(np.arange(5), (7, 7), mode="symmetric")
    )


def is_reordered_index(elements: list[ast.expr]) -> bool:
    """``(v[2], v[0], v[1])``: one sequence's entries by constant index, out of order."""
    indices, names = [], set()
    for e in elements:
        if not (
            isinstance(e, ast.Subscript)
            and isinstance(e.value, ast.Name)
            and isinstance(e.slice, ast.Constant)
            and isinstance(e.slice.value, int)
        ):
            return False  # fmt: skip
        indices.append(e.slice.value)
        names.add(e.value.id)
    return len(indices) >= 2 and len(names) == 1 and indices != sorted(indices)


def permutations_by_hand(tree: ast.AST) -> list[int]:
    """Lines that permute array axes without :mod:`elektronn.axes`: ``np.transpose``,
    ``.transpose(...)`` of a whole array, ``moveaxis``/``swapaxes``/``permute``, and tuples
    such as ``(*shape[1:], shape[0])`` that move one axis's value to the other end."""
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute):
            name = node.func.attr
            if name in ("moveaxis", "swapaxes", "permute"):
                found.append(node.lineno)
            elif name == "transpose" and (
                len(node.args) >= 2
                or (isinstance(node.func.value, ast.Name) and node.func.value.id == "np")
            ):
                found.append(node.lineno)
        if isinstance(node, ast.Tuple) and is_reordered_index(node.elts):
            found.append(node.lineno)
        if isinstance(node, ast.Tuple) and len(node.elts) == 2:
            first, second = node.elts
            if (
                isinstance(first, ast.Starred)
                and isinstance(first.value, ast.Subscript)
                and isinstance(first.value.slice, ast.Slice)
                and isinstance(second, ast.Subscript)
                and not isinstance(second.slice, ast.Slice)
            ):
                found.append(node.lineno)
    return sorted(found)


def test_no_module_permutes_axes_by_hand():
    """User, internal and storage orders meet only in elektronn/axes.py."""
    offenders = {}
    for path in sorted(PACKAGE.rglob("*.py")):
        name = path.relative_to(PACKAGE).as_posix()
        if name == "axes.py" or name in NOT_AXIS_ORDER:
            continue
        lines = permutations_by_hand(ast.parse(path.read_text()))
        if lines:
            offenders[name] = lines
    assert not offenders, f"axes permuted by hand (use elektronn.axes): {offenders}"


@pytest.mark.parametrize(
    "source",
    [
        "x = a.transpose(0, 3, 1, 2)",
        "x = np.transpose(a, (1, 0))",
        "x = (*s[1:], s[0])",
        "x = np.moveaxis(a, -1, 0)",
        "x = (v[2], v[0], v[1])",
    ],
)
def test_the_check_sees_a_permutation(source):
    assert permutations_by_hand(ast.parse(source)) == [1]
