"""The dense (full-resolution) form of an elektronn img-img net, in plain PyTorch.

This file is shipped inside exported bioimage.io packages as the architecture of the
``pytorch_state_dict`` weights and is the module that is scripted for the ``torchscript``
weights, so it imports nothing but ``torch``: consumers (ilastik, deepImageJ, napari,
bioimageio.core) can run it without elektronn installed.

Max Fragment Pooling is folded in as dilation: pooling by ``p`` with stride 1, and every
later filter and pooling window dilated by the stride accumulated so far, computes in one
call, for every input shift, exactly what MFP's fragments compute, so the output of an input
``n`` (per spatial axis) is the dense map of length ``n - fov + 1`` and no re-interleaving is
needed. Layer order as in elektronn: valid convolution, pooling (``max`` or ``maxabs``), bias,
activation; the last layer is the 1x1 output layer, followed by a softmax for classification.
"""

import torch
import torch.nn.functional as F
from torch import Tensor, nn


def activate(x: Tensor, name: str) -> Tensor:
    """The element-wise activation of elektronn's ``activation_func`` names."""
    if name == "relu":
        return torch.relu(x)
    if name == "tanh":
        return torch.tanh(x)
    if name == "sig":
        return torch.sigmoid(x)
    if name == "abs":
        return torch.abs(x)
    return x


def max_pool(x: Tensor, window: list[int], dilation: list[int]) -> Tensor:
    """Stride-1 max pooling with a dilated window (2D or 3D)."""
    if len(window) == 2:
        return F.max_pool2d(x, window, [1, 1], [0, 0], dilation)
    return F.max_pool3d(x, window, [1, 1, 1], [0, 0, 0], dilation)


class DenseNet(nn.Module):
    """Valid-convolution net whose output is dense: ``(bs, n_out, *(spatial - fov + 1))``.

    Parameters
    ----------
    n_dim
        2 (input ``(bs, ch, x, y)``) or 3 (``(bs, ch, z, x, y)``).
    channels
        Input channels, then the outputs of every layer (the last entry: classes).
    filters, pools
        Per layer, per spatial axis (the output layer: all 1).
    pooling_modes, activations
        Per layer: ``'max'`` / ``'maxabs'`` and an elektronn activation name.
    softmax
        Apply a softmax over the class axis (classification); off for regression.
    """

    dilations: list[list[int]]
    pools: list[list[int]]
    pooling_modes: list[str]
    activations: list[str]

    def __init__(
        self,
        n_dim: int,
        channels: list[int],
        filters: list[list[int]],
        pools: list[list[int]],
        pooling_modes: list[str],
        activations: list[str],
        softmax: bool = True,
    ) -> None:
        super().__init__()
        conv = nn.Conv2d if n_dim == 2 else nn.Conv3d
        self.layers = nn.ModuleList()
        self.dilations = []
        stride = [1] * n_dim
        for i, (f, p) in enumerate(zip(filters, pools)):
            self.layers.append(conv(channels[i], channels[i + 1], f, dilation=stride))
            self.dilations.append(list(stride))
            stride = [s * q for s, q in zip(stride, p)]
        self.n_dim = n_dim
        self.pools = [list(p) for p in pools]
        self.pooling_modes = list(pooling_modes)
        self.activations = list(activations)
        self.softmax = softmax

    def forward(self, x: Tensor) -> Tensor:
        for i, layer in enumerate(self.layers):
            dilation = self.dilations[i]
            if self.n_dim == 2:
                h = F.conv2d(x, layer.weight, None, 1, 0, dilation)
            else:
                h = F.conv3d(x, layer.weight, None, 1, 0, dilation)
            window = self.pools[i]
            if max(window) > 1:
                high = max_pool(h, window, dilation)
                if self.pooling_modes[i] == "maxabs":
                    low = -max_pool(-h, window, dilation)
                    high = torch.where(high >= -low, high, low)
                h = high
            bias = layer.bias
            assert bias is not None
            shape = [1, -1] + [1] * self.n_dim
            x = activate(h + bias.view(shape), self.activations[i])
        return torch.softmax(x, dim=1) if self.softmax else x
