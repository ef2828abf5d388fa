"""An elektronn net as the standalone :class:`~elektronn.export.dense_net.DenseNet` (a CNN) or
:class:`~elektronn.export.dense_net.DenseUNet` (a U-Net).

The conversion only renames weights (CNN: ``conv_blocks.i.conv.*`` → ``layers.i.*``, the
output layer last; U-Net: ``up.i`` / ``decoder.i`` → ``decoder.k.up`` / ``decoder.k.stack``,
bottom first); sizes come from the architecture calculator (:mod:`elektronn.arch`).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import nn

from ..arch import field_of_view, valid_input_sizes
from ..errors import UserError
from ..net.model import NetSpec
from .dense_net import DenseNet, DenseUNet, ScaledInput


class ExportError(UserError):
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


def axis_sizes(model: nn.Module) -> tuple[AxisSize, ...]:
    """Per spatial axis (internal order): FOV, smallest valid input and step (CNN: with MFP)."""
    spec = model.spec
    if spec.architecture == "unet":
        tiling, valid = model.arch.dense_tiling(), model.arch.valid_inputs
        return tuple(AxisSize(t.fov, v[0], t.step) for t, v in zip(tiling, valid))
    mfp = (True,) * spec.n_conv
    sizes = []
    for axis in range(spec.n_dim):
        filters = tuple(f[axis] for f in spec.filters)
        pools = tuple(p[axis] for p in spec.pool)
        valid = valid_input_sizes(filters, pools, mfp)
        sizes.append(AxisSize(field_of_view(filters, pools), valid[0], valid[1] - valid[0]))
    return tuple(sizes)


#: How the packaged net presents each training target's outputs.
OUTPUTS = {"nll": "softmax", "affinity": "sigmoid", "regression": "linear"}


def dense_kwargs(spec: NetSpec, target: str) -> dict[str, Any]:
    """The keyword arguments of :func:`dense_class` (plain lists: they go into rdf.yaml)."""
    if spec.architecture == "unet":
        return {
            "n_dim": spec.n_dim, "n_ch": spec.n_ch, "n_lab": spec.n_lab,
            "nof_filters": list(spec.nof_filters), "filters": [list(f) for f in spec.filters],
            "pools": [list(p) for p in spec.pool], "activations": list(spec.activation_func),
            "n_convs": spec.unet_n_convs, "upsampling": spec.unet_upsampling,
            "batch_norm": spec.unet_batch_norm, "output": OUTPUTS[target],
        }  # fmt: skip
    ones = [1] * spec.n_dim
    return {
        "n_dim": spec.n_dim,
        "channels": [spec.n_ch, *spec.nof_filters, spec.n_lab],
        "filters": [list(f) for f in spec.filters] + [ones],
        "pools": [list(p) for p in spec.pool] + [ones],
        "pooling_modes": [*spec.pooling_mode, "max"],
        "activations": [*spec.activation_func, "linear"],
        "output": OUTPUTS[target],
    }


def dense_class(spec: NetSpec) -> type[nn.Module]:
    """The standalone module of the net's architecture."""
    return DenseUNet if spec.architecture == "unet" else DenseNet


def unet_key(key: str, n_levels: int) -> str:
    """A U-Net weight's name in :class:`DenseUNet` (decoder levels bottom first)."""
    part, _, rest = key.partition(".")
    if part not in ("up", "decoder"):
        return key
    level, _, name = rest.partition(".")
    role = "up" if part == "up" else "stack"
    return f"decoder.{n_levels - 2 - int(level)}.{role}.{name}"


def dense_state_dict(model: nn.Module) -> dict[str, torch.Tensor]:
    """The net's weights under the standalone module's names."""
    if model.spec.architecture == "unet":
        return {
            unet_key(k, model.spec.n_conv): v.detach().cpu().clone()
            for k, v in model.state_dict().items()
        }
    blocks = [*model.conv_blocks, model.output_layer]
    return {
        f"layers.{i}.{name}": getattr(block.conv, name).detach().cpu().clone()
        for i, block in enumerate(blocks)
        for name in ("weight", "bias")
    }


def to_dense_net(model: nn.Module, target: str) -> nn.Module:
    """The dense equivalent of ``model`` (same weights), in eval mode."""
    check_exportable(model.spec)
    net = dense_class(model.spec)(**dense_kwargs(model.spec, target))
    net.load_state_dict(dense_state_dict(model))
    return net.eval()


def packaged_kwargs(
    spec: NetSpec, target: str, gain: float, standardisation: tuple[float, float] | None
) -> dict[str, Any]:
    """The keyword arguments of :class:`ScaledInput` (plain values: they go into rdf.yaml)."""
    mean, std = standardisation or (0.0, 1.0)
    return {
        "net": dense_class(spec).__name__, "net_kwargs": dense_kwargs(spec, target),
        "gain": float(gain), "mean": float(mean), "std": float(std),
    }  # fmt: skip


def packaged_net(
    model: nn.Module, target: str, gain: float, standardisation: tuple[float, float] | None
) -> ScaledInput:
    """The package's model: the training's input transform, then the dense net (eval mode)."""
    net = ScaledInput(**packaged_kwargs(model.spec, target, gain, standardisation))
    net.net.load_state_dict(to_dense_net(model, target).state_dict())
    return net.eval()


#: The ONNX opset of the exported graphs (onnxruntime runs it; bioimageio.core's own default).
ONNX_OPSET = 18


def to_onnx(net: nn.Module, example: torch.Tensor, path: Path) -> None:
    """The net as an ONNX graph with dynamic batch and spatial sizes, through ``torch.export``
    (not TorchScript); a failure names the layer types involved."""
    from torch.export import Dim

    dynamic = {axis: Dim.AUTO for axis in (0, *range(2, example.dim()))}
    try:
        torch.onnx.export(
            net, (example,), str(path), dynamo=True, dynamic_shapes=(dynamic,),
            input_names=["raw"], output_names=["prob"], opset_version=ONNX_OPSET,
            external_data=False, verbose=False,
        )  # fmt: skip
    except Exception as exc:  # torch.export and the ONNX translation raise many types
        layers = ", ".join(sorted({type(m).__name__ for m in net.modules()}))
        raise ExportError(
            f"The dense net (layers: {layers}) cannot be exported to ONNX: "
            f"{str(exc).splitlines()[0]}"
        ) from None


def script(net: nn.Module) -> torch.jit.ScriptModule:
    """TorchScript of the dense net; a failure names the layer types involved."""
    try:
        return torch.jit.script(net)
    except Exception as exc:  # TorchScript raises many types while compiling
        layers = ", ".join(sorted({type(m).__name__ for m in net.modules()}))
        raise ExportError(
            f"TorchScript cannot compile the dense net (layers: {layers}): "
            f"{str(exc).splitlines()[0]}"
        ) from None
