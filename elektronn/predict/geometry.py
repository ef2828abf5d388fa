"""Tile geometry of dense prediction with valid convolutions.

A net of valid convolutions maps an input of length ``n`` (per axis) to a dense output of
length ``n - (fov - 1)``: output voxel ``j`` sees the input window ``[j, j + fov)``. A strided
net (total pooling stride ``S``) produces that dense output, by MFP or by shift-and-stitch,
only for inputs ``fov - 1 + k*S`` (``k >= 1``), whose dense output is ``k*S``. These are
exactly the MFP-valid input sizes of the architecture calculator. Tiles of such sizes whose
outputs are adjacent blocks compute every output voxel once, so a tiled prediction equals
one pass over the whole volume.
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
    """

    fov: int
    step: int

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
        """The largest valid tile output <= ``n_output``, at least one step."""
        return max(self.step, n_output // self.step * self.step)

    def ceil_output(self, n_output: int) -> int:
        """The smallest valid tile output >= ``n_output``."""
        return max(self.step, -(-n_output // self.step) * self.step)


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

    FOV and stride come from the net's architecture calculator (``model.arch``), which also
    defines which inputs :func:`~elektronn.net.mfp.mfp_forward` accepts, so every tile
    this module sizes is one MFP can run.

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
    fov, stride = model.arch.fov, model.arch.stride
    axes = tuple(AxisGeometry(f, s) for f, s in zip(fov, stride, strict=True))
    return NetGeometry(axes, model.n_ch, model.n_lab)
