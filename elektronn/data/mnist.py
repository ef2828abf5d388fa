"""MNIST handwritten digits as a plug-in data class (``data_class_name='MNISTData'``).

Reads the classic ``mnist.pkl.gz`` (a gzip'd pickle of the train 50,000 / valid 10,000 /
test 10,000 splits, each ``(images float32 (n, 784) in [0, 1), labels int64 (n,))``), which the
MNIST example configs use. Nothing is downloaded: the file must already be on disk.

The pickle is read with an unpickler that only reconstructs numpy arrays, because a pickle can
run arbitrary code when loaded and ``path`` may point at any file.

Compared with the original ``MNISTData`` the training mean is subtracted from every split
(not each split's own mean), only training batches are warped, the shifted training crops are
computed per batch instead of being stored four times, and all randomness comes from the
instance's generator (see :class:`~elektronn.data.plugins.Data`).
"""

from __future__ import annotations

import codecs
import gzip
import pickle
from pathlib import Path
from typing import Any

import numpy as np
from scipy import ndimage

from .plugins import Data, PluginError

DEFAULT_PATH = "~/.elektronn/mnist.pkl.gz"
SIDE = 28
CROP = 26
SHIFTS = ((0, 0), (0, 1), (1, 0), (1, 1))
"""The four (x, y) crop offsets of the shift augmentation, as in the original."""

# Warp parameters of the original MNIST example (its twist across the batch becomes a rotation).
ROTATION_DEG = 5.0
SHEAR_DEG = 7.0
SCALE_RANGE = (1.0, 1.15)
STRETCH = 0.25


# --------------------------------------------------------------------------- safe loading
def _allowed_globals() -> dict[tuple[str, str], Any]:
    """The only callables a numpy-array pickle needs, under their numpy 1.x and 2.x names.

    The functions are taken from how numpy itself pickles an array, so they are the real
    reconstruction functions of the installed numpy whatever its version.
    """
    array = np.zeros(1)
    allowed: dict[tuple[str, str], Any] = {
        ("numpy", "ndarray"): np.ndarray,
        ("numpy", "dtype"): np.dtype,
        ("_codecs", "encode"): codecs.encode,  # protocol 2 bytes from Python 3
    }
    for function in (array.__reduce__()[0], array.__reduce_ex__(5)[0]):
        submodule = function.__module__.rsplit(".", 1)[1]
        for package in ("numpy.core", "numpy._core"):
            allowed[(f"{package}.{submodule}", function.__name__)] = function
    return allowed


class NumpyOnlyUnpickler(pickle.Unpickler):
    """An unpickler that refuses every global except numpy's array reconstruction."""

    _ALLOWED = _allowed_globals()

    def find_class(self, module: str, name: str) -> Any:
        try:
            return self._ALLOWED[(module, name)]
        except KeyError:
            raise PluginError(
                f"Refusing to load '{module}.{name}' from a pickle: only numpy arrays are "
                "allowed, because unpickling anything else can run arbitrary code."
            ) from None


def load_mnist(path: str | Path) -> list[tuple[np.ndarray, np.ndarray]]:
    """The (images (n, 784), labels (n,)) pairs of train, valid and test from ``mnist.pkl.gz``.

    Raises
    ------
    PluginError
        If the file is missing (saying where to put it), unreadable, not the expected layout,
        or contains anything but numpy arrays.
    """
    path = Path(path).expanduser()
    if not path.is_file():
        raise PluginError(
            f"The MNIST file '{path}' does not exist. elektronn does not download it: copy the "
            f"classic mnist.pkl.gz there (default location {DEFAULT_PATH}) or give its location "
            "with data_load_kwargs=dict(path='/path/to/mnist.pkl.gz')."
        )
    try:
        with gzip.open(path, "rb") as f:
            splits = NumpyOnlyUnpickler(f, encoding="latin1").load()
    except (OSError, EOFError, pickle.UnpicklingError) as exc:
        raise PluginError(f"The MNIST file '{path}' cannot be read: {exc}.") from None
    return _checked_splits(splits, path)


def _checked_splits(splits: Any, path: Path) -> list[tuple[np.ndarray, np.ndarray]]:
    problem = PluginError(
        f"The MNIST file '{path}' is not the classic mnist.pkl.gz: it should hold three "
        "(images (n, 784), labels (n,)) pairs for train, valid and test."
    )
    if not isinstance(splits, (tuple, list)) or len(splits) != 3:
        raise problem
    checked = []
    for pair in splits:
        if not isinstance(pair, (tuple, list)) or len(pair) != 2:
            raise problem
        images, labels = (np.asarray(a) for a in pair)
        if images.ndim != 2 or images.shape[1] != SIDE * SIDE or labels.shape != images.shape[:1]:
            raise problem
        checked.append((images, labels))
    return checked


# --------------------------------------------------------------------------- augmentation
def shifted_crops(images: np.ndarray, examples: np.ndarray, shifts: np.ndarray) -> np.ndarray:
    """26×26 crops of ``images[examples]`` (n, 1, 28, 28) at offsets ``SHIFTS[shifts]``.

    One gather for the whole batch, so the four shifted training sets are never stored.
    """
    offsets = np.asarray(SHIFTS)[shifts]
    rows = offsets[:, :1] + np.arange(CROP)
    cols = offsets[:, 1:] + np.arange(CROP)
    crops = images[examples[:, None, None], 0, rows[:, :, None], cols[:, None, :]]
    return crops[:, None]


def training_mean(images: np.ndarray, shift_augment: bool) -> float:
    """The mean grey value of what the net is trained on (all four crops when shifting)."""
    if not shift_augment:
        return float(images.mean(dtype=np.float64))
    crops = [images[:, :, dx : dx + CROP, dy : dy + CROP] for dx, dy in SHIFTS]
    return float(np.mean([c.mean(dtype=np.float64) for c in crops]))


def warp_images(images: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Warp every image of a batch ``(bs, ch, x, y)`` by its own smooth random deformation.

    Per example: rotation U(±5°), shear U(±7°), magnification U(1, 1.15) per axis and a
    "stretch" U(±0.25) per axis that grows linearly with the other coordinate (the original's
    warp formula, reference §3.4). Bilinear interpolation in one vectorised call; pixels with
    no source become 0, the mean of centred data.
    """
    bs, n_ch, nx, ny = images.shape
    rot = np.deg2rad(rng.uniform(-ROTATION_DEG, ROTATION_DEG, bs))
    shear = np.deg2rad(rng.uniform(-SHEAR_DEG, SHEAR_DEG, bs))
    inv_scale = 1.0 / rng.uniform(*SCALE_RANGE, size=(2, bs, 1, 1))
    stretch = rng.uniform(-STRETCH, STRETCH, size=(2, bs, 1, 1))
    cx, cy = (nx - 1) / 2, (ny - 1) / 2
    x = (np.arange(nx) / cx - 1)[None, :, None]  # centred coordinates scaled to [-1, 1]
    y = (np.arange(ny) / cy - 1)[None, None, :]
    xs = x * (inv_scale[0] + stretch[0] * y)
    ys = y * (inv_scale[1] + stretch[1] * x)
    u = xs * np.cos(rot - shear)[:, None, None] - ys * np.sin(rot + shear)[:, None, None]
    v = ys * np.cos(rot + shear)[:, None, None] + xs * np.sin(rot - shear)[:, None, None]
    coords = np.broadcast_arrays(
        np.arange(bs)[:, None, None, None],
        np.arange(n_ch)[None, :, None, None],
        (u * cx + cx)[:, None],
        (v * cy + cy)[:, None],
    )
    return ndimage.map_coordinates(
        images, np.stack(coords), order=1, mode="constant", cval=0.0, output=np.float32
    )


# --------------------------------------------------------------------------- the data class
class MNISTData(Data):
    """MNIST digits for img-scalar CNNs (images) or vect-scalar MLPs (flat vectors).

    Parameters
    ----------
    path
        The ``mnist.pkl.gz`` file; default ``~/.elektronn/mnist.pkl.gz``.
    convert2image
        Examples as images ``(1, x, y)``; False gives flat vectors (676 or 784 features).
    warp_on
        Warp training batches (:func:`warp_images`). Validation and test batches are never
        warped. ``getbatch(..., warp_on=False)`` switches it off for one call; setting
        ``data.warp_on`` affects only batches made by this process, not by background workers
        that already hold a copy.
    shift_augment
        Train on the four 26×26 crops at offsets (0|1, 0|1) of every image (200,000 examples,
        as the original logs); validation and test images are cropped by 1 pixel on each side.
        Off: the 50,000 28×28 images.
    center
        Subtract the training mean from every split.
    seed
        Seed of the instance's generator (shuffling, shifts and warps); None = fresh entropy.
    """

    def __init__(
        self,
        path: str | Path | None = None,
        convert2image: bool = True,
        warp_on: bool = False,
        shift_augment: bool = True,
        center: bool = True,
        seed: int | np.random.SeedSequence | None = None,
    ) -> None:
        self.convert2image = convert2image
        self.warp_on = warp_on
        self.shift_augment = shift_augment
        splits = load_mnist(DEFAULT_PATH if path is None else path)
        images = [flat.reshape(-1, 1, SIDE, SIDE) for flat, _ in splits]
        if shift_augment:
            images[1:] = [np.ascontiguousarray(im[:, :, 1:-1, 1:-1]) for im in images[1:]]
        if center:
            mean = training_mean(images[0], shift_augment)
            images = [im - np.float32(mean) for im in images]
        (train_l, valid_l, test_l) = (labels for _, labels in splits)
        super().__init__(images[0], train_l, images[1], valid_l, images[2], test_l, seed=seed)

    def n_examples(self, source: str) -> int:
        """Number of examples; training counts each of the four crops when shifting."""
        n = super().n_examples(source)
        return n * len(SHIFTS) if source == "train" and self.shift_augment else n

    def getbatch(
        self, batch_size: int, source: str = "train", warp_on: bool | None = None
    ) -> tuple[np.ndarray, np.ndarray]:
        """The next ``(data, labels)`` batch, see :meth:`Data.getbatch`.

        ``warp_on`` overrides the attribute for this call (e.g. False for monitor batches);
        it only ever applies to 'train'.
        """
        images, labels = self._images(source, self._next_indices(source, batch_size))
        if source == "train" and (self.warp_on if warp_on is None else warp_on):
            images = warp_images(images, self.rng)
        return self._layout(images), labels

    def _examples(self, source: str, indices: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        images, labels = self._images(source, indices)
        return self._layout(images), labels

    def _images(self, source: str, indices: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Images ``(bs, 1, x, y)`` and labels; training index ``i`` is crop ``i // 50000``."""
        if source != "train" or not self.shift_augment:
            return super()._examples(source, indices)
        n = len(self.train_l)
        examples = indices % n
        return shifted_crops(self.train_d, examples, indices // n), self.train_l[examples]

    def _layout(self, images: np.ndarray) -> np.ndarray:
        return images if self.convert2image else images.reshape(len(images), -1)
