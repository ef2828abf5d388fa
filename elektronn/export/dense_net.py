"""The dense (full-resolution) form of an elektronn img-img net, in plain PyTorch.

This file is shipped inside exported bioimage.io packages as the architecture of the
``pytorch_state_dict`` weights (:class:`ScaledInput` around the dense net) and is the module
that is exported for the ``onnx`` and ``torchscript`` weights, so it imports nothing but
``torch``: consumers (ilastik, deepImageJ, napari,
bioimageio.core) can run it without elektronn installed.

Max Fragment Pooling is folded in as dilation: pooling by ``p`` with stride 1, and every
later filter and pooling window dilated by the stride accumulated so far, computes in one
call, for every input shift, exactly what MFP's fragments compute, so the output of an input
``n`` (per spatial axis) is the dense map of length ``n - fov + 1`` and no re-interleaving is
needed. Layer order as in elektronn: valid convolution, pooling (``max`` or ``maxabs``), bias,
activation; the last layer is the 1x1 output layer, followed by a softmax for classification
(a sigmoid per channel for affinities).

:class:`DenseUNet` is elektronn's valid U-Net (``elektronn.net.unet``) without its size checks
(which need elektronn's architecture calculator): its output is dense already.
"""

import torch
import torch.nn.functional as F
from torch import Tensor, nn


def probabilities(x: Tensor, output: str) -> Tensor:
    """The net's outputs as the training's target reads them (the package's output)."""
    if output == "softmax":
        return torch.softmax(x, dim=1)
    return torch.sigmoid(x) if output == "sigmoid" else x


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
    output
        ``"softmax"`` over the class axis (classification), ``"sigmoid"`` of each channel
        (affinities), or ``"linear"`` (regression).
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
        output: str = "softmax",
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
        self.output = output

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
        return probabilities(x, self.output)


class ConvStack(nn.Module):
    """One U-Net level's valid convolutions, each (batch norm and) an activation."""

    activation: str

    def __init__(
        self, n_in: int, n_out: int, filters: list[int], n_convs: int, activation: str,
        batch_norm: bool,
    ) -> None:  # fmt: skip
        super().__init__()
        conv = nn.Conv2d if len(filters) == 2 else nn.Conv3d
        norm = nn.BatchNorm2d if len(filters) == 2 else nn.BatchNorm3d
        ins = [n_in] + [n_out] * (n_convs - 1)
        self.convs = nn.ModuleList(conv(n, n_out, filters) for n in ins)
        # nn.Identity has no state: without batch norm the state dict holds only convs
        self.norms = nn.ModuleList(norm(n_out) if batch_norm else nn.Identity() for _ in ins)
        self.activation = activation

    def forward(self, x: Tensor) -> Tensor:
        for conv, norm in zip(self.convs, self.norms):
            x = activate(norm(conv(x)), self.activation)
        return x


class UpLevel(nn.Module):
    """Up-sampling into a level, concatenation with the centred skip, the level's convs."""

    def __init__(self, up: nn.Module, stack: ConvStack) -> None:
        super().__init__()
        self.up = up
        self.stack = stack

    def forward(self, x: Tensor, skip: Tensor) -> Tensor:
        x = self.up(x)
        for d in range(2, x.dim()):  # centre crop: the margins are even
            skip = skip.narrow(d, (skip.shape[d] - x.shape[d]) // 2, x.shape[d])
        return self.stack(torch.cat([skip, x], 1))


class DenseUNet(nn.Module):
    """elektronn's valid U-Net, whose output is dense: ``(bs, n_out, *(spatial - fov + 1))``.

    Parameters
    ----------
    n_dim, n_ch, n_lab
        Spatial dimensions (2: ``(bs, ch, x, y)``, 3: ``(bs, ch, z, x, y)``), channels, classes.
    nof_filters, filters, pools, activations
        Per level (top first): feature maps, filter shape, pooling window and activation.
    n_convs, upsampling, batch_norm
        Convolutions per level, ``'transposed'`` or ``'nearest'`` (+ 1x1 conv), batch norm.
    output
        ``"softmax"`` over the class axis (classification), ``"sigmoid"`` of each channel
        (affinities), or ``"linear"`` (regression).
    """

    pools: list[list[int]]

    def __init__(
        self, n_dim: int, n_ch: int, n_lab: int, nof_filters: list[int],
        filters: list[list[int]], pools: list[list[int]], activations: list[str],
        n_convs: int = 2, upsampling: str = "transposed", batch_norm: bool = False,
        output: str = "softmax",
    ) -> None:  # fmt: skip
        super().__init__()
        nof, levels = nof_filters, range(len(nof_filters))

        def stack(level: int, n_in: int) -> ConvStack:
            return ConvStack(n_in, nof[level], filters[level], n_convs, activations[level],
                             batch_norm)  # fmt: skip

        conv = nn.Conv2d if n_dim == 2 else nn.Conv3d
        self.encoder = nn.ModuleList(stack(i, nof[i - 1] if i else n_ch) for i in levels)
        self.decoder = nn.ModuleList(
            UpLevel(up_sampling(nof[i + 1], nof[i], pools[i], upsampling), stack(i, 2 * nof[i]))
            for i in reversed(levels[:-1])
        )  # bottom first, the order of the forward pass
        self.output_layer = conv(nof[0], n_lab, 1)
        self.pools = [list(p) for p in pools[:-1]]
        self.output = output

    def forward(self, x: Tensor) -> Tensor:
        skips: list[Tensor] = []
        for level, block in enumerate(self.encoder):
            x = block(x)
            if level < len(self.pools):
                skips.append(x)
                if max(self.pools[level]) > 1:
                    x = pool_down(x, self.pools[level])
        for i, level in enumerate(self.decoder):
            x = level(x, skips[len(skips) - 1 - i])
        x = self.output_layer(x)
        return probabilities(x, self.output)


def pool_down(x: Tensor, window: list[int]) -> Tensor:
    """Non-overlapping max pooling (window = stride), the U-Net's down-sampling."""
    if len(window) == 2:
        return F.max_pool2d(x, window)
    return F.max_pool3d(x, window)


def up_sampling(n_in: int, n_out: int, pool: list[int], mode: str) -> nn.Module:
    """A transposed conv by ``pool``, or nearest up-sampling and a 1x1 conv."""
    if mode == "transposed":
        cls = nn.ConvTranspose2d if len(pool) == 2 else nn.ConvTranspose3d
        return cls(n_in, n_out, pool, stride=pool)
    conv = (nn.Conv2d if len(pool) == 2 else nn.Conv3d)(n_in, n_out, 1)
    return nn.Sequential(nn.Upsample(scale_factor=tuple(float(p) for p in pool)), conv)


class ScaledInput(nn.Module):
    """The training's input transform, then the dense net: the package's whole model.

    Grey values above 1 are scaled by ``gain`` (the training's scaling of its integer images,
    e.g. 1/255 for uint8); an input whose maximum is at most 1 is taken as already scaled to
    [0, 1], so float images in [0, 1] and uint8 images of the same picture give the same
    output (bioimage.io preprocessing cannot look at the input's type). Then the training's
    standardisation ``(x - mean) / std``.

    Parameters
    ----------
    net, net_kwargs
        ``'DenseNet'`` or ``'DenseUNet'`` and its keyword arguments.
    gain, mean, std
        The scaling of grey values above 1 and the standardisation (0 and 1: none).
    """

    def __init__(
        self, net: str, net_kwargs: dict, gain: float = 1.0, mean: float = 0.0, std: float = 1.0
    ) -> None:
        super().__init__()
        self.net = {"DenseNet": DenseNet, "DenseUNet": DenseUNet}[net](**net_kwargs)
        self.gain, self.mean, self.std = float(gain), float(mean), float(std)

    def forward(self, x: Tensor) -> Tensor:
        x = x.float()
        x = torch.where(x.max() > 1.0, x * self.gain, x)
        return self.net((x - self.mean) / self.std)
