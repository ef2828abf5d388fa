"""An elektronn net as the standalone :class:`~elektronn.export.dense_net.DenseNet`.

The conversion only renames weights (``conv_blocks.i.conv.*`` → ``layers.i.*``, the output
layer last); sizes come from the architecture calculator (:mod:`elektronn.arch`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch

from ..arch import field_of_view, valid_input_sizes
from ..net.model import ElektronnNet, NetSpec
from .dense_net import DenseNet


class ExportError(Exception):
    """A model that cannot be exported, or bad export options (one readable paragraph)."""


@dataclass(frozen=True)
class AxisSize:
    """Input sizes of one spatial axis of the dense net (internal order).

    ``min`` is the smallest valid input (``fov - 1 + stride``), ``step`` the valid-size step
    (the total pooling stride); the output is ``input - (fov - 1)``.
    """

    fov: int
    min: int
    step: int


def check_exportable(spec: NetSpec) -> None:
    """Refuse nets without a dense form, naming the layer that prevents it."""
    if spec.n_conv == 0:
        raise ExportError(
            "The net has no conv layers (vect-scalar): it cannot be exported as a bioimage.io "
            "image model; only img-img nets (conv layers and a 1x1 output layer) can."
        )
    if spec.rnn_layer_kwargs is not None:
        raise ExportError("Layer 'rnn' (recurrent) cannot be scripted as a dense image model.")
    if spec.mlp_layers:
        raise ExportError(
            f"Layer 'mlp 0' (fully connected, {spec.mlp_layers[0]} neurons) cannot be scripted "
            f"as a dense image model: it makes the net predict one value per input patch "
            f"(img-scalar). Only img-img nets (conv layers and the automatic 1x1 output layer) "
            f"map onto the bioimage.io format."
        )


def axis_sizes(spec: NetSpec) -> tuple[AxisSize, ...]:
    """Per spatial axis (internal order): FOV, smallest valid input and step, with MFP."""
    mfp = (True,) * spec.n_conv
    sizes = []
    for axis in range(spec.n_dim):
        filters = tuple(f[axis] for f in spec.filters)
        pools = tuple(p[axis] for p in spec.pool)
        valid = valid_input_sizes(filters, pools, mfp)
        sizes.append(AxisSize(field_of_view(filters, pools), valid[0], valid[1] - valid[0]))
    return tuple(sizes)


def dense_kwargs(spec: NetSpec, target: str) -> dict[str, Any]:
    """The keyword arguments of :class:`DenseNet` (plain lists: they go into rdf.yaml)."""
    ones = [1] * spec.n_dim
    return {
        "n_dim": spec.n_dim,
        "channels": [spec.n_ch, *spec.nof_filters, spec.n_lab],
        "filters": [list(f) for f in spec.filters] + [ones],
        "pools": [list(p) for p in spec.pool] + [ones],
        "pooling_modes": [*spec.pooling_mode, "max"],
        "activations": [*spec.activation_func, "linear"],
        "softmax": target == "nll",
    }


def dense_state_dict(model: ElektronnNet) -> dict[str, torch.Tensor]:
    """The net's weights under :class:`DenseNet`'s names."""
    blocks = [*model.conv_blocks, model.output_layer]
    return {
        f"layers.{i}.{name}": getattr(block.conv, name).detach().cpu().clone()
        for i, block in enumerate(blocks)
        for name in ("weight", "bias")
    }


def to_dense_net(model: ElektronnNet, target: str) -> DenseNet:
    """The dense equivalent of ``model`` (same weights), in eval mode."""
    check_exportable(model.spec)
    net = DenseNet(**dense_kwargs(model.spec, target))
    net.load_state_dict(dense_state_dict(model))
    return net.eval()


def script(net: DenseNet) -> torch.jit.ScriptModule:
    """TorchScript of the dense net; a failure names the layer types involved."""
    try:
        return torch.jit.script(net)
    except Exception as exc:  # TorchScript raises many types while compiling
        layers = ", ".join(sorted({type(m).__name__ for m in net.modules()}))
        raise ExportError(
            f"TorchScript cannot compile the dense net (layers: {layers}): "
            f"{str(exc).splitlines()[0]}"
        ) from None
