"""What an affinity net's outputs are: its offsets, its shape-descriptor channels, ``n_lab``.

``target = 'affinity'`` has one output channel per affinity offset, followed by the local
shape descriptors when ``lsd_sigma`` is set. The config checks, the data pipeline
(:mod:`elektronn.data.affinities`, :mod:`elektronn.data.lsd`) and the loss all count the
channels here, so they cannot disagree.
"""

from __future__ import annotations

from collections.abc import Sequence
from numbers import Integral
from typing import Any

from .chain import ConfigError

Offset = tuple[int, ...]


def nearest_neighbour_offsets(n_dim: int) -> list[Offset]:
    """The default offsets: one step back along each axis, ``n_dim`` of them (user order)."""
    return [tuple(-1 if a == b else 0 for b in range(n_dim)) for a in range(n_dim)]


def n_descriptors(n_dim: int) -> int:
    """Local shape descriptor channels: offsets, variances, correlations, size (10 3D, 6 2D)."""
    return n_dim + n_dim + n_dim * (n_dim - 1) // 2 + 1


def checked_offsets(offsets: Sequence[Any] | None, n_dim: int) -> list[Offset]:
    """The offsets as tuples of ints (None: nearest neighbours), refused when unusable.

    Raises
    ------
    ConfigError
        An offset without ``n_dim`` integer entries, a zero offset, or an empty list.
    """
    if offsets is None:
        return nearest_neighbour_offsets(n_dim)
    axes = "(x, y, z)" if n_dim == 3 else "(x, y)"
    checked = []
    for offset in offsets:
        if not isinstance(offset, (list, tuple)) or len(offset) != n_dim:
            raise ConfigError(
                f"Option 'affinity_offsets' has the offset {offset!r}, but a {n_dim}D net needs "
                f"{n_dim} entries per offset, {axes} in voxels."
            )
        if not all(isinstance(v, Integral) and not isinstance(v, bool) for v in offset):
            raise ConfigError(
                f"Option 'affinity_offsets' has the offset {offset!r}: entries must be integers "
                f"(voxels along {axes})."
            )
        if not any(offset):
            raise ConfigError(
                f"Option 'affinity_offsets' has the zero offset {offset!r}: a voxel always lies "
                f"in its own object; give offsets to other voxels."
            )
        checked.append(tuple(int(v) for v in offset))
    if not checked:
        raise ConfigError("Option 'affinity_offsets' is empty: give at least one offset or None.")
    return checked


def affinity_channels(n_offsets: int, n_dim: int, lsd_sigma: Any) -> int:
    """Outputs of an affinity net: one per offset, plus the descriptors if ``lsd_sigma``."""
    return n_offsets + (n_descriptors(n_dim) if lsd_sigma is not None else 0)
