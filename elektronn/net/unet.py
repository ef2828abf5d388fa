"""The valid-convolution U-Net (Ronneberger et al. 2015): encoder, bottom, decoder with skips.

Every size comes from the architecture calculator (:class:`~elektronn.arch.UNetArchitecture`,
``UNet.arch``): the forward pass refuses an input that is not a valid size, naming the level,
instead of letting torch's pooling drop a remainder. Skips are cropped symmetrically to the
decoder's length (the calculator guarantees even crops). Normalisation is batch norm only:
with running statistics in eval mode a voxel's prediction does not depend on the tile around
it, which exact tiled prediction needs (instance or group norm over the tile would).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ..arch import UNetArchitecture, unet_from_layers
from .layers import PositionDropout, activation_function, init_conv_


class ConvStack(nn.Module):
    """``n_convs`` valid convolutions of one level, each (batch norm and) an activation."""

    def __init__(
        self,
        n_in: int,
        n_out: int,
        filters: Sequence[int],
        n_convs: int,
        activation: str,
        batch_norm: bool,
        dropout_rate: float,
    ) -> None:
        super().__init__()
        conv_class = nn.Conv2d if len(filters) == 2 else nn.Conv3d
        norm_class = nn.BatchNorm2d if len(filters) == 2 else nn.BatchNorm3d
        self.convs = nn.ModuleList()
        self.norms = nn.ModuleList()
        for i in range(n_convs):
            conv = conv_class(n_in if i == 0 else n_out, n_out, tuple(filters))
            init_conv_(conv, activation, (1,) * len(filters))
            self.convs.append(conv)
            if batch_norm:
                self.norms.append(norm_class(n_out))
        self._act = activation_function(activation)
        self.dropout = PositionDropout(dropout_rate) if dropout_rate > 0 else None

    def forward(self, x: Tensor) -> Tensor:
        for i, conv in enumerate(self.convs):
            x = conv(x)
            if self.norms:
                x = self.norms[i](x)
            x = self._act(x)
        return x if self.dropout is None else self.dropout(x)


def up_sampling(n_in: int, n_out: int, pool: Sequence[int], mode: str) -> nn.Module:
    """Up-sampling by ``pool`` to ``n_out`` maps: a transposed conv, or nearest + 1x1 conv."""
    n_dim = len(pool)
    if mode == "transposed":
        cls = nn.ConvTranspose2d if n_dim == 2 else nn.ConvTranspose3d
        return cls(n_in, n_out, tuple(pool), stride=tuple(pool))
    conv = (nn.Conv2d if n_dim == 2 else nn.Conv3d)(n_in, n_out, 1)
    return nn.Sequential(nn.Upsample(scale_factor=tuple(float(p) for p in pool)), conv)


def centre_crop(x: Tensor, shape: Sequence[int]) -> Tensor:
    """The centre of ``x`` with spatial ``shape`` (margins are even: equal on both sides)."""
    return x[(..., *(slice((n - s) // 2, (n - s) // 2 + s) for n, s in zip(x.shape[2:], shape)))]


class UNet(nn.Module):
    """Valid U-Net with ``n_lab`` logits; same interface as :class:`~.model.ElektronnNet`.

    Attributes
    ----------
    spec
        The :class:`~.model.NetSpec` (``architecture='unet'``; per-level ``filters``,
        ``pool``, ``nof_filters``, ``activation_func``).
    arch
        Its :class:`~elektronn.arch.UNetArchitecture` (per level filters, pools, lengths).
    encoder, up, decoder
        Per level: the encoder's convs, the up-sampling into the level and its decoder convs
        (``up`` and ``decoder`` have one entry less: the bottom level has none).
    output_layer
        1x1(x1) convolution to ``n_lab`` outputs.
    """

    def __init__(self, spec: Any) -> None:
        super().__init__()
        spec.check()
        self.spec = spec
        self.n_ch, self.n_lab, self.n_dim = spec.n_ch, spec.n_lab, spec.n_dim
        self.arch: UNetArchitecture = unet_from_layers(
            spec.n_dim, spec.filters, spec.pool, spec.unet_n_convs, spec.unet_upsampling,
            spec.unet_batch_norm, spec.input_shape,
        )  # fmt: skip
        nof, levels = spec.nof_filters, self.arch.levels

        def stack(i: int, n_in: int) -> ConvStack:
            return ConvStack(
                n_in, nof[i], levels[i].filter, spec.unet_n_convs,
                spec.activation_func[i], spec.unet_batch_norm, spec.dropout_rate(i),
            )  # fmt: skip

        above_bottom = range(len(levels) - 1)
        self.encoder = nn.ModuleList(
            stack(i, nof[i - 1] if i else spec.n_ch) for i in range(len(levels))
        )
        self.up = nn.ModuleList(
            up_sampling(nof[i + 1], nof[i], levels[i].pool, spec.unet_upsampling)
            for i in above_bottom
        )
        self.decoder = nn.ModuleList(stack(i, 2 * nof[i]) for i in above_bottom)
        conv_class = nn.Conv2d if spec.n_dim == 2 else nn.Conv3d
        self.output_layer = conv_class(nof[0], spec.n_lab, 1)
        init_conv_(self.output_layer, "linear", (1,) * spec.n_dim)

    def forward(self, x: Tensor) -> Tensor:
        self.arch.layer_shapes_for(x.shape[2:])
        skips = []
        *upper, bottom = self.encoder
        for block, level in zip(upper, self.arch.levels):
            x = block(x)
            skips.append(x)
            if any(p > 1 for p in level.pool):
                x = (F.max_pool2d if self.n_dim == 2 else F.max_pool3d)(x, level.pool)
        x = bottom(x)
        for level in reversed(range(len(self.up))):
            x = self.up[level](x)
            x = torch.cat([centre_crop(skips[level], x.shape[2:]), x], 1)
            x = self.decoder[level](x)
        return self.output_layer(x)
