"""Registering labels to images at their centres, and img-scalar border treatment.

The specification's rule: labels and images are symmetrically registered at their centres; the
net needs ``offset`` image voxels around every label. After :func:`register` both arrays have
the same spatial shape and ``labels[i]`` belongs to ``image[i]``; every voxel without a label
(the offset border, or labels the image cannot support) holds :data:`~.volumes.IGNORE`, so no
sampling, flip or warp can ever train on a made-up label. The original padded with 0, a real
class.
"""

from __future__ import annotations

import warnings
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass

import numpy as np

from ..config.options import BORDER_MODES
from .errors import DataError
from .volumes import IGNORE


@dataclass(frozen=True)
class Registration:
    """Per axis: the image range kept, the label range kept, and where those labels go."""

    image_slices: tuple[slice, ...]
    label_slices: tuple[slice, ...]
    target_slices: tuple[slice, ...]
    labels_cut: bool


def registration(
    image_shape: Sequence[int], label_shape: Sequence[int], offset: Sequence[int], where: str
) -> Registration:
    """Work out the centred registration of labels to an image (pure geometry).

    Per axis with image size D, label size L and offset o: the image is cropped to L + 2o when
    larger; when it is smaller the labels that lack o voxels of image context are cut. The
    1-D example of the specification, L=5, D=7, o=1, keeps everything and puts label[i] at
    image[i+1].

    Raises
    ------
    DataError
        When D - L is odd: the centres cannot coincide.
    """
    image_slices, label_slices, target_slices, cut = [], [], [], False
    for axis, (d, l, o) in enumerate(zip(image_shape, label_shape, offset, strict=True)):
        if (d - l) % 2:
            raise DataError(
                f"{where}: image size {d} and label size {l} on spatial axis {axis} of "
                f"{tuple(image_shape)} vs {tuple(label_shape)} differ by an odd number, so the "
                f"labels cannot be centred in the image. Image and labels must be registered at "
                f"their centres (crop or pad one of them by one voxel)."
            )
        margin = (d - l - 2 * o) // 2
        if margin >= 0:
            image_slices.append(slice(margin, d - margin))
            label_slices.append(slice(0, l))
        else:
            image_slices.append(slice(0, d))
            label_slices.append(slice(-margin, max(l + margin, -margin)))
            cut = True
        kept = label_slices[-1].stop - label_slices[-1].start
        target_slices.append(slice(o, o + kept))
    return Registration(tuple(image_slices), tuple(label_slices), tuple(target_slices), cut)


class LabelsCut(UserWarning):
    """Labels of one cube that lie within the offset of its image border (ignored).

    :func:`summarised_label_cuts` turns these into one line per run: with labels as large as
    their images (ISBI 2012, the shipped examples) every cube has them, by design.
    """

    def __init__(self, where: str, lost: int, total: int) -> None:
        super().__init__(
            f"{where}: the image is smaller than labels + 2*offset, so the labels within the "
            f"offset of the image border cannot be trained and are ignored ({lost} of {total})."
        )
        self.where, self.lost, self.total = where, lost, total


def check_labels_fit(image_shape: Sequence[int], label_shape: Sequence[int], where: str) -> None:
    """Labels larger than their image have no image under them: wrong file, axes or crop."""
    if any(l > d for d, l in zip(image_shape, label_shape, strict=True)):
        raise DataError(
            f"{where}: the labels {tuple(label_shape)} are larger than their image "
            f"{tuple(image_shape)} ((z, x, y) after the z-range), so some labels have no image "
            f"under them. Check that the label file belongs to this image, that both use the "
            f"same axis order (zchxy_order) and z-range, and crop the labels to the image."
        )


def checked_registration(
    image_shape: Sequence[int], label_shape: Sequence[int], offset: Sequence[int], where: str
) -> Registration:
    """:func:`registration` of labels that fit their image; a :class:`LabelsCut` warning when
    labels must be cut (both data modes call this)."""
    check_labels_fit(image_shape, label_shape, where)
    reg = registration(image_shape, label_shape, offset, where)
    if reg.labels_cut:
        total = int(np.prod(label_shape))
        kept = int(np.prod([s.stop - s.start for s in reg.label_slices]))
        warnings.warn(LabelsCut(where, total - kept, total), stacklevel=4)
    return reg


@contextmanager
def summarised_label_cuts(n_cubes: int) -> Iterator[None]:
    """Collect the :class:`LabelsCut` warnings of loading ``n_cubes`` cubes into one line.

    It is a note when the cut is the expected border of labels as large as their images, and
    a warning when a cube loses more than half of its labels (images far too small).
    """
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        yield
    cuts = [w.message for w in caught if isinstance(w.message, LabelsCut)]
    for w in caught:
        if not isinstance(w.message, LabelsCut):
            warnings.warn_explicit(w.message, w.category, w.filename, w.lineno)
    if not cuts:
        return
    lost, total = sum(c.lost for c in cuts), sum(c.total for c in cuts)
    text = (
        f"the labels within the net's offset of the image border cannot be trained in "
        f"{len(cuts)} of {n_cubes} cubes ({100 * lost / total:.1f} % of their labels are "
        f"ignored), because those images are not larger than their labels by 2*offset"
    )
    # the total can be under half while one cube loses most of its labels: name that cube
    mostly_lost = [
        f"{c.where} ({100 * c.lost / c.total:.1f} %)" for c in cuts if c.lost > c.total / 2
    ]
    if mostly_lost:
        warnings.warn(
            f"{text}; more than half of the labels are lost in {', '.join(mostly_lost)}.",
            stacklevel=3,
        )
    else:
        print(f"Note: {text} (expected where labels are as large as their images).")


def register(
    image: np.ndarray, labels: np.ndarray, offset: Sequence[int], where: str
) -> tuple[np.ndarray, np.ndarray]:
    """Crop ``image`` (``(ch, z, x, y)``, a view) and place ``labels`` into an IGNORE-filled array.

    Returns the cropped image view and labels of the same spatial shape.
    """
    reg = checked_registration(image.shape[1:], labels.shape, offset, where)
    image = image[(slice(None), *reg.image_slices)]
    out = np.full(image.shape[1:], IGNORE, dtype=labels.dtype)
    kept = labels[reg.label_slices]
    if kept.size:
        out[reg.target_slices] = kept
    return image, out


PAD_MODES = ("0-pad", "c-pad", "mirror")
"""The border modes that pad an image to the patch (``arch.common.PAD_BORDER_MODES``)."""


def border_crop(
    shape: Sequence[int], patch: Sequence[int], n_dim: int, mode: str, where: str
) -> tuple[slice, ...]:
    """The part of a ``(ch, z, x, y)`` image that img-scalar border treatment keeps.

    Checks ``mode`` (and the sizes for ``reject``); ``keep`` and ``reject`` keep everything,
    the other modes centre-crop the axes that are larger than the patch. Pure geometry, so the
    on-disk mode uses it too.
    """
    axes = (1, 2, 3) if n_dim == 3 else (2, 3)
    sizes = [shape[a] for a in axes]
    wanted = [patch[a - 1] for a in axes]
    crop = [slice(None)] * 4
    if mode == "keep":
        return tuple(crop)
    if mode == "reject":
        if sizes != wanted:
            raise DataError(
                f"{where}: the images are {tuple(sizes)} but the net's input is {tuple(wanted)}, "
                f"and border_mode 'reject' refuses to crop or pad. Use 'crop', 'mirror', "
                f"'0-pad' or 'c-pad', or images of the input size."
            )
        return tuple(crop)
    if mode not in BORDER_MODES:
        raise DataError(f"border_mode is {mode!r}; use one of {', '.join(BORDER_MODES)}.")
    for a, n, w in zip(axes, sizes, wanted, strict=True):
        if n > w:
            start = (n - w) // 2
            crop[a] = slice(start, start + w)
    return tuple(crop)


def border_treatment(
    image: np.ndarray, patch: Sequence[int], n_dim: int, mode: str, where: str
) -> np.ndarray:
    """Bring img-scalar images to the net's patch size (reference §3.7, applied once at load).

    Parameters
    ----------
    image
        ``(ch, z, x, y)``. For 3D nets all three axes are brought to ``patch`` ``(z, x, y)``;
        for 2D nets the z axis stacks the examples and only x and y are treated.
    mode
        ``keep``: unchanged (random patches = translations); ``crop``: centred crop to the patch;
        ``0-pad`` / ``c-pad`` / ``mirror``: pad to the patch with zeros, with the mean of each
        image's border values, or by mirroring (left pad ceil(diff/2)), axes that are too large
        are centre-cropped; ``reject``: the images must already have the patch size.
    """
    image = image[border_crop(image.shape, patch, n_dim, mode, where)]
    if mode not in PAD_MODES:
        return image
    axes = (1, 2, 3) if n_dim == 3 else (2, 3)
    pads = [(0, 0)] * 4
    for a in axes:
        diff = patch[a - 1] - image.shape[a]
        pads[a] = (-(-diff // 2), diff // 2)
    if mode == "mirror":
        return np.pad(image, pads, mode="symmetric")
    if mode == "0-pad":
        return np.pad(image, pads, mode="constant")
    return _pad_with_border_mean(image, pads, axes)


def _pad_with_border_mean(
    image: np.ndarray, pads: list[tuple[int, int]], axes: tuple[int, ...]
) -> np.ndarray:
    """'c-pad': each 2D image (or 3D cube) is padded with the mean of its own border voxels."""
    inner = np.ones(image.shape[axes[0] :], bool)
    inner[(slice(1, -1),) * len(axes)] = False
    border = image.reshape(image.shape[: axes[0]] + (-1,))[..., inner.ravel()]
    means = border.mean(axis=-1, dtype=np.float64).astype(np.float32)
    shape = tuple(n + a + b for n, (a, b) in zip(image.shape, pads, strict=True))
    out = np.empty(shape, np.float32)
    out[...] = means.reshape(means.shape + (1,) * len(axes))
    out[tuple(slice(a, a + n) for n, (a, _) in zip(image.shape, pads, strict=True))] = image
    return out
