"""A trained img-img net as a bioimage.io model package (format 0.5), built with bioimageio.spec.

The package holds

* ``weights.pt``: the state dict of :class:`~elektronn.export.dense_net.ScaledInput` (the
  training's input scaling, then the :class:`~elektronn.export.dense_net.DenseNet`, for a
  U-Net the :class:`~elektronn.export.dense_net.DenseUNet`), with ``dense_net.py`` as its
  architecture source (plain PyTorch, no elektronn needed);
* ``dense_net.onnx`` (through ``torch.export``) and ``dense_net.ts`` (TorchScript): the same
  model (MFP folded in, softmax / sigmoid included);
* ``test_input.npy`` / ``test_output.npy`` (and the same as TIFF sample tensors): a crop of the
  sample volume and the model's prediction of it; ``cover.png`` (raw | prediction) and
  ``README.md`` (description, validation scores, training summary);
* ``elektronn.param``: the original parameter file, so that elektronn can predict with and
  fine-tune a downloaded package (:func:`elektronn.net.paramfile.load_params` reads them).

Tensor axes are elektronn's internal order: ``(batch, channel, x, y)`` for 2D nets and
``(batch, channel, z, x, y)`` for 3D nets; output voxel ``i`` belongs to input voxel
``i + fov // 2`` on every spatial axis.
"""

from __future__ import annotations

import math
import shutil
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ..axes import as_order
from ..net.model import ElektronnNet, NetSpec
from ..net.paramfile import PACKAGED_PARAM_FILE as PARAM_MEMBER
from . import dense_net
from .convert import (
    ONNX_OPSET,
    AxisSize,
    ExportError,
    axis_sizes,
    packaged_kwargs,
    packaged_net,
    script,
    to_onnx,
)
from .dense_net import ScaledInput

INPUT_ID, OUTPUT_ID = "raw", "prob"
DEFAULT_LICENSE = "CC-BY-4.0"
DEFAULT_CITATIONS = (
    ("Masci et al. 2013, A fast learning algorithm for image segmentation with max-pooling "
     "convolutional networks (Max Fragment Pooling)", "https://arxiv.org/abs/1302.1690"),
    ("ELEKTRONN: a convolutional neural network toolkit for 2D/3D EM images",
     "https://github.com/ELEKTRONN/ELEKTRONN"),
)  # fmt: skip
#: Test tensors: about this many output voxels along x and y (z: a few slices).
TEST_OUTPUT_XY, TEST_OUTPUT_Z = 64, 4


@dataclass
class ExportOptions:
    """What the user chooses about the package (command-line options of elektronn-export)."""

    name: str
    authors: Sequence[str]
    license: str = DEFAULT_LICENSE
    citations: Sequence[tuple[str, str]] = DEFAULT_CITATIONS
    description: str = ""
    tags: list[str] = field(default_factory=list)
    #: what is segmented and in which images (the description and the tags say it)
    content: str = ""
    modality: str = "electron microscopy"
    #: voxel size per spatial axis in user order ``(x, y[, z])``, in ``unit``; None: unknown
    voxel_size: tuple[float, ...] | None = None
    unit: str = "nanometer"
    #: GitHub user names of whoever answers questions about the package
    maintainers: Sequence[str] = ()


def tag(text: str) -> str:
    """A bioimage.io tag: lower case, words joined by hyphens (``electron-microscopy``)."""
    return "-".join(text.lower().split())


def resolution_text(options: ExportOptions) -> str:
    """``4x4x50 nanometer voxels (x, y, z)``, or a note that the size is not known."""
    if options.voxel_size is None:
        return "voxels of unstated size"
    axes = ", ".join("xyz"[: len(options.voxel_size)])
    sizes = "x".join(f"{v:g}" for v in options.voxel_size)
    return f"{sizes} {options.unit} voxels ({axes})"


def what_is_predicted(target: str, n_lab: int) -> str:
    """What the output channels are, from the training's target."""
    if target == "affinity":
        return "Affinities (0-1, each channel a sigmoid) for instance segmentation"
    if target == "regression":
        return f"{n_lab} regression outputs"
    return f"{n_lab}-class probabilities"


def default_description(n_dim: int, target: str, n_lab: int, options: ExportOptions) -> str:
    """What is segmented in which images at what resolution, from the options and training."""
    content = f" of {options.content}" if options.content else ""
    return (
        f"{what_is_predicted(target, n_lab)}{content} in {n_dim}D {options.modality} images "
        f"at {resolution_text(options)}"
    )


def package_tags(n_dim: int, target: str, options: ExportOptions) -> list[str]:
    """Modality and content tags, then the kind of model and the user's own tags."""
    task = {"affinity": "instance-segmentation", "regression": "regression"}
    tags = [tag(options.modality), *([tag(options.content)] if options.content else []),
            task.get(target, "semantic-segmentation"), f"{n_dim}d", "elektronn", "pytorch",
            "torchscript", "onnx", *options.tags]  # fmt: skip
    return list(dict.fromkeys(tags))


def axis_scale(options: ExportOptions, name: str) -> dict[str, Any]:
    """``scale`` and ``unit`` of the spatial axis ``name`` (nothing when the size is unknown)."""
    if options.voxel_size is None:
        return {}
    return {"scale": options.voxel_size["xyz".index(name)], "unit": options.unit}


def internal_axes(n_dim: int) -> tuple[str, ...]:
    return ("x", "y") if n_dim == 2 else ("z", "x", "y")


def sample_input_shape(sizes: Sequence[AxisSize], n_dim: int) -> tuple[int, ...]:
    """Valid input sizes (internal order) giving about :data:`TEST_OUTPUT_XY` output voxels."""
    wanted = (
        (TEST_OUTPUT_XY,) * 2 if n_dim == 2 else (TEST_OUTPUT_Z, TEST_OUTPUT_XY, TEST_OUTPUT_XY)
    )
    return tuple(
        s.min + max(0, math.ceil((w - (s.min - s.fov + 1)) / s.step)) * s.step
        for s, w in zip(sizes, wanted, strict=True)
    )


def crop_sample(sample: np.ndarray, shape: tuple[int, ...], n_ch: int) -> np.ndarray:
    """The centred crop ``(1, ch, *shape)`` of a user-order sample ``((ch,) x, y[, z])``.

    The sample is brought to internal order; a 2D net takes one z slice.
    """
    image = sample if sample.ndim == 4 or (sample.ndim == 3 and n_ch > 1) else sample[None]
    n_dim = len(shape)
    if image.ndim == 4:  # (ch, x, y, z)
        image = as_order(image, "cxyz", "czxy")
        if n_dim == 2:
            image = image[:, image.shape[1] // 2]
    if image.ndim - 1 != n_dim or image.shape[0] != n_ch:
        raise ExportError(
            f"The sample has shape {sample.shape}, but the {n_dim}D net with {n_ch} channel(s) "
            f"needs (x, y{', z' if n_dim == 3 else ''}) or (ch, x, y, z) in user order."
        )
    too_small = [n < s for n, s in zip(image.shape[1:], shape, strict=True)]
    if any(too_small):
        raise ExportError(
            f"The sample has spatial shape {image.shape[1:]} (internal order "
            f"{internal_axes(n_dim)}), smaller than the test input {shape} the package needs."
        )
    box = tuple(slice((n - s) // 2, (n - s) // 2 + s) for n, s in zip(image.shape[1:], shape))
    return np.ascontiguousarray(image[(slice(None), *box)])[None]


def intensity_gain(dtype: np.dtype) -> float:
    """The training's scaling of stored grey values (integers by their maximum)."""
    if np.issubdtype(dtype, np.integer):
        return 1.0 / float(np.iinfo(dtype).max)
    return 1.0


def tensor_descrs(
    sizes: Sequence[AxisSize], n_ch: int, n_lab: int, files: dict[str, Path], dtype: np.dtype,
    target: str, options: ExportOptions,
) -> tuple[Any, Any]:  # fmt: skip
    """Input (``ParameterizedSize`` from the calculator) and output (size relation) tensors."""
    from bioimageio.spec.model import v0_5

    names = internal_axes(len(sizes))
    in_axes: list = [
        v0_5.BatchAxis(),
        v0_5.ChannelAxis(channel_names=[f"channel{c}" for c in range(n_ch)]),
    ]
    out_axes: list = [
        v0_5.BatchAxis(),
        v0_5.ChannelAxis(channel_names=[f"class{c}" for c in range(n_lab)]),
    ]
    for name, s in zip(names, sizes, strict=True):
        size = v0_5.ParameterizedSize(min=s.min, step=s.step)
        in_axes.append(v0_5.SpaceInputAxis(id=name, size=size, **axis_scale(options, name)))
        ref = v0_5.SizeReference(tensor_id=INPUT_ID, axis_id=name, offset=1 - s.fov)
        out_axes.append(
            v0_5.SpaceOutputAxis(
                id=name,
                size=ref,
                description=f"output voxel i is input voxel i + {s.fov // 2}",
                **axis_scale(options, name),
            )  # fmt: skip
        )
    what = {"nll": "class probabilities (softmax)", "affinity": "affinities (sigmoid)",
            "regression": "regression outputs"}[target]  # fmt: skip
    inputs = v0_5.InputTensorDescr(
        id=INPUT_ID, axes=in_axes, test_tensor=v0_5.FileDescr(source=files["test_input"]),
        sample_tensor=v0_5.FileDescr(source=files["sample_input"]),
        data=v0_5.IntervalOrRatioDataDescr(type=str(dtype)),
        preprocessing=[v0_5.EnsureDtypeDescr(kwargs=v0_5.EnsureDtypeKwargs(dtype="float32"))],
        description="raw image, uint8 0-255 or float in [0, 1] (see the README); valid "
        "convolutions: the output is smaller by fov - 1",
    )  # fmt: skip
    outputs = v0_5.OutputTensorDescr(
        id=OUTPUT_ID, axes=out_axes, test_tensor=v0_5.FileDescr(source=files["test_output"]),
        sample_tensor=v0_5.FileDescr(source=files["sample_output"]),
        data=v0_5.IntervalOrRatioDataDescr(type="float32"), description=f"dense {what}",
    )  # fmt: skip
    return inputs, outputs


def weights_descr(files: dict[str, Path], kwargs: dict[str, Any]) -> Any:
    """TorchScript and state-dict weights of the packaged net (the state dict's parent)."""
    from bioimageio.spec.model import v0_5

    version = torch.__version__.split("+")[0]
    architecture = v0_5.ArchitectureFromFileDescr(
        source=files["architecture"], callable=ScaledInput.__name__, kwargs=kwargs
    )
    return v0_5.WeightsDescr(
        pytorch_state_dict=v0_5.PytorchStateDictWeightsDescr(
            source=files["state_dict"], architecture=architecture, pytorch_version=version
        ),
        torchscript=v0_5.TorchscriptWeightsDescr(
            source=files["torchscript"], pytorch_version=version, parent="pytorch_state_dict"
        ),
        onnx=v0_5.OnnxWeightsDescr(
            source=files["onnx"], opset_version=ONNX_OPSET, parent="pytorch_state_dict"
        ),
    )


def write_cover(path: Path, raw: np.ndarray, prob: np.ndarray, sizes: Sequence[AxisSize]) -> None:
    """A 2:1 preview: the central raw slice, cropped to the output, beside the prediction.

    Both panels fill one half of the image each, without margins: the same voxel is at the
    same place in both, at the same scale.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    crop = tuple(slice(s.fov // 2, s.fov // 2 + n) for s, n in zip(sizes, prob.shape[2:]))
    image, pred = raw[0, 0][crop], prob[0, -1]
    if image.ndim == 3:
        image, pred = image[image.shape[0] // 2], pred[pred.shape[0] // 2]
    fig = plt.figure(figsize=(6, 3), dpi=100)
    for left, picture in ((0.0, image), (0.5, pred)):
        ax = fig.add_axes((left, 0.0, 0.5, 1.0))
        ax.imshow(picture, cmap="gray", aspect="auto", interpolation="nearest")
        ax.axis("off")
    fig.savefig(path)
    plt.close(fig)


def net_kind(spec: NetSpec) -> str:
    return "U-Net" if spec.architecture == "unet" else "CNN"


def training_table(config: dict[str, Any]) -> str:
    """The training's options as table rows; data files by name only (no machine's paths)."""
    keys = ("mode", "target", "n_steps", "batch_size", "optimizer", "class_weights",
            "pre_process", "MFP")  # fmt: skip
    rows = [f"| {k} | {config[k]!r} |" for k in keys if k in config]
    for key in ("d_files", "l_files"):
        if config.get(key):
            names = ", ".join(f"`{Path(name).name}:{dataset}`" for name, dataset in config[key])
            rows.append(f"| {key} | {names} |")
    return "\n".join(rows)


def validation_section(params: dict[str, Any], param_file: Path) -> str:
    """The validation scores of the training's history (``Backup/<save_name>.*.npy``) at the
    exported weights' step and at the best step (``-BEST.param``)."""
    config, extra = params.get("config") or {}, params.get("extra") or {}
    backup, name = param_file.parent / "Backup", config.get("save_name", "")
    loss_file, error_file = backup / f"{name}.history.npy", backup / f"{name}.errors.npy"
    if not (loss_file.is_file() and error_file.is_file()):
        return ("The parameter file came without the training's history "
                f"(`Backup/{name}.history.npy`, `.errors.npy`): no validation scores.")  # fmt: skip
    history, errors = np.load(loss_file), np.load(error_file)  # one row per history step
    steps, losses, valid_errors = history[:, 0], history[:, 5], errors[:, 3]
    if not len(steps) or np.isnan(losses).all():
        return "The training had no validation data: no validation scores."
    regression = config.get("target") == "regression"
    best = int(np.nanargmin(losses if regression else valid_errors))
    step = extra.get("step")
    at = int(np.searchsorted(steps, step, side="right")) - 1 if step is not None else -1
    rows = [(f"these weights (`{param_file.name}`), last history step", max(at, 0)),
            ("best (`-BEST.param`)", best)]  # fmt: skip
    table = "\n".join(
        f"| {what} | {int(steps[r])} | {losses[r]:.4g} | {valid_errors[r]:.2f} % |"
        for what, r in rows
    )
    return f"""Scores on the training's validation data, from its history (monitor batches at
every history step): the loss (regression: mean squared error) and the error in % of the
voxels (classification).

| weights | step | validation loss | validation error |
|---|---|---|---|
{table}"""


def readme(
    model: ElektronnNet, params: dict[str, Any], param_file: Path, sizes: Sequence[AxisSize],
    description: str,
) -> str:  # fmt: skip
    """The package documentation: what it does, how to run it, what the training was."""
    config = params.get("config") or {}
    geometry = "\n".join(
        f"| {a} | {s.fov} | {s.min} | {s.step} | {s.fov // 2} |"
        for a, s in zip(internal_axes(model.n_dim), sizes, strict=True)
    )
    spec = model.spec
    mfp = (
        "" if spec.architecture == "unet"
        else "; Max Fragment Pooling is folded in as dilated pooling and convolution"
    )  # fmt: skip
    layers = "\n".join(
        f"| conv {i} | {n} | {f} | {p} | {mode} | {act} |"
        for i, (n, f, p, mode, act) in enumerate(
            zip(spec.nof_filters, spec.filters, spec.pool, spec.pooling_mode,
                spec.activation_func, strict=False)
        )
    )  # fmt: skip
    return f"""# {config.get("save_name", "elektronn model")}

{description}

A {model.n_dim}D valid-convolution {net_kind(spec)} trained with elektronn (a PyTorch
re-implementation of ELEKTRONN). Every weight format computes the dense (full-resolution)
output in one call{mfp}. Input: uint8 grey values 0-255 (the training's integer type up to
its maximum) or floats in [0, 1]; the model scales an input whose maximum exceeds 1 itself.

# Validation

{validation_section(params, param_file)}

## Geometry (axes in tensor order)

| axis | field of view | smallest input | input step | output offset |
|---|---|---|---|---|
{geometry}

An input of size `n` gives an output of size `n - fov + 1`; output voxel `i` belongs to input
voxel `i + offset`. Inputs must be `smallest + k * step` voxels long (`k >= 0`).

## Training

| option | value |
|---|---|
{training_table(config)}

## Layers (then a 1x1 output layer with {model.n_lab} outputs)

| layer | filters | filter | pool | pooling | activation |
|---|---|---|---|---|---|
{layers}

elektronn reads the package back: `elektronn-predict THIS.zip INPUT.h5:KEY OUT.h5`, and
`param_file = 'THIS.zip'` in a training config fine-tunes it.
"""


@dataclass(frozen=True)
class PackageFiles:
    """The files of a package in a staging folder, by role."""

    folder: Path

    def path(self, role: str) -> Path:
        return self.folder / {
            "architecture": "dense_net.py", "state_dict": "weights.pt",
            "torchscript": "dense_net.ts", "onnx": "dense_net.onnx",
            "test_input": "test_input.npy", "test_output": "test_output.npy",
            "sample_input": "sample_input.tif", "sample_output": "sample_output.tif",
            "cover": "cover.png", "readme": "README.md", "param": PARAM_MEMBER,
        }[role]  # fmt: skip

    def as_dict(self) -> dict[str, Path]:
        roles = ("architecture", "state_dict", "torchscript", "onnx", "test_input",
                 "test_output", "sample_input", "sample_output")  # fmt: skip
        return {role: self.path(role) for role in roles}


@dataclass(frozen=True)
class Staged:
    """What :func:`stage_files` computed that the description needs."""

    raw: np.ndarray
    sizes: tuple[AxisSize, ...]
    kwargs: dict[str, Any]
    description: str


def stage_files(
    files: PackageFiles, model: ElektronnNet, params: dict[str, Any], param_file: Path,
    sample: np.ndarray, options: ExportOptions,
) -> Staged:  # fmt: skip
    """Write weights, architecture, test and sample tensors, cover, README and parameter file."""
    from imageio.v3 import imwrite

    target = (params.get("config") or {}).get("target", "nll")
    sizes = axis_sizes(model)
    raw = crop_sample(sample, sample_input_shape(sizes, model.n_dim), model.n_ch)
    gain, standardisation = intensity_gain(raw.dtype), params.get("input_standardisation")
    net = packaged_net(model, target, gain, standardisation)
    scripted = script(net)
    with torch.no_grad():
        prob = scripted(torch.from_numpy(raw)).numpy()
    torch.jit.save(scripted, files.path("torchscript"))
    to_onnx(net, torch.from_numpy(raw).float(), files.path("onnx"))  # as preprocessed
    torch.save(net.state_dict(), files.path("state_dict"))
    shutil.copyfile(dense_net.__file__, files.path("architecture"))
    np.save(files.path("test_input"), raw)
    np.save(files.path("test_output"), prob)
    imwrite(files.path("sample_input"), raw[0])
    imwrite(files.path("sample_output"), prob[0])
    shutil.copyfile(param_file, files.path("param"))
    write_cover(files.path("cover"), raw, prob, sizes)
    description = options.description or default_description(
        model.n_dim, target, model.n_lab, options
    )
    files.path("readme").write_text(readme(model, params, param_file, sizes, description))
    kwargs = packaged_kwargs(model.spec, target, gain, standardisation)
    return Staged(raw, sizes, kwargs, description)


def build_description(
    files: PackageFiles, model: ElektronnNet, params: dict[str, Any], staged: Staged,
    options: ExportOptions,
) -> Any:  # fmt: skip
    """The validated ``ModelDescr`` of the staged files."""
    from bioimageio.spec import ValidationContext
    from bioimageio.spec.model import v0_5

    target = (params.get("config") or {}).get("target", "nll")
    inputs, outputs = tensor_descrs(staged.sizes, model.n_ch, model.n_lab, files.as_dict(),
                                    staged.raw.dtype, target, options)  # fmt: skip
    with ValidationContext(perform_io_checks=True):
        return v0_5.ModelDescr(
            name=options.name,
            description=staged.description,
            authors=[v0_5.Author(name=a) for a in options.authors],
            maintainers=[v0_5.Maintainer(github_user=m) for m in options.maintainers],
            cite=[citation(text, ref) for text, ref in options.citations],
            license=options.license,
            documentation=v0_5.FileDescr(source=files.path("readme")),
            covers=[v0_5.FileDescr(source=files.path("cover"))],
            attachments=[v0_5.FileDescr(source=files.path("param"))],
            tags=package_tags(model.n_dim, target, options),
            inputs=[inputs],
            outputs=[outputs],
            weights=weights_descr(files.as_dict(), staged.kwargs),
        )


def citation(text: str, ref: str) -> Any:
    """A cite entry; ``ref`` is a URL or a DOI (``10.xxxx/...``)."""
    from bioimageio.spec.model import v0_5

    if ref.startswith("10."):
        return v0_5.CiteEntry(text=text, doi=ref)
    return v0_5.CiteEntry(text=text, url=ref)


def export_package(
    model: ElektronnNet, params: dict[str, Any], param_file: Path, sample: np.ndarray,
    out: Path, options: ExportOptions, staging: Path,
) -> Path:  # fmt: skip
    """Stage the files in ``staging``, describe them and write the zip ``out``."""
    from bioimageio.spec import save_bioimageio_package

    files = PackageFiles(staging)
    staged = stage_files(files, model, params, param_file, sample, options)
    descr = build_description(files, model, params, staged, options)
    return save_bioimageio_package(descr, output_path=out)


def run_bioimageio_test(path: Path) -> Any:
    """bioimageio.core's test of the package (offline: every file is inside the zip)."""
    from bioimageio.core import test_description

    return test_description(path)
