"""Looking inside a running training: first-layer filters and the batches the net sees.

Used from the Ctrl+C console (:mod:`elektronn.train.console`): ``sf`` draws the first-layer
filters, ``smooth`` blurs them, and ``self.debugGetCNNBatch()`` draws one training batch with
its labels, so a user can check that images and labels are registered before hours of
training are spent on a misaligned data set. Images are drawn with matplotlib's
object-oriented API (no pyplot), so nothing depends on a display or a global backend.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import torch
from matplotlib import colormaps
from matplotlib.figure import Figure
from matplotlib.patches import Patch
from scipy import ndimage

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from matplotlib.image import AxesImage

    from ..data.source import DataSource
    from .trainer import Trainer

FILTER_IMAGE = "filters_layer0.png"
DEBUG_BATCH_IMAGE = "debugGetCNNBatch.png"
SMOOTH_SIGMA = 0.5
"""Gaussian sigma (pixels) of ``smooth``: enough to remove checkerboard noise, not the shape."""
_GAPS = colormaps["gray"].with_extremes(bad="#3b5b92")
"""Grey filters on a blue background, so gaps are never mistaken for bright weights."""
_LABELS = colormaps["viridis"].with_extremes(bad="#3b5b92")
MAX_LEGEND_CLASSES = 10
"""More label values than this get a colour bar instead of a legend."""


# -- first-layer filters --------------------------------------------------------------------


def first_layer_weight(model: torch.nn.Module) -> torch.nn.Parameter:
    """The weight of the first convolution (or, for an MLP, linear) layer of ``model``."""
    for module in model.modules():
        if isinstance(module, (torch.nn.Conv2d, torch.nn.Conv3d, torch.nn.Linear)):
            return module.weight
    raise ValueError(f"{type(model).__name__} has no convolution or linear layer.")


def filter_tiles(weight: np.ndarray) -> list[np.ndarray]:
    """One 2D image per (filter, input channel), in the weights' own units.

    All tiles share one scale (drawn as a colour bar), so dead or tiny filters stand out.

    2D conv weights ``(out, in, x, y)`` give ``x × y`` tiles; 3D weights ``(out, in, z, x, y)``
    give the z-slices side by side (separated by a gap), so the whole 3D filter is visible;
    a linear layer ``(out, in)`` is shown as one matrix.
    """
    weight = np.asarray(weight, dtype=np.float64)
    if weight.ndim == 2:
        return [weight]
    if weight.ndim == 4:
        return list(weight.reshape(-1, *weight.shape[2:]))
    if weight.ndim == 5:
        tiles = []
        for w in weight.reshape(-1, *weight.shape[2:]):
            gap = np.full((w.shape[1], 1), np.nan)
            slices = [part for z in w for part in (z, gap)][:-1]
            tiles.append(np.concatenate(slices, axis=1))
        return tiles
    raise ValueError(f"Cannot draw filters of shape {weight.shape} (expected 2, 4 or 5 axes).")


def mosaic(tiles: list[np.ndarray], gap: int = 1) -> np.ndarray:
    """Tiles of one shape in a near-square grid, separated by NaN gaps ``gap`` pixels wide.

    For 3D filters the gap is wider than the one between z-slices inside a tile, so filters
    and their slices can be told apart.
    """
    h, w = tiles[0].shape
    corners = tile_corners(len(tiles), h, w, gap)
    canvas = np.full((max(r for r, _ in corners) + h, max(c for _, c in corners) + w), np.nan)
    for (r, c), tile in zip(corners, tiles, strict=True):
        canvas[r : r + h, c : c + w] = tile
    return canvas


def tile_corners(n: int, h: int, w: int, gap: int = 1) -> list[tuple[int, int]]:
    """The top-left pixel (row, column) of each of ``n`` tiles ``h × w`` in :func:`mosaic`'s
    near-square grid, row by row."""
    cols = max(1, min(n, round(math.sqrt(n * h / w))))
    return [(k // cols * (h + gap), k % cols * (w + gap)) for k in range(n)]


def number_tiles(
    ax: Axes, weight_shape: tuple[int, ...], tile_shape: tuple[int, int], gap: int
) -> None:
    """Write each tile's filter number (``filter/channel`` with several input channels) in
    its top-left corner, so a filter seen in ``sf`` can be found in ``params`` and the code."""
    n_out, n_in = weight_shape[:2]
    h, w = tile_shape
    for k, (r, c) in enumerate(tile_corners(n_out * n_in, h, w, gap)):
        label = str(k) if n_in == 1 else f"{k // n_in}/{k % n_in}"
        box = {"facecolor": "#3b5b92", "edgecolor": "none", "pad": 1.0}
        ax.text(c - 0.45, r - 0.45, label, fontsize=8, color="white", va="top", bbox=box)


def plot_filters(model: torch.nn.Module, path: Path) -> Path:
    """Draw the first-layer filters of ``model`` into ``path`` (a PNG) and return it."""
    weight = first_layer_weight(model).detach().cpu().float().numpy()
    tiles, gap = filter_tiles(weight), 3 if weight.ndim == 5 else 1
    image = mosaic(tiles, gap)
    height, width = image.shape
    scale = 12 / max(height, width)
    fig = Figure(figsize=(max(4.0, width * scale), max(3.0, height * scale + 0.6)))
    ax = fig.subplots()
    limit = float(np.nanmax(np.abs(image))) or 1.0  # symmetric: 0 is the middle grey
    shown = ax.imshow(image, cmap=_GAPS, interpolation="nearest", vmin=-limit, vmax=limit)
    fig.colorbar(shown, ax=ax, label="weight", shrink=0.8)
    if weight.ndim > 2:  # a linear layer is one matrix: nothing to number
        number_tiles(ax, weight.shape, tiles[0].shape, gap)
    layout = {2: "(out, in)", 4: "(out, in, x, y)", 5: "(out, in, z, x, y): z-slices left to right"}
    ax.set_title(f"First-layer filters {tuple(weight.shape)} {layout[weight.ndim]}")
    ax.set_axis_off()
    fig.savefig(path, dpi=100, bbox_inches="tight")
    return Path(path)


@torch.no_grad()
def smooth_filters(model: torch.nn.Module, sigma: float = SMOOTH_SIGMA) -> tuple[int, ...]:
    """Blur the first-layer convolution filters in place with a small spatial Gaussian.

    Noisy, checkerboard-like first-layer filters are a sign of too high a learning rate or
    too little data; smoothing them can help a stuck run. Only the spatial axes are blurred
    (channels and filters are kept apart); filter edges are extended, not zero-padded, so
    the weights do not shrink towards the border. Returns the shape of the smoothed weight.
    """
    weight = first_layer_weight(model)
    if weight.dim() not in (4, 5):
        raise ValueError("Only convolution filters can be smoothed; the first layer is linear.")
    sigmas = (0, 0) + (sigma,) * (weight.dim() - 2)
    smoothed = ndimage.gaussian_filter(weight.cpu().double().numpy(), sigmas, mode="nearest")
    weight.copy_(torch.from_numpy(smoothed).to(weight))
    return tuple(weight.shape)


# -- one training batch ---------------------------------------------------------------------


def debug_batch_kwargs(data: DataSource, batch_kwargs: dict) -> dict:
    """The training getbatch arguments, with unstrided labels where the data offers them.

    Unstrided labels cover every pixel of the label region, so their offset to the input is
    exactly what the net sees, whatever its output stride.
    """
    kwargs = dict(batch_kwargs)
    if data.accepts("strided"):
        kwargs["strided"] = False
    return kwargs


def debug_get_cnn_batch(
    trainer: Trainer,
) -> tuple[np.ndarray, np.ndarray, np.ndarray | None, np.ndarray | None]:
    """One batch fetched as in training, drawn into ``debugGetCNNBatch.png`` in the save dir.

    The batch comes from the main process's data object with the training arguments
    (augmentation included), so it shows what the net is trained on. Attach it to the
    trainer as ``debugGetCNNBatch`` (the original's console name).

    Returns
    -------
    data, label, info1, info2
        The batch's input and labels; ``info1, info2`` are the lazy-label flags when
        ``lazy_labels`` is on, else None.
    """
    kwargs = debug_batch_kwargs(trainer.data, trainer.batches.batch_kwargs)
    batch = trainer.data.getbatch(**kwargs)
    data, labels = batch[0], batch[1]
    info1, info2 = (batch[2], batch[3]) if kwargs.get("ret_info") else (None, None)
    path = plot_debug_batch(data, labels, Path(trainer.save_dir) / DEBUG_BATCH_IMAGE)
    print(f"Batch of data {data.shape} and labels {labels.shape} drawn into {path}", flush=True)
    return data, labels, info1, info2


def pad_to(labels: np.ndarray, shape: tuple[int, ...]) -> np.ndarray:
    """Labels (float) centred in an array of ``shape``; the border (the net's offset) is NaN."""
    padded = np.full(shape, np.nan)
    starts = [(n - m) // 2 for n, m in zip(shape, labels.shape, strict=True)]
    padded[tuple(slice(s, s + m) for s, m in zip(starts, labels.shape, strict=True))] = labels
    return padded


def example_images(data: np.ndarray, labels: np.ndarray) -> tuple[np.ndarray, np.ndarray | None]:
    """Example 0 as a 2D input image and its labels on the same grid (None for scalar labels).

    3D examples are cut at the z-slice through the middle of the label region. Several
    label maps per example (affinities) are reduced to their minimum, as in the original.
    """
    if data.ndim == 2:  # vect-scalar: the whole batch as a matrix
        return data, None
    image = data[0, 0]
    label = labels[0]
    if label.ndim == image.ndim + 1:
        label = label.min(axis=0)
    if label.ndim != image.ndim:
        return (image if image.ndim == 2 else image[image.shape[0] // 2]), None
    label = pad_to(label.astype(np.float64), image.shape)
    if image.ndim == 3:
        z = (image.shape[0] - labels.shape[-3]) // 2 + labels.shape[-3] // 2
        image, label = image[z], label[z]
    return image, label


def plot_debug_batch(data: np.ndarray, labels: np.ndarray, path: Path) -> Path:
    """Draw example 0 of a batch into ``path``: input, padded labels and their overlay.

    Scalar labels (img-scalar, vect-scalar) have no position, so only the input is drawn,
    titled with the batch's labels.
    """
    image, label = example_images(data, labels)
    fig = Figure(figsize=(6 if label is None else 18, 6))
    axes = np.atleast_1d(fig.subplots(1, 1 if label is None else 3))
    axes[0].imshow(image, cmap="gray", interpolation="nearest")
    if label is None:
        axes[0].set_title(f"input {data.shape}, labels {np.asarray(labels).ravel()[:16]}")
    else:
        axes[0].set_title(f"input {data.shape}: example 0, channel 0")
        finite = label[np.isfinite(label)]
        vmin, vmax = (finite.min(), finite.max()) if finite.size else (0, 1)
        shown = axes[1].imshow(label, cmap=_LABELS, vmin=vmin, vmax=vmax, interpolation="nearest")
        axes[1].set_title(f"labels {labels.shape[1:]} padded by the offset (blue)")
        _label_key(fig, axes[1], shown, finite)
        axes[2].imshow(image, cmap="gray", interpolation="nearest")
        axes[2].imshow(
            np.ma.masked_invalid(label),
            cmap="viridis",
            alpha=0.35,
            vmin=vmin,
            vmax=vmax,
            interpolation="nearest",
        )
        axes[2].set_title("overlay: check that labels and image are registered")
    for ax in axes:
        ax.set_axis_off()
    fig.savefig(path, dpi=80, bbox_inches="tight")
    return Path(path)


def _label_key(fig: Figure, ax: Axes, shown: AxesImage, values: np.ndarray) -> None:
    """A legend naming the colour of each class (a colour bar for many or non-integer values),
    so the label image can be read without knowing the colour map."""
    classes = np.unique(values)
    if len(classes) > MAX_LEGEND_CLASSES or not np.all(classes == np.round(classes)):
        fig.colorbar(shown, ax=ax, label="label", orientation="horizontal", shrink=0.8)
        return
    patches = [Patch(color=shown.cmap(shown.norm(c)), label=f"class {int(c)}") for c in classes]
    patches.append(Patch(color=_LABELS.get_bad(), label="offset: no labels"))
    ax.legend(
        handles=patches, loc="upper center", bbox_to_anchor=(0.5, 0.0), ncols=4, frameon=False
    )
