"""Dense prediction of volumes of any size: exact tiling of valid convolutions, with MFP.

:func:`predict_dense` cuts the output frame into adjacent blocks, reads for each block just
its input box (the block plus the FOV halo), computes the block's dense class probabilities
in one forward pass with Max Fragment Pooling (or, for comparison, with S^d shifted passes)
and writes it. No voxel is blended or predicted from padding, so the result equals a single
pass over the whole volume, and each output voxel is computed about once.
"""

from __future__ import annotations

import contextlib
import functools
import math
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from ..axes import CHANNEL, AxesView, internal_axes, is_stack, mirror_indices, reorder, spatial
from ..data.preprocess import normalise
from ..data.volumes import intensity_scale
from ..device import AUTOCAST_DTYPES, autocast
from ..net.losses import probabilities
from ..net.mfp import mfp_forward, shift_and_stitch
from .errors import PredictionError
from .geometry import AxisGeometry, NetGeometry, net_geometry
from .progress import ProgressCallback, Stopwatch, build_progress
from .tiling import TilePlan, plan_tiles

METHODS = ("auto", "mfp", "stitch")
OUT_DTYPES = ("float32", "float16", "uint8")

#: Default tile budget: input voxels x the widest layer's channel count, i.e. 256 MiB per
#: float32 activation array (a few are alive at once). On the CPU larger tiles are no
#: faster (the activations outgrow the caches, see benchmarks/RESULTS.md); on a GPU
#: ``elektronn-predict --profile`` may find a larger tile faster.
DEFAULT_BUDGET = 2**26

#: A 2D net on a stack gets no geometry along z: each slice is predicted on its own.
SLICE_AXIS = AxisGeometry(fov=1, step=1)

DenseForward = Callable[[torch.Tensor], torch.Tensor]


def dense_forward(
    model: torch.nn.Module, method: str, geometry: NetGeometry, precision: str = "fp32"
) -> DenseForward:
    """``f(x) -> logits``: the dense output ``(bs, n_lab, *(in - fov + 1))`` of a batch.

    ``'auto'`` runs the plain forward pass for a net without pooling and for a U-Net (both
    already dense) and MFP otherwise; ``'stitch'`` is the naive S^d-pass reference, kept for
    benchmarks and checks.
    ``precision='bf16'`` runs it under bfloat16 autocast (float32 logits).
    """
    if method not in METHODS:
        raise PredictionError(f"method={method!r} is unknown: use one of {', '.join(METHODS)}.")
    if precision not in AUTOCAST_DTYPES:
        raise PredictionError(
            f"precision={precision!r} is unknown: use one of {', '.join(AUTOCAST_DTYPES)}."
        )
    unet = model.spec.architecture == "unet"
    if unet and method != "auto":
        raise PredictionError(
            f"method={method!r} is for CNNs (max fragment pooling, shift-and-stitch); a U-Net's "
            f"output is dense already: use method='auto'."
        )
    if method == "stitch":
        forward = functools.partial(shift_and_stitch, model)
    elif method == "auto" and (unet or all(s == 1 for s in geometry.step)):
        forward = model
    else:
        forward = functools.partial(mfp_forward, model)
    if precision == "fp32":
        return forward
    device = next(model.parameters()).device

    def in_precision(x: torch.Tensor) -> torch.Tensor:
        with autocast(device, precision):
            return forward(x).float()

    return in_precision


def tile_probabilities(
    forward: DenseForward, target: str, tile: np.ndarray, device: torch.device, stack: bool
) -> np.ndarray:
    """Class probabilities ``(n_lab, *out)`` of one float32 tile ``(ch, *in)``.

    With ``stack`` (a 2D net on a (z, x, y) tile) the z slices form the batch.
    """
    x = torch.from_numpy(tile).to(device)
    x = x.transpose(0, 1) if stack else x[None]
    prob = probabilities(forward(x), target)
    prob = prob.transpose(0, 1) if stack else prob[0]
    return prob.float().cpu().numpy()


def convert_output(prob: np.ndarray, dtype: np.dtype) -> np.ndarray:
    """Probabilities (float32) as stored: uint8 means ``round(p * 255)``, floats are cast."""
    if dtype == np.uint8:
        return np.clip(np.rint(prob * 255), 0, 255).astype(np.uint8)
    return prob.astype(dtype, copy=False)


def widest_layer(model: torch.nn.Module) -> int:
    """The largest channel count of any conv layer (what tile memory scales with)."""
    convs = [m for m in model.modules() if isinstance(m, torch.nn.modules.conv._ConvNd)]
    return max(max(c.in_channels, c.out_channels) for c in convs)


def default_tile(
    axes: tuple[AxisGeometry, ...], frame_in: tuple[int, ...], budget_voxels: int
) -> tuple[int, ...]:
    """The largest tile input (internal order) within the frame and the voxel budget.

    Starting from one tile over the whole frame (its output rounded *up* to a valid size: the
    few voxels past the frame are cropped, which is cheaper than a second tile, e.g. a U-Net's
    512² slice in one 516² tile instead of 2 x 2 of 508²), the axis with the largest output is
    halved (to a valid size) until the tile fits, so tiles stay roughly cubic in output voxels,
    which keeps the halo, and with it the redundancy, small.
    """
    out = [g.ceil_output(g.output_size(n)) for g, n in zip(axes, frame_in, strict=True)]
    while math.prod(g.input_size(o) for g, o in zip(axes, out)) > budget_voxels:
        shrinkable = [i for i, (g, o) in enumerate(zip(axes, out)) if o > g.smallest_output]
        if not shrinkable:
            break
        i = max(shrinkable, key=out.__getitem__)
        out[i] = axes[i].round_output(out[i] // 2)
    return tuple(g.input_size(o) for g, o in zip(axes, out, strict=True))


@dataclass(frozen=True)
class Layout:
    """How a raw volume meets a net: axes, orders and the output frame.

    Attributes
    ----------
    geometry
        The net's geometry.
    axes
        Geometry per spatial axis of the volume, internal order; a 2D net on a stack has
        :data:`SLICE_AXIS` for z.
    raw_axes
        The names of the raw array's axes (channel included), in its order.
    in_shape, out_shape
        Spatial shapes of the raw volume and of the output, internal order.
    pad_raw
        Whether the output frame is the mirror-padded input frame.
    channels
        The net's first outputs that are written (all but an affinity net's descriptors).
    """

    geometry: NetGeometry
    axes: tuple[AxisGeometry, ...]
    raw_axes: str
    in_shape: tuple[int, ...]
    out_shape: tuple[int, ...]
    pad_raw: bool
    channels: int

    @property
    def internal(self) -> str:
        """The spatial axes of the volume in internal order."""
        return internal_axes(len(self.axes))

    @property
    def stack(self) -> bool:
        """A 2D net predicting the z slices of a 3D volume."""
        return is_stack(len(self.axes), self.geometry.n_dim)

    @property
    def storage_out_shape(self) -> tuple[int, ...]:
        """Shape of the output in the order of the raw volume (channel = classes)."""
        shape = (self.channels, *self.out_shape)
        return reorder(shape, CHANNEL + self.internal, self.raw_axes)

    @property
    def frame_in(self) -> tuple[int, ...]:
        """Length of the input frame per axis (the raw volume, padded if ``pad_raw``)."""
        return tuple(g.input_size(n) for g, n in zip(self.axes, self.out_shape, strict=True))

    def view(self, array: Any) -> AxesView:
        """``array`` (in the raw volume's order) seen in internal order, channel first."""
        return AxesView(array, self.raw_axes, CHANNEL + self.internal)


def check_raw_shape(shape: tuple[int, ...], geometry: NetGeometry, axes: str) -> None:
    """Refuse a volume whose axes or channels do not fit the net, saying what would."""
    n_spatial = len(shape) - 1
    names_ok = CHANNEL in axes and len(axes) == len(shape)
    if not names_ok or sorted(spatial(axes)) != sorted(internal_axes(n_spatial)):
        raise PredictionError(
            f"axes={axes!r} must name every axis of the raw volume (shape {shape}): the "
            f"channel 'c' and the spatial axes x, y[, z] in the array's order, e.g. 'czxy' "
            f"or 'cxyz'."
        )
    if n_spatial not in ((2, 3) if geometry.n_dim == 2 else (3,)):
        want = "(ch, x, y) or a stack (ch, z, x, y)" if geometry.n_dim == 2 else "(ch, z, x, y)"
        raise PredictionError(
            f"The raw volume has shape {shape}, but this {geometry.n_dim}D net needs {want}: "
            f"a channel axis and 3 spatial axes. Give a single-channel volume a channel axis "
            f"of length 1."
        )
    n_ch = shape[axes.index(CHANNEL)]
    if n_ch != geometry.n_ch:
        raise PredictionError(
            f"The raw volume has {n_ch} channels (axis 'c' of shape {shape}), but the net was "
            f"trained with {geometry.n_ch}."
        )


def build_layout(
    geometry: NetGeometry,
    shape: tuple[int, ...],
    axes: str | None,
    pad_raw: bool,
    channels: int | None = None,
) -> Layout:
    """The :class:`Layout` of a raw volume of ``shape`` whose axes are named ``axes``
    (default: internal order, channel first), writing the net's first ``channels`` outputs
    (default all)."""
    shape = tuple(int(n) for n in shape)
    n_out = channels or geometry.n_lab
    axes = axes or CHANNEL + internal_axes(len(shape) - 1)
    check_raw_shape(shape, geometry, axes)
    internal = internal_axes(len(shape) - 1)
    volume_axes = ((SLICE_AXIS,) if is_stack(len(internal), geometry.n_dim) else ()) + geometry.axes
    in_shape = reorder(shape, axes, internal)
    if pad_raw:
        return Layout(geometry, volume_axes, axes, in_shape, in_shape, True, n_out)
    out_shape = tuple(g.output_size(n) for g, n in zip(volume_axes, in_shape, strict=True))
    if min(out_shape) < 1:
        raise PredictionError(
            f"The raw volume (spatial shape {reorder(shape, axes, spatial(axes))}, axes "
            f"{spatial(axes)}) is smaller than the net's field of view "
            f"{reorder(tuple(g.fov for g in volume_axes), internal, spatial(axes))}: no voxel "
            f"can be predicted. Mirror-pad the borders with pad_raw=True "
            f"(elektronn-predict --pad)."
        )
    return Layout(geometry, volume_axes, axes, in_shape, out_shape, False, n_out)


def dense_output_shape(
    model: torch.nn.Module,
    raw_shape: tuple[int, ...],
    *,
    axes: str | None = None,
    pad_raw: bool = False,
    channels: int | None = None,
) -> tuple[int, ...]:
    """Shape of :func:`predict_dense`'s result, e.g. to create an output dataset first.

    Raises
    ------
    PredictionError
        As :func:`predict_dense` does for a volume or net that cannot be predicted.
    """
    return build_layout(net_geometry(model), raw_shape, axes, pad_raw, channels).storage_out_shape


def output_array(out: Any, shape: tuple[int, ...], out_dtype: Any) -> tuple[Any, np.dtype]:
    """The output (allocated when None) and the dtype its blocks are converted to."""
    if out is None:
        dtype = np.dtype(out_dtype)
        if dtype.name not in OUT_DTYPES:
            raise PredictionError(f"out_dtype={dtype} is not one of {', '.join(OUT_DTYPES)}.")
        return np.empty(shape, dtype), dtype
    if tuple(out.shape) != shape:
        raise PredictionError(f"out has shape {tuple(out.shape)}, but the output is {shape}.")
    return out, np.dtype(out.dtype)


@contextlib.contextmanager
def evaluating(model: torch.nn.Module) -> Iterator[None]:
    """Eval mode for the duration (no dropout), then the caller's mode again.

    Previews predict with the training net mid-run, which must stay in training mode.
    """
    was_training = model.training
    model.eval()
    try:
        yield
    finally:
        model.train(was_training)


def predict_dense(
    model: torch.nn.Module,
    raw: Any,
    *,
    axes: str | None = None,
    tile_shape: tuple[int, ...] | None = None,
    pad_raw: bool = False,
    method: str = "auto",
    target: str = "nll",
    device: torch.device | str | None = None,
    out: Any = None,
    out_dtype: Any = np.float32,
    progress: bool | ProgressCallback | None = None,
    standardisation: tuple[float, float] | None = None,
    precision: str = "fp32",
    channels: int | None = None,
) -> Any:
    """Class probabilities of every voxel of ``raw`` that the net can see whole.

    Parameters
    ----------
    model
        An img-img :class:`~elektronn.net.model.ElektronnNet` (conv output, no MLP head).
    raw
        ``(ch, x, y)`` or, for 2D nets also a stack, ``(ch, z, x, y)`` (any order named by
        ``axes``); a numpy array or an
        ``h5py`` / zarr dataset, of which only one tile (plus halo) is read at a time.
        Integer grey values are scaled as in training (divided by the dtype's maximum,
        uint8 by 255), floats are used as they are; then ``standardisation`` applies.
    axes
        The names of ``raw``'s axes in its order, channel included: e.g. ``'czxy'``
        (internal order, the default), ``'cxyz'`` (user order, as h5 files) or ``'czyx'``
        (OME-Zarr). The output has the same order.
    tile_shape
        Input size of a tile per spatial axis (order of ``raw``), rounded down to a size at
        which the net gives a dense output (MFP-valid, see :mod:`.geometry`; at least the
        smallest such size). For a 2D net on a stack the z entry is the number of slices
        per batch. Default: the largest tile within 256 MiB per activation array
        (:data:`DEFAULT_BUDGET`; ``elektronn-predict --profile`` finds the fastest).
    pad_raw
        Mirror-pad (numpy ``'symmetric'``) the volume by the offset so the output covers the
        input frame. Without it the output is ``fov - 1`` smaller per axis and output voxel
        ``j`` is centred on input voxel ``j + int_offset``.
    method
        ``'mfp'`` (one pass per tile), ``'stitch'`` (S^d passes, the naive reference) or
        ``'auto'`` (MFP, or the plain pass for a net without pooling).
    target
        The training target: ``'nll'`` gives softmax probabilities, ``'regression'`` the
        outputs as they are (see :func:`elektronn.net.losses.probabilities`).
    device
        Where to compute; the model is moved there. Default: where the model is.
    out
        Optional array-like (e.g. an ``h5py.Dataset``) of the output shape
        (:func:`dense_output_shape`), storage order as ``raw``; each block is written as
        soon as it is predicted. Its dtype wins over ``out_dtype``.
    out_dtype
        ``float32``, ``float16`` or ``uint8`` (``round(p * 255)``) for a new output array.
    progress
        ``True`` for a progress bar on stderr (voxels/s, ETA), or a callable
        ``(done_voxels, total_voxels, elapsed_s)`` called after every tile.
    standardisation
        ``(mean, std)`` of a net trained with ``pre_process='standardise'`` (the parameter
        file's :func:`~elektronn.net.paramfile.input_standardisation`): every scaled tile
        becomes ``(x - mean) / std``, as the training images did.
    precision
        ``'fp32'``, or ``'bf16'`` for bfloat16 autocast: faster on GPUs (and CPUs with
        bfloat16 instructions); the probabilities change by about 1e-2 at most.
    channels
        Keep only the net's first ``channels`` outputs (an affinity net's affinities, not
        its shape descriptors); default all.

    Returns
    -------
    numpy.ndarray or the given ``out``
        ``(n_lab, *spatial_out)`` in the order of ``raw``.

    Raises
    ------
    PredictionError
        For a net with an MLP head, a wrong number of axes or channels, a volume smaller
        than the field of view (without ``pad_raw``), an unknown method or dtype.
    """
    layout = build_layout(net_geometry(model), tuple(raw.shape), axes, pad_raw, channels)
    plan = plan_tiles(layout.axes, layout.out_shape, tile_input(tile_shape, layout, model))
    result, dtype = output_array(out, layout.storage_out_shape, out_dtype)
    if device is not None:
        model.to(device)
    device = next(model.parameters()).device
    with evaluating(model), torch.inference_mode():
        forward = dense_forward(model, method, layout.geometry, precision)
        run_plan(
            plan,
            layout,
            layout.view(raw),
            layout.view(result),
            lambda tile: tile_probabilities(forward, target, tile, device, layout.stack)[
                : layout.channels
            ],
            InputTransform(
                intensity_scale(np.dtype(raw.dtype), "the raw volume", "raw"), standardisation
            ),
            dtype,
            build_progress(progress),
        )
    return result


@dataclass(frozen=True)
class InputTransform:
    """Stored grey values → the net's input, as in training: scaled to float32, then
    standardised when the net was trained with ``pre_process='standardise'``."""

    scale: float
    standardisation: tuple[float, float] | None = None

    def __call__(self, tile: np.ndarray) -> np.ndarray:
        tile = tile.astype(np.float32)
        if self.scale != 1.0:
            tile *= np.float32(self.scale)
        if self.standardisation is not None:
            normalise(tile, *self.standardisation)
        return tile


def tile_input(tile_shape: Any, layout: Layout, model: torch.nn.Module) -> tuple[int, ...]:
    """The requested tile input (in the raw volume's order) in internal order, or the
    default tile."""
    if tile_shape is None:
        return default_tile(layout.axes, layout.frame_in, DEFAULT_BUDGET // widest_layer(model))
    order = spatial(layout.raw_axes)
    if len(tile_shape) != len(order) or min(tile_shape) < 1:
        raise PredictionError(
            f"tile_shape={tuple(tile_shape)} needs one positive size per spatial axis of the "
            f"raw volume ({len(order)}, in its order {order})."
        )
    return reorder(tuple(int(n) for n in tile_shape), order, layout.internal)


def tile_indices(plan: TilePlan, start: tuple[int, ...], layout: Layout) -> tuple[np.ndarray, ...]:
    """Per-axis raw indices of the input of the output block at ``start``.

    That input begins at ``start`` in the input frame, which is the raw volume shifted by
    the left padding when ``pad_raw``; indices outside the volume are mirrored.
    """
    indices = []
    for axis, s, n in zip(plan.axes, start, layout.in_shape, strict=True):
        first = s - axis.geometry.left if layout.pad_raw else s
        indices.append(mirror_indices(np.arange(first, first + axis.tile_in), n))
    return tuple(indices)


def run_plan(
    plan: TilePlan,
    layout: Layout,
    reader: AxesView,
    writer: AxesView,
    predict_tile: Callable[[np.ndarray], np.ndarray],
    to_input: InputTransform,
    dtype: np.dtype,
    progress: ProgressCallback | None,
) -> None:
    """Predict and write every tile of ``plan``, reporting progress in output voxels.

    Progress counts each tile's share of the frame, so the shifted-back last tiles, which
    recompute a few voxels, do not push the count past the total.
    """
    total, clock = math.prod(plan.out_shape), Stopwatch()
    channels = np.arange(reader.shape[0])
    for i, start in enumerate(plan):
        prob = predict_tile(to_input(reader.take((channels, *tile_indices(plan, start, layout)))))
        keep = tuple(slice(0, min(a.tile_out, a.n_out - s)) for a, s in zip(plan.axes, start))
        box = tuple(slice(s, s + k.stop) for s, k in zip(start, keep, strict=True))
        writer[(slice(None), *box)] = convert_output(prob[(slice(None), *keep)], dtype)
        if progress is not None:
            progress(total * (i + 1) // plan.n_tiles, total, clock())
