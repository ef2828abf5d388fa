"""Exact tiling of the output frame: adjacent output blocks, each read with its FOV halo.

Per axis the output frame (length ``n_out``) is cut into ``k`` blocks of one common size
``t`` (a valid tile output: a multiple of a CNN's stride, ``min_output + j*S`` for a U-Net,
whose tiles also start on multiples of S). ``t`` is shrunk from the requested tile to the
smallest valid size that still needs only ``k`` blocks, so the last block, which is shifted
back to end at the frame's border, overlaps its neighbour by less than ``k`` strides: nearly
every output voxel is computed once, and never from padding. Only a frame smaller than one
stride leaves a tile that reaches past the volume; the voxels beyond the frame are cropped.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Iterator
from dataclasses import dataclass

from .geometry import AxisGeometry


@dataclass(frozen=True)
class AxisTiling:
    """Where the tiles lie along one axis (all in output-frame coordinates).

    Attributes
    ----------
    n_out
        Length of the output frame.
    tile_out
        Output length of every tile (its input is ``tile_out + fov - 1``).
    starts
        Output start of each tile; tile ``i`` covers ``[starts[i], starts[i] + tile_out)``.
    """

    n_out: int
    tile_out: int
    starts: tuple[int, ...]
    geometry: AxisGeometry

    @property
    def tile_in(self) -> int:
        return self.geometry.input_size(self.tile_out)


def tile_axis(geometry: AxisGeometry, n_out: int, tile_in: int) -> AxisTiling:
    """Tiles for one axis, with an input of at most ``tile_in`` (rounded to a valid size).

    Tiles start on the geometry's lattice: they advance by the tile output rounded down to
    it, and the last one starts at the first lattice point from which it reaches the frame's
    end (for a lattice > 1 it may read up to ``lattice - 1`` voxels past the volume, which
    are mirrored, and their outputs cropped).
    """
    wanted = geometry.round_output(geometry.output_size(tile_in))
    n_tiles = math.ceil(n_out / geometry.lattice_floor(wanted))
    tile_out = geometry.ceil_output(math.ceil(n_out / n_tiles))
    advance = geometry.lattice_floor(tile_out)
    last = geometry.lattice_ceil(max(0, n_out - tile_out))
    count = -(-last // advance) + 1
    starts = tuple(min(i * advance, last) for i in range(count))
    return AxisTiling(n_out, tile_out, starts, geometry)


@dataclass(frozen=True)
class TilePlan:
    """The tiles of a whole volume (internal axis order)."""

    axes: tuple[AxisTiling, ...]

    @property
    def n_tiles(self) -> int:
        return math.prod(len(a.starts) for a in self.axes)

    @property
    def tile_in(self) -> tuple[int, ...]:
        return tuple(a.tile_in for a in self.axes)

    @property
    def out_shape(self) -> tuple[int, ...]:
        return tuple(a.n_out for a in self.axes)

    @property
    def redundancy(self) -> float:
        """Input voxels fed to the net per output voxel (1 would mean no halo, no overlap)."""
        return self.n_tiles * math.prod(self.tile_in) / math.prod(self.out_shape)

    def __iter__(self) -> Iterator[tuple[int, ...]]:
        """Output start of every tile (internal order), the last axis varying fastest."""
        return itertools.product(*(a.starts for a in self.axes))


def plan_tiles(
    geometry: tuple[AxisGeometry, ...], out_shape: tuple[int, ...], tile_in: tuple[int, ...]
) -> TilePlan:
    """The exact tiling of an output frame ``out_shape`` with tiles of input ``tile_in``."""
    return TilePlan(
        tuple(tile_axis(g, n, t) for g, n, t in zip(geometry, out_shape, tile_in, strict=True))
    )
