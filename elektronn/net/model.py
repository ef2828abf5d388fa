"""The ELEKTRONN net: conv layers, optional RNN, MLP layers and the automatic output layer.

:func:`build_model` reads the normalised config (see ``docs/internals.md``); everything the
net needs is first gathered into a :class:`NetSpec`, which parameter files store so that
prediction can rebuild the net without the training config.

Layer sequence (reference §2.1): conv blocks (valid convolutions, non-overlapping pooling),
then for vect-scalar an optional recurrent layer, then the MLP layers, then the output layer
with ``n_lab`` outputs, added automatically: a 1×1(×1) convolution for conv-only nets
(img-img), a linear layer otherwise. ``forward`` returns logits; the losses apply the softmax.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Any

from torch import Tensor, nn

from ..arch import CNNArchitecture, arch_from_layers
from .layers import ConvBlock, Perceptron, RecurrentLayer
from .mfp import mfp_forward
from .unet import UNet


@dataclass(frozen=True)
class NetSpec:
    """Everything that determines the layers of an :class:`ElektronnNet` (no weights).

    Per-layer, per-axis tuples are in internal axis order ((x, y) for 2D, (z, x, y) for 3D).

    Attributes
    ----------
    n_ch, n_lab
        Input channels and outputs (classes, or regression targets).
    n_dim
        2 or 3 for image nets (0 for vect-scalar nets without conv layers).
    filters, pool
        Per conv layer, per spatial axis.
    nof_filters, pooling_mode
        Per conv layer.
    activation_func, dropout_rates
        Per layer, conv then MLP; ``dropout_rates`` empty means no dropout at all.
    mlp_layers
        Neurons per fully connected layer.
    rnn_layer_kwargs
        ``dict(n_hid=..., activation_func=...)`` or None.
    input_shape
        Spatial input shape of image nets, or the example shape of vect-scalar nets
        (``(n_features,)``, ``(n_taps, features)`` with an RNN); needed to size the first
        fully connected layer, None for img-img nets.
    mfp
        ``forward`` uses Max Fragment Pooling in every pooling layer and returns the dense
        output (training with ``MFP``: the data then gives unstrided labels).
    architecture
        ``'cnn'`` (:class:`ElektronnNet`) or ``'unet'`` (:class:`~.unet.UNet`; ``filters``,
        ``pool``, ``nof_filters`` and ``activation_func`` are then per level).
    unet_n_convs, unet_upsampling, unet_batch_norm
        U-Net only: valid convolutions per level, ``'transposed'`` or ``'nearest'``, batch norm.
    """

    n_ch: int
    n_lab: int
    n_dim: int
    filters: tuple[tuple[int, ...], ...]
    pool: tuple[tuple[int, ...], ...]
    nof_filters: tuple[int, ...]
    pooling_mode: tuple[str, ...]
    activation_func: tuple[str, ...]
    dropout_rates: tuple[float, ...]
    mlp_layers: tuple[int, ...]
    rnn_layer_kwargs: dict[str, Any] | None
    input_shape: tuple[int, ...] | None
    mfp: bool = False
    architecture: str = "cnn"
    unet_n_convs: int = 2
    unet_upsampling: str = "transposed"
    unet_batch_norm: bool = False

    @property
    def n_conv(self) -> int:
        return len(self.nof_filters)

    @property
    def conv_output(self) -> bool:
        """True when the output layer is a 1×1 convolution (no MLP head, no RNN)."""
        return self.n_conv > 0 and not self.mlp_layers and self.rnn_layer_kwargs is None

    def dropout_rate(self, layer: int) -> float:
        return self.dropout_rates[layer] if self.dropout_rates else 0.0

    def to_dict(self) -> dict[str, Any]:
        """Plain Python values (what parameter files store)."""
        return asdict(self)

    @classmethod
    def from_dict(cls, values: dict[str, Any]) -> NetSpec:
        """Inverse of :meth:`to_dict` (lists from a file become tuples again)."""
        v = dict(values)
        for name in ("filters", "pool"):
            v[name] = tuple(tuple(int(n) for n in per_axis) for per_axis in v[name])
        for name in (
            "nof_filters",
            "pooling_mode",
            "activation_func",
            "dropout_rates",
            "mlp_layers",
        ):
            v[name] = tuple(v[name])
        if v["input_shape"] is not None:
            v["input_shape"] = tuple(int(n) for n in v["input_shape"])
        return cls(**v)

    def check(self) -> None:
        """Raise ValueError for inconsistent per-layer lists (one clear message each)."""
        n_conv, n_layers = self.n_conv, self.n_conv + len(self.mlp_layers)
        per_conv = {"filters": self.filters, "pool": self.pool, "pooling_mode": self.pooling_mode}
        for name, values in per_conv.items():
            if len(values) != n_conv:
                raise ValueError(f"'{name}' has {len(values)} entries for {n_conv} conv layers.")
        for layer, (f, p) in enumerate(zip(self.filters, self.pool, strict=True)):
            if len(f) != self.n_dim or len(p) != self.n_dim:
                raise ValueError(
                    f"Conv layer {layer}: filter {f} and pool {p} need one entry per axis "
                    f"of the n_dim={self.n_dim} net."
                )
        if len(self.activation_func) != n_layers:
            raise ValueError(
                f"'activation_func' has {len(self.activation_func)} entries for {n_layers} "
                f"layers (conv + MLP)."
            )
        if self.dropout_rates and len(self.dropout_rates) != n_layers:
            raise ValueError(
                f"'dropout_rates' has {len(self.dropout_rates)} entries for {n_layers} layers "
                f"(conv + MLP); give one per layer or []."
            )
        if self.architecture == "unet" and (self.mfp or not self.conv_output):
            raise ValueError(
                "A U-Net has a dense conv output: it takes neither MFP nor MLP / RNN layers."
            )
        if self.mfp and not self.conv_output:
            raise ValueError("MFP needs a net with a conv output (img-img, no MLP layers).")
        if not self.conv_output and self.input_shape is None:
            raise ValueError("A net with MLP layers needs the input (example) shape to size them.")


def spec_from_config(config: Any, n_ch: int, n_lab: int, example_shape=None) -> NetSpec:
    """Gather the net options of a normalised config into a :class:`NetSpec`.

    ``example_shape`` (from the data) wins over ``config.arch.input_shape`` for sizing the
    first fully connected layer, because it is what the net will actually be fed.
    """
    vect = config.mode == "vect-scalar"
    arch = None if vect else config.arch
    filters = () if vect else tuple(tuple(int(n) for n in f) for f in arch.filters)
    pool = () if vect else tuple(tuple(int(n) for n in p) for p in arch.pool)
    n_dim = 0 if vect else int(config.n_dim)
    if vect:
        input_shape = None if example_shape is None else tuple(example_shape)
    elif example_shape is not None:
        input_shape = tuple(example_shape)[-n_dim:]
    else:
        input_shape = tuple(arch.input_shape) if arch.input_shape else None
    spec = NetSpec(
        n_ch=int(n_ch),
        n_lab=int(n_lab),
        n_dim=n_dim,
        filters=filters,
        pool=pool,
        nof_filters=tuple(int(n) for n in config.nof_filters) if not vect else (),
        pooling_mode=tuple(config.pooling_mode) if not vect else (),
        activation_func=tuple(config.activation_func),
        dropout_rates=tuple(float(r) for r in config.dropout_rates or ()),
        mlp_layers=tuple(int(n) for n in config.MLP_layers),
        rnn_layer_kwargs=dict(config.rnn_layer_kwargs) if config.rnn_layer_kwargs else None,
        input_shape=input_shape,
        mfp=mfp_in_training(getattr(config, "MFP", None), pool),
        **unet_options(config),
    )
    spec.check()
    return spec


def unet_options(config: Any) -> dict[str, Any]:
    """The U-Net fields of a :class:`NetSpec` (nothing for a CNN, so CNN specs stay as before).

    Configs made before the option existed (and stand-ins without it) describe CNNs.
    """
    if getattr(config, "architecture", "cnn") != "unet":
        return {}
    return {
        "architecture": "unet",
        "unet_n_convs": int(config.unet_n_convs),
        "unet_upsampling": config.unet_upsampling,
        "unet_batch_norm": bool(config.unet_batch_norm),
    }


def mfp_in_training(mfp: list[bool] | None, pool: tuple[tuple[int, ...], ...]) -> bool:
    """Whether ``forward`` must give the dense (MFP) output; partial MFP is refused.

    With MFP the data pipeline gives unstrided labels, which only a dense output matches; a
    pooling layer without MFP would leave the output strided (reference §2.3).
    """
    pooled = [bool(m) for m, p in zip(mfp or [], pool, strict=False) if math.prod(p) > 1]
    if any(pooled) and not all(pooled):
        raise ValueError(
            f"MFP is on in some pooling layers but not in all (MFP={list(mfp)}). The output of "
            f"such a net is neither dense nor strided like its labels; switch MFP on in every "
            f"layer that pools, or off (MFP=[]) for training."
        )
    return any(pooled)


def net_architecture(spec: NetSpec) -> CNNArchitecture | None:
    """The calculator's geometry of the net's conv layers (None without conv layers).

    Every size the net, MFP and dense prediction use comes from it, so they cannot disagree
    with the config checks or the data pipeline.
    """
    if not spec.n_conv:
        return None
    return arch_from_layers(spec.n_dim, spec.filters, spec.pool, spec.mfp, spec.input_shape)


class ElektronnNet(nn.Module):
    """The network; ``forward(x)`` returns logits.

    Shapes: input ``(bs, ch, *spatial)`` for image nets, ``(bs, n_features)`` (or
    ``(bs, n_taps, features)`` with an RNN) for vect-scalar nets; output
    ``(bs, n_lab, *spatial_out)`` for conv outputs, ``(bs, n_lab)`` otherwise.

    Attributes
    ----------
    spec
        The :class:`NetSpec` it was built from.
    arch
        Its :class:`~elektronn.arch.CNNArchitecture` (FOV, stride, valid sizes, per-layer
        shapes for any input), or None for a net without conv layers.
    conv_blocks
        ``nn.ModuleList`` of :class:`~elektronn.net.layers.ConvBlock` (what MFP walks).
    rnn
        The :class:`~elektronn.net.layers.RecurrentLayer` or None.
    mlp
        ``nn.ModuleList`` of :class:`~elektronn.net.layers.Perceptron` (empty for img-img).
    output_layer
        1×1(×1) ``ConvBlock`` or linear ``Perceptron`` with ``n_lab`` outputs, never dropout.
    """

    def __init__(self, spec: NetSpec) -> None:
        super().__init__()
        spec.check()
        self.spec = spec
        self.n_ch, self.n_lab, self.n_dim = spec.n_ch, spec.n_lab, spec.n_dim
        self.arch = net_architecture(spec)
        self.conv_blocks = nn.ModuleList(self._conv_layers())
        n_in = spec.nof_filters[-1] if spec.n_conv else spec.n_ch
        if spec.conv_output:
            self.rnn = None
            self.mlp = nn.ModuleList()
            ones = (1,) * spec.n_dim
            self.output_layer: nn.Module = ConvBlock(
                n_in, spec.n_lab, ones, ones, activation="linear"
            )
            return
        n_in = self._head_inputs()
        self.rnn = self._recurrent_layer(n_in)
        if self.rnn is not None:
            n_in = self.rnn.rnn.hidden_size
        self.mlp = nn.ModuleList()
        for j, n_out in enumerate(spec.mlp_layers):
            layer = spec.n_conv + j
            act, rate = spec.activation_func[layer], spec.dropout_rate(layer)
            self.mlp.append(Perceptron(n_in, n_out, act, rate))
            n_in = n_out
        self.output_layer = Perceptron(n_in, spec.n_lab, "linear")

    def _conv_layers(self) -> list[ConvBlock]:
        spec, n_in, layers = self.spec, self.spec.n_ch, []
        for i, n_out in enumerate(spec.nof_filters):
            act, rate = spec.activation_func[i], spec.dropout_rate(i)
            layers.append(
                ConvBlock(
                    n_in, n_out, spec.filters[i], spec.pool[i], spec.pooling_mode[i], act, rate
                )
            )
            n_in = n_out
        return layers

    def _head_inputs(self) -> int:
        """Features entering the RNN / first fully connected layer."""
        spec = self.spec
        if spec.n_conv == 0:
            return spec.input_shape[-1] if spec.rnn_layer_kwargs else math.prod(spec.input_shape)
        if spec.rnn_layer_kwargs is not None:
            raise ValueError("A recurrent layer cannot follow conv layers (vect-scalar only).")
        return spec.nof_filters[-1] * math.prod(self.arch.output_shape_for(spec.input_shape, False))

    def _recurrent_layer(self, n_in: int) -> RecurrentLayer | None:
        kwargs = self.spec.rnn_layer_kwargs
        if kwargs is None:
            return None
        return RecurrentLayer(n_in, int(kwargs["n_hid"]), kwargs.get("activation_func", "tanh"))

    def features(self, x: Tensor) -> Tensor:
        """The conv blocks with ordinary (strided) pooling; invalid input sizes are refused."""
        if self.arch is not None:
            self.arch.layer_shapes_for(x.shape[2:], mfp=False)
        for block in self.conv_blocks:
            x = block(x)
        return x

    def head(self, h: Tensor) -> Tensor:
        """Everything after the conv blocks: RNN / MLP and the output layer."""
        if self.spec.conv_output:
            return self.output_layer(h)
        h = self.rnn(h) if self.rnn is not None else h.flatten(1)
        for layer in self.mlp:
            h = layer(h)
        return self.output_layer(h)

    def strided_forward(self, x: Tensor) -> Tensor:
        """Logits without MFP: conv outputs on the grid of the total pooling stride."""
        return self.head(self.features(x))

    def forward(self, x: Tensor) -> Tensor:
        if self.spec.mfp:
            return mfp_forward(self, x)
        return self.strided_forward(x)


def net_from_spec(spec: NetSpec) -> nn.Module:
    """The net a spec describes: an :class:`ElektronnNet` (CNN) or a :class:`~.unet.UNet`."""
    return UNet(spec) if spec.architecture == "unet" else ElektronnNet(spec)


def build_model(config: Any, n_ch: int, n_lab: int, example_shape=None) -> nn.Module:
    """Build the net that a (normalised) config describes.

    Parameters
    ----------
    config
        Reads ``mode``, ``n_dim``, ``arch.filters``/``arch.pool`` (internal order),
        ``nof_filters``, ``pooling_mode``, ``activation_func``, ``dropout_rates``,
        ``MLP_layers``, ``rnn_layer_kwargs`` and ``MFP``; ``arch.input_shape`` sizes the MLP
        of img-scalar nets when ``example_shape`` is not given.
    n_ch, n_lab
        Input channels and number of outputs (classes).
    example_shape
        Shape of one example from the data (``(ch, *spatial)`` or the vect-scalar example
        shape); required for vect-scalar nets.

    Raises
    ------
    ValueError
        For inconsistent options (with the option named) or input shapes the layers cannot take.
    """
    return net_from_spec(spec_from_config(config, n_ch, n_lab, example_shape))
