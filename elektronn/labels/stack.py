"""``elektronn-labels stack``: 2D image files (png, tif) to one h5 cube.

When 2D image files are stacked, an image's row index becomes x and its column index y, i.e.
numpy's first axis of the loaded image stays the first axis of the cube; so
``plt.imshow(cube[:, :, z])`` shows slice z in the orientation of the original file, and label
images stacked the same way stay registered with their raw images.
"""

from __future__ import annotations

import argparse
import glob
import os
import re
from collections.abc import Sequence
from contextlib import ExitStack
from pathlib import Path

import numpy as np

from .errors import LabelError
from .h5io import H5Ref, LabelFiles, h5_arg, new_dataset

IMAGE_SUFFIXES = (".png", ".tif", ".tiff")
"""Files a folder given to ``stack`` is searched for (case-insensitive)."""


def natural_key(text: str) -> list[str | int]:
    """Sort key that orders ``img2`` before ``img10`` (digit runs compare as numbers).

    ``re.split`` with a group alternates text and digit runs, so positions never mix types.
    """
    return [int(part) if i % 2 else part.lower() for i, part in enumerate(re.split(r"(\d+)", text))]


def image_files(source: str) -> list[str]:
    """The images of a folder (png/tif), or the files a glob pattern matches, sorted naturally."""
    source = os.path.expanduser(source)
    if os.path.isdir(source):
        names = [str(p) for p in Path(source).iterdir() if p.suffix.lower() in IMAGE_SUFFIXES]
        if not names:
            raise LabelError(
                f"The folder {source} contains no image files ({', '.join(IMAGE_SUFFIXES)})."
            )
    else:
        names = [name for name in glob.glob(source) if os.path.isfile(name)]
        if not names:
            raise LabelError(
                f"'{source}' is neither a folder nor a pattern matching any files "
                f"(quote patterns such as 'raw/*.png' so the shell passes them on)."
            )
    return sorted(names, key=natural_key)


def read_image(path: str, labels: bool = False) -> np.ndarray:
    """Read one 2D image as ``(x, y)`` (row = x, column = y) or ``(ch, x, y)``.

    A fully opaque alpha channel is dropped and grey colour images (R == G == B, as
    ``matplotlib.pyplot.imsave`` writes them) become one channel, so that a grey stack is
    ``(x, y, z)``. Values keep their stored dtype (the training pipeline scales integers by
    their dtype's maximum itself).

    Parameters
    ----------
    path
        A png (read with Pillow, which matplotlib requires) or tif (needs ``tifffile``).
    labels
        Label image: must end up with one channel and integer values; palette indices of
        palette PNGs are taken as the labels instead of their colours.
    """
    raw = _read_tiff(path) if path.lower().endswith((".tif", ".tiff")) else _read_pil(path, labels)
    image = _drop_redundant_channels(raw, path)
    if labels:
        return _as_label_image(image, path)
    return image if image.ndim == 2 else np.moveaxis(image, -1, 0)


def _read_pil(path: str, labels: bool) -> np.ndarray:
    """PNG (or anything Pillow reads) with exact integer values, unlike matplotlib's floats."""
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(path) as image:
            if image.mode == "P" and not labels:
                image = image.convert("RGBA")
            return np.asarray(image)
    except (OSError, UnidentifiedImageError) as exc:
        raise LabelError(f"The file {path} cannot be read as an image: {exc}.") from None


def _read_tiff(path: str) -> np.ndarray:
    """One-page TIFF via tifffile, which reads the 16-bit and float files EM setups produce."""
    try:
        import tifffile
    except ImportError:
        raise LabelError(
            f"Reading TIFF files such as {path} needs the tifffile package: pip install tifffile"
        ) from None
    try:
        with tifffile.TiffFile(path) as tiff:
            n_pages = len(tiff.pages)
            image = tiff.asarray(key=0)
    except (OSError, ValueError) as exc:  # tifffile.TiffFileError is a ValueError
        raise LabelError(f"The file {path} cannot be read as a TIFF image: {exc}.") from None
    if n_pages > 1:
        raise LabelError(
            f"{path} is a multi-page TIFF ({n_pages} pages); stack needs one 2D image per "
            f"file (a TIFF stack is already a cube: read it with tifffile.imread and write it "
            f"with h5py)."
        )
    return image


def _drop_redundant_channels(image: np.ndarray, path: str) -> np.ndarray:
    """``(rows, cols[, ch])`` without an opaque alpha channel and without grey duplicates."""
    if image.ndim == 2:
        return image
    if image.ndim != 3 or image.shape[-1] not in (2, 3, 4):
        raise LabelError(
            f"The image {path} has shape {image.shape}; expected a 2D image, grey (rows, cols) "
            f"or colour (rows, cols, 3 or 4)."
        )
    if image.shape[-1] in (2, 4) and np.all(image[..., -1] == _opaque(image.dtype)):
        image = image[..., :-1]
    if image.shape[-1] == 1 or (image.shape[-1] == 3 and np.all(image == image[..., :1])):
        return image[..., 0]
    return image


def _opaque(dtype: np.dtype) -> float:
    """Alpha value of a fully opaque pixel in ``dtype``."""
    return float(np.iinfo(dtype).max) if dtype.kind in "iu" else 1.0


def _as_label_image(image: np.ndarray, path: str) -> np.ndarray:
    """Labels are one integer channel: colours or fractions cannot be class IDs."""
    if image.ndim != 2:
        raise LabelError(
            f"The label image {path} has {image.shape[-1]} differing colour channels; label "
            f"images must be grey or palette images with one integer value per pixel."
        )
    if image.dtype == np.bool_:
        return image.astype(np.uint8)
    if image.dtype.kind not in "iu":
        raise LabelError(
            f"The label image {path} has dtype {image.dtype}; labels must be integers."
        )
    return image


def stack_images(
    files: Sequence[str], target: H5Ref, labels: bool = False, overwrite: bool = False
) -> tuple[tuple[int, ...], np.dtype]:
    """Write 2D images as the z-slices of an h5 cube ``(x, y, z)`` or ``(ch, x, y, z)``.

    Images are read and written one at a time, so the stack never has to fit in memory.
    Every image must have the shape and dtype of the first; labels are gzip-compressed.

    Returns
    -------
    tuple
        Shape and dtype of the written dataset.
    """
    first = read_image(files[0], labels)
    shape = (*first.shape, len(files))
    with ExitStack() as stack:
        h5_files = LabelFiles(stack, target.path)
        with new_dataset(h5_files, target, shape, first.dtype, labels, overwrite) as out:
            for z, path in enumerate(files):
                image = first if z == 0 else read_image(path, labels)
                _check_same(image, first, path, files[0])
                out[..., z] = image
    return shape, first.dtype


def _check_same(image: np.ndarray, first: np.ndarray, path: str, first_path: str) -> None:
    """Name the first image that does not fit the cube, before it is half-written."""
    if image.shape != first.shape or image.dtype != first.dtype:
        raise LabelError(
            f"The image {path} is {_describe(image)}, but the first image {first_path} is "
            f"{_describe(first)}; all images of a stack must agree (x = row, y = column)."
        )


def _describe(image: np.ndarray) -> str:
    """Shape and dtype in the cube's axis names, as the mismatch error shows them."""
    layout = "(x, y)" if image.ndim == 2 else "(ch, x, y)"
    return f"{layout} = {image.shape} {image.dtype}"


def add_command(commands: argparse._SubParsersAction) -> None:
    """The ``stack`` sub-command; :func:`run` is stored as ``args.run``."""
    stack = commands.add_parser(
        "stack",
        help="stack a folder of 2D images into an h5 cube (x, y, z)",
        description="Stack 2D images (png; tif with tifffile), sorted naturally (img2 before "
        "img10), as z-slices of (x, y, z), or (ch, x, y, z) for colour; image row = x, "
        "column = y. Grey RGBA images (R == G == B, opaque) become one channel.",
    )
    stack.add_argument("source", help="folder of images, or a quoted glob like 'raw/*.png'")
    stack.add_argument("target", type=h5_arg, help="output, FILE.h5:KEY")
    stack.add_argument(
        "--labels",
        action="store_true",
        help="label images: one integer channel, palette indices, gzip",
    )
    stack.add_argument("--overwrite", action="store_true", help="replace an existing output")
    stack.set_defaults(run=run)


def run(args: argparse.Namespace) -> None:
    """Stack the images, then print what was written."""
    files = image_files(args.source)
    shape, dtype = stack_images(files, args.target, args.labels, args.overwrite)
    print(f"wrote {args.target}: {len(files)} images, shape {shape} {dtype}")
