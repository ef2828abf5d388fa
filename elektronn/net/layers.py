"""Building blocks of ELEKTRONN nets: activations, max/maxabs pooling, dropout and layers.

The layers keep the order of operations of ELEKTRONN 1.x (reference §2.5): a valid
convolution (or matrix product) without bias, then pooling, then dropout, then the bias,
then the activation. Pooling before the bias matters for ``maxabs`` (the sign decision is
made on the raw response), and dropout before the bias means a dropped unit outputs
``act(b)``, not 0, as in the original. Initialisation follows the original's ``initWeights``
so that learning rates tuned for ELEKTRONN 1.x configs carry over.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ..config.options import POOLING_MODES


def _identity(x: Tensor) -> Tensor:
    return x


#: The activation names of the config option ``activation_func`` (``sig`` is the sigmoid).
ACTIVATIONS: dict[str, Callable[[Tensor], Tensor]] = {
    "tanh": torch.tanh,
    "abs": torch.abs,
    "linear": _identity,
    "sig": torch.sigmoid,
    "relu": torch.relu,
}


#: Conv bias init for activations that are not relu or sig: tiny but not exactly 0, as the original.
SMALL_BIAS = 1e-6


def activation_function(name: str) -> Callable[[Tensor], Tensor]:
    """The element-wise function for an ``activation_func`` entry.

    Raises
    ------
    ValueError
        For a name that is not one of :data:`ACTIVATIONS`.
    """
    if name not in ACTIVATIONS:
        raise ValueError(f"Activation {name!r} is unknown: use one of {', '.join(ACTIVATIONS)}.")
    return ACTIVATIONS[name]


def pool_nd(x: Tensor, pool: Sequence[int], mode: str) -> Tensor:
    """Non-overlapping pooling of ``(bs, ch, *spatial)`` with window = stride = ``pool``.

    ``maxabs`` keeps, per window, the element of larger absolute value with its sign: the
    window maximum if it is at least minus the window minimum, else the minimum (ties go to
    the positive value, as in the original). Lengths must divide by ``pool``: the net checks
    its inputs with the architecture calculator, because torch would drop a remainder.
    """
    if all(p == 1 for p in pool):
        return x
    max_pool = F.max_pool2d if len(pool) == 2 else F.max_pool3d
    high = max_pool(x, tuple(pool))
    if mode == "max":
        return high
    low = -max_pool(-x, tuple(pool))
    return torch.where(high >= -low, high, low)


class PositionDropout(nn.Module):
    """Inverted dropout with one gate per example and unit ("fail" rate ``rate``).

    For conv feature maps a unit is a spatial position: all channels at a position share
    one gate, as in ELEKTRONN 1.x. Unlike the original, gates are drawn per example
    rather than once per batch (the original's sharing came from Theano's fixed shapes and
    only made the noise less diverse). Off in ``eval()`` mode.
    """

    def __init__(self, rate: float) -> None:
        super().__init__()
        if not 0.0 <= rate < 1.0:
            raise ValueError(f"A dropout (fail) rate must be in [0, 1), not {rate}.")
        self.rate = float(rate)

    def forward(self, x: Tensor) -> Tensor:
        if not self.training or self.rate == 0.0:
            return x
        keep = 1.0 - self.rate
        shape = (x.shape[0], 1, *x.shape[2:]) if x.dim() > 2 else x.shape
        gate = torch.bernoulli(torch.full(shape, keep, dtype=x.dtype, device=x.device))
        return x * gate / keep

    def extra_repr(self) -> str:
        return f"rate={self.rate}"


def init_bias_(bias: Tensor, activation: str, relu_value: float) -> None:
    """Bias init of the original: relu → ``relu_value``, sig → 0.5, else uniform(±1e-6)."""
    with torch.no_grad():
        if activation == "relu":
            bias.fill_(relu_value)
        elif activation == "sig":
            bias.fill_(0.5)
        else:
            bias.uniform_(-SMALL_BIAS, SMALL_BIAS)


def init_conv_(conv: nn.Conv2d | nn.Conv3d, activation: str, pool: Sequence[int]) -> None:
    """Glorot-normal conv weights with the original's fan-out (divided by the pool size).

    σ = sqrt(2 / (n_in + n_out)) with n_in = ch·prod(filter) and
    n_out = nof·prod(filter) // prod(pool) (integer division as in the original). The relu
    bias is 1/prod(filter), which keeps the initial responses of deep relu nets positive.
    """
    n_filter = math.prod(conv.kernel_size)
    fan_in = conv.in_channels * n_filter
    fan_out = conv.out_channels * n_filter // math.prod(pool)
    with torch.no_grad():
        conv.weight.normal_(0.0, math.sqrt(2.0 / (fan_in + fan_out)))
    init_bias_(conv.bias, activation, 1.0 / n_filter)


def init_linear_(linear: nn.Linear, activation: str) -> None:
    """Uniform(±sqrt(2/(n_in+n_out))) weights (the original's "glorot" scale) and relu bias 1."""
    bound = math.sqrt(2.0 / (linear.in_features + linear.out_features))
    with torch.no_grad():
        linear.weight.uniform_(-bound, bound)
    init_bias_(linear.bias, activation, 1.0)


class ConvBlock(nn.Module):
    """Valid convolution → pooling → dropout → bias → activation (one conv layer).

    Attributes
    ----------
    conv
        The ``nn.Conv2d``/``nn.Conv3d`` holding weight and bias (``kernel_size`` is the
        filter in internal axis order).
    pool
        Pooling factor per spatial axis (window = stride).
    pooling_mode
        ``'max'`` or ``'maxabs'``.
    activation
        Name of the activation (a key of :data:`ACTIVATIONS`).
    dropout
        A :class:`PositionDropout`, or None when the layer has no dropout.

    :meth:`convolve` and :meth:`finish` split the forward pass where Max Fragment Pooling
    has to crop the conv output into fragments before pooling.
    """

    def __init__(
        self,
        n_in: int,
        n_out: int,
        filters: Sequence[int],
        pool: Sequence[int],
        pooling_mode: str = "max",
        activation: str = "relu",
        dropout_rate: float = 0.0,
    ) -> None:
        super().__init__()
        if len(filters) not in (2, 3) or len(pool) != len(filters):
            raise ValueError(
                f"Filter {tuple(filters)} and pool {tuple(pool)} must be 2D or 3D alike."
            )
        if pooling_mode not in POOLING_MODES:
            raise ValueError(f"Pooling {pooling_mode!r} is unknown: use 'max' or 'maxabs'.")
        conv_class = nn.Conv2d if len(filters) == 2 else nn.Conv3d
        self.conv = conv_class(n_in, n_out, tuple(int(f) for f in filters))
        self.pool = tuple(int(p) for p in pool)
        self.pooling_mode = pooling_mode
        self.activation = activation
        self._act = activation_function(activation)
        self._conv_fn = F.conv2d if len(filters) == 2 else F.conv3d
        self.dropout = PositionDropout(dropout_rate) if dropout_rate > 0 else None
        init_conv_(self.conv, activation, self.pool)

    def convolve(self, x: Tensor) -> Tensor:
        """The valid convolution without bias (the bias comes after pooling and dropout)."""
        return self._conv_fn(x, self.conv.weight)

    def finish(self, h: Tensor) -> Tensor:
        """Pooling, dropout, bias and activation of a (cropped) conv response."""
        h = pool_nd(h, self.pool, self.pooling_mode)
        if self.dropout is not None:
            h = self.dropout(h)
        h = h + self.conv.bias.view(1, -1, *([1] * (h.dim() - 2)))
        return self._act(h)

    def forward(self, x: Tensor) -> Tensor:
        return self.finish(self.convolve(x))

    def extra_repr(self) -> str:
        return (
            f"pool={self.pool}, pooling_mode={self.pooling_mode!r}, activation={self.activation!r}"
        )


class Perceptron(nn.Module):
    """Fully connected layer: matrix product → dropout → bias → activation."""

    def __init__(self, n_in: int, n_out: int, activation: str = "relu", dropout_rate: float = 0.0):
        super().__init__()
        self.linear = nn.Linear(n_in, n_out)
        self.activation = activation
        self._act = activation_function(activation)
        self.dropout = PositionDropout(dropout_rate) if dropout_rate > 0 else None
        init_linear_(self.linear, activation)

    def forward(self, x: Tensor) -> Tensor:
        h = F.linear(x, self.linear.weight)
        if self.dropout is not None:
            h = self.dropout(h)
        return self._act(h + self.linear.bias)

    def extra_repr(self) -> str:
        return f"activation={self.activation!r}"


class RecurrentLayer(nn.Module):
    """Elman RNN over ``(bs, n_taps, features)``; its output is the last hidden state.

    ``rnn_layer_kwargs = dict(n_hid=..., activation_func='tanh' | 'relu')``. The
    hidden-to-hidden matrix starts as uniform(−1, 1) divided by its largest singular value
    (spectral radius ≤ 1, so the state neither explodes nor dies at the start), as in the
    original; input weights use the perceptron init, biases start at 0.
    """

    def __init__(self, n_in: int, n_hid: int, activation: str = "tanh") -> None:
        super().__init__()
        if activation not in ("tanh", "relu"):
            raise ValueError(
                f"The recurrent layer supports activation 'tanh' or 'relu', not {activation!r}."
            )
        self.activation = activation
        self.rnn = nn.RNN(n_in, n_hid, nonlinearity=activation, batch_first=True)
        bound = math.sqrt(2.0 / (n_in + n_hid))
        with torch.no_grad():
            self.rnn.weight_ih_l0.uniform_(-bound, bound)
            w_hh = torch.empty(n_hid, n_hid).uniform_(-1.0, 1.0)
            self.rnn.weight_hh_l0.copy_(w_hh / torch.linalg.matrix_norm(w_hh, ord=2))
            self.rnn.bias_ih_l0.zero_()
            self.rnn.bias_hh_l0.zero_()

    def forward(self, x: Tensor) -> Tensor:
        _, last = self.rnn(x)
        return last[0]
