"""Named axes: the one home of the rule that maps user, internal and storage order.

* **User order** ``(x, y[, z])``: config files, h5 files, command-line values; images are
  ``(c, x, y[, z])``.
* **Internal order**: ``(x, y)`` for two spatial axes, ``(z, x, y)`` for three — PyTorch's
  layout of a batch and the layout of volumes in memory.
* **Storage order**: what a store declares (OME-Zarr axes, a zarr v3 array's
  ``dimension_names``), or for arrays without names the training data's rule
  (:func:`plain_axes`).

Axis orders are strings of axis names (``"czyx"``, ``"xyz"``); per-axis values (shapes,
offsets, tiles) move between orders with :func:`reorder`, arrays through :class:`AxesView`.
No other module permutes array axes by hand (``tests/test_axes.py`` checks). numpy is
imported only where arrays are touched: the architecture calculator, pure Python, uses the
orders too.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import numpy as np

#: The NGFF axis names a stored image may have (a channel axis and z are optional).
OME_AXES = frozenset("czyx")

#: The channel axis's name.
CHANNEL = "c"


def user_axes(n_spatial: int) -> str:
    """``"xy"`` or ``"xyz"``."""
    return "xyz"[:n_spatial]


def internal_axes(n_spatial: int) -> str:
    """``"xy"`` or ``"zxy"``: how nets and in-memory volumes order their spatial axes."""
    return "zxy" if n_spatial == 3 else "xy"


def spatial(axes: str) -> str:
    """``axes`` without the channel axis."""
    return axes.replace(CHANNEL, "")


def reorder(values: Sequence[Any], src: str, dst: str, missing: Any = None) -> tuple[Any, ...]:
    """Per-axis ``values`` in the order ``src`` → the order ``dst``; an axis of ``dst`` that
    ``src`` lacks gets ``missing``."""
    return tuple(values[src.index(a)] if a in src else missing for a in dst)


def to_user(values: Sequence[Any]) -> tuple[Any, ...]:
    """Internal-order spatial values → user order."""
    n = len(values)
    return reorder(values, internal_axes(n), user_axes(n))


def to_internal(values: Sequence[Any]) -> tuple[Any, ...]:
    """User-order spatial values → internal order."""
    n = len(values)
    return reorder(values, user_axes(n), internal_axes(n))


def as_order(array: np.ndarray, src: str, dst: str) -> np.ndarray:
    """A numpy array whose axes are named ``src`` seen in the order ``dst`` (a view)."""
    import numpy as np

    return np.transpose(array, [src.index(a) for a in dst])


def is_stack(n_spatial: int, n_dim: int) -> bool:
    """A 2D net on a 3D volume: each z slice is predicted on its own (z has no geometry)."""
    return n_spatial == 3 and n_dim == 2


def net_axes(n_dim: int, n_spatial: int) -> str:
    """The internal axes of a volume that a net's geometry covers (a stack's z is not)."""
    axes = internal_axes(n_spatial)
    return axes[1:] if is_stack(n_spatial, n_dim) else axes


def plain_axes(ndim: int, n_dim: int, n_ch: int) -> str | None:
    """Axis names of an array without axis metadata (h5, unnamed zarr): the training rule.

    4 axes are ``(c, x, y, z)``; 3 axes are ``(x, y, z)``, never ``(c, x, y)``; a 2D net
    also takes one image ``(x, y)``. None when no layout fits.
    """
    if ndim == 4:
        return "cxyz"
    if ndim == 3 and n_ch == 1:
        return "xyz"
    if ndim == 2 and n_dim == 2:
        return "xy"
    return None


def image_axes_ok(axes: str) -> bool:
    """x and y, optionally z and c, each once: what a net reads (no t or other axes)."""
    return set(axes) <= OME_AXES and {"x", "y"} <= set(axes) and len(set(axes)) == len(axes)


def spatial_in_user_order(axes: str) -> str:
    """The spatial axes among ``axes`` in user order: ``x, y[, z]``."""
    return "".join(a for a in "xyz" if a in axes)


def image_view_axes(axes: str) -> str:
    """The user-order view of an image stored with ``axes``: ``c, x, y[, z]``."""
    return CHANNEL + spatial_in_user_order(axes)


def mirror_indices(index: np.ndarray, n: int) -> np.ndarray:
    """Fold indices outside ``[0, n)`` back by mirroring with the edge repeated.

    This is numpy's ``'symmetric'`` padding (the original's ``pad_raw``), for any pad width.
    """
    import numpy as np

    period = 2 * n
    folded = np.mod(index, period)
    return np.where(folded < n, folded, period - 1 - folded)


class AxesView:
    """An array whose axes are named (``"czyx"``, ``"xyz"``, ...) seen in the order ``names``
    (default ``c, x, y[, z]``); an axis it lacks reads as one of length 1.

    Boxes are read and written in the storage's own order, so only the box moves; no array is
    held in memory. ``array`` is anything with ``shape``, ``dtype`` and numpy slicing (numpy,
    h5py, zarr).
    """

    def __init__(self, array: Any, axes: str, names: str | None = None) -> None:
        self.array, self.axes = array, axes
        self.names = names or image_view_axes(axes)

    @property
    def shape(self) -> tuple[int, ...]:
        return tuple(
            1 if n not in self.axes else int(self.array.shape[self.axes.index(n)])
            for n in self.names
        )

    @property
    def dtype(self) -> np.dtype:
        import numpy as np

        return np.dtype(self.array.dtype)

    @property
    def ndim(self) -> int:
        return len(self.names)

    def seen_as(self, names: str) -> AxesView:
        """The same array seen in another order."""
        return AxesView(self.array, self.axes, names)

    def _stored_index(self, index: Any) -> tuple:
        index = (slice(None),) * self.ndim if index is Ellipsis else index
        return tuple(index[self.names.index(a)] for a in self.axes)

    def _kept(self) -> str:
        return "".join(n for n in self.names if n in self.axes)

    def _missing(self) -> tuple[int, ...]:
        return tuple(i for i, n in enumerate(self.names) if n not in self.axes)

    def __getitem__(self, index: Any) -> np.ndarray:
        import numpy as np

        block = np.asarray(self.array[self._stored_index(index)])
        block = np.transpose(block, [self.axes.index(n) for n in self._kept()])
        return np.expand_dims(block, self._missing())

    def __setitem__(self, index: tuple, value: np.ndarray) -> None:
        import numpy as np

        kept = self._kept()
        value = np.squeeze(value, self._missing())
        self.array[self._stored_index(index)] = np.transpose(
            value, [kept.index(a) for a in self.axes]
        )

    def __array__(self, dtype: Any = None, copy: Any = None) -> np.ndarray:
        block = self[...]
        return block if dtype is None else block.astype(dtype)

    def take(self, indices: Sequence[np.ndarray]) -> np.ndarray:
        """The voxels at the outer product of per-axis ``indices`` (view order, in range).

        Reads the bounding box only, then picks the indices from it, which is a no-op for the
        usual contiguous tile.
        """
        import numpy as np

        lows = [int(i.min()) for i in indices]
        box = tuple(slice(low, int(i.max()) + 1) for low, i in zip(lows, indices, strict=True))
        block = self[box]
        for axis, (index, low, s) in enumerate(zip(indices, lows, box, strict=True)):
            if not np.array_equal(index, np.arange(low, s.stop)):
                block = np.take(block, index - low, axis=axis)
        return block

    def mirrored_window(self, lows: Sequence[int], sizes: Sequence[int]) -> AxesView:
        """A box of this view (a corner per axis, may be negative, and a size), whose voxels
        outside the array are mirrored: what a padded prediction reads there."""
        return AxesView(_MirroredBox(self, tuple(lows), tuple(sizes)), self.names, self.names)


class _MirroredBox:
    """The array behind :meth:`AxesView.mirrored_window` (indexed by slices, view order)."""

    def __init__(self, view: AxesView, lows: tuple[int, ...], sizes: tuple[int, ...]) -> None:
        self.view, self.lows, self.shape = view, lows, sizes

    @property
    def dtype(self) -> np.dtype:
        return self.view.dtype

    def __getitem__(self, index: tuple) -> np.ndarray:
        import numpy as np

        bounds = (s.indices(n) for s, n in zip(index, self.shape, strict=True))
        return self.view.take(
            tuple(
                mirror_indices(np.arange(low + start, low + stop, step), n)
                for (start, stop, step), low, n in zip(
                    bounds, self.lows, self.view.shape, strict=True
                )
            )
        )
