"""Tile geometry of dense prediction with valid convolutions.

A net of valid convolutions maps an input of length ``n`` (per axis) to a dense output of
length ``n - (fov - 1)``: output voxel ``j`` sees the input window ``[j, j + fov)``. A strided
net (total pooling stride ``S``) produces that dense output, by MFP or by shift-and-stitch,
only for inputs ``fov - 1 + k*S`` (``k >= 1``), whose dense output is ``k*S``. These are
exactly the MFP-valid input sizes of the architecture calculator. Tiles of such sizes whose
outputs are adjacent blocks compute every output voxel once, so a tiled prediction equals
one pass over the whole volume. A valid U-Net's output is dense already, of length
``min_output + k*S``; it equals a single pass only for tiles that start on multiples of S
(its ``lattice``), so its tiles overlap by less than S where their outputs are not multiples.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from .errors import PredictionError


@dataclass(frozen=True)
class AxisGeometry:
    """Dense-prediction geometry along one axis.

    Attributes
    ----------
    fov
        Field of view (receptive field) of the net along this axis.
    step
        Total pooling stride ``S``: valid tile inputs grow in steps of ``S``.
    min_output
        The smallest valid tile output; 0 means ``step`` (a CNN with MFP: outputs ``k*S``).
        A U-Net's outputs are ``min_output + k*S``.
    lattice
        Tiles must start on multiples of it (in the output frame) for the tiled output to
        equal a single pass: 1 for CNNs (MFP computes every voxel alike), S for a U-Net,
        whose pooling grid must stay where a single pass puts it.
    """

    fov: int
    step: int
    min_output: int = 0
    lattice: int = 1

    @property
    def smallest_output(self) -> int:
        """The smallest valid tile output."""
        return self.min_output or self.step

    @property
    def left(self) -> int:
        """Input voxels left of the first output voxel: ``floor(fov / 2)`` (the offset)."""
        return self.fov // 2

    @property
    def right(self) -> int:
        """Input voxels right of the last output voxel (= ``left`` for an odd FOV)."""
        return self.fov - 1 - self.left

    @property
    def halo(self) -> int:
        """Input voxels a tile needs beyond its output block: ``fov - 1``."""
        return self.fov - 1

    def output_size(self, n_input: int) -> int:
        """Dense output length of an input of ``n_input`` voxels (may be <= 0)."""
        return n_input - self.halo

    def input_size(self, n_output: int) -> int:
        """Input length of a tile whose output is ``n_output`` (a multiple of ``step``)."""
        return n_output + self.halo

    def round_output(self, n_output: int) -> int:
        """The largest valid tile output <= ``n_output``, at least the smallest one."""
        low = self.smallest_output
        return max(low, low + (n_output - low) // self.step * self.step)

    def ceil_output(self, n_output: int) -> int:
        """The smallest valid tile output >= ``n_output``."""
        low = self.smallest_output
        return max(low, low - (low - n_output) // self.step * self.step)

    def lattice_floor(self, n: int) -> int:
        """``n`` rounded down to the tile lattice."""
        return n // self.lattice * self.lattice

    def lattice_ceil(self, n: int) -> int:
        """``n`` rounded up to the tile lattice."""
        return -(-n // self.lattice) * self.lattice


@dataclass(frozen=True)
class NetGeometry:
    """What dense prediction needs to know about a net.

    Attributes
    ----------
    axes
        One :class:`AxisGeometry` per spatial axis of the net, internal order
        ((x, y) for 2D nets, (z, x, y) for 3D nets).
    n_ch, n_lab
        Input channels and output classes.
    """

    axes: tuple[AxisGeometry, ...]
    n_ch: int
    n_lab: int

    @property
    def n_dim(self) -> int:
        return len(self.axes)

    @property
    def int_offset(self) -> tuple[int, ...]:
        return tuple(a.left for a in self.axes)

    @property
    def fov(self) -> tuple[int, ...]:
        return tuple(a.fov for a in self.axes)

    @property
    def step(self) -> tuple[int, ...]:
        return tuple(a.step for a in self.axes)


def net_geometry(model: Any) -> NetGeometry:
    """The dense-prediction geometry of an :class:`~elektronn.net.model.ElektronnNet`.

    FOV, step, smallest output and lattice come from the net's architecture calculator
    (``model.arch.dense_tiling()``), which also defines which inputs
    :func:`~elektronn.net.mfp.mfp_forward` (and a U-Net) accepts, so every tile this module
    sizes is one the net can run.

    Raises
    ------
    PredictionError
        For a net with an MLP head (it predicts one value per input patch, not a map).
    """
    if not model.spec.conv_output:
        raise PredictionError(
            "This net ends in fully connected (MLP) layers: it predicts one value per input "
            "patch (img-scalar / vect-scalar), so it cannot predict a dense probability map. "
            "Dense prediction needs an img-img net, whose output layer is convolutional."
        )
    axes = tuple(AxisGeometry(*row) for row in model.arch.dense_tiling())
    return NetGeometry(axes, model.n_ch, model.n_lab)
