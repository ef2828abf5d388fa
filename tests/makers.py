"""Test data makers shared by the test files: small h5 files, ImageData over them, tiny nets."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import h5py
import numpy as np
import torch
from numpy.typing import ArrayLike

from elektronn.data import ImageData
from elektronn.net.model import ElektronnNet, NetSpec


def write_h5(path: Path, mode: str = "w", **datasets: ArrayLike) -> None:
    """Write each keyword as a dataset of the h5 file ``path`` (a new file, or ``mode="a"``)."""
    with h5py.File(path, mode) as h5:
        for key, value in datasets.items():
            h5[key] = value


def coded_volume(shape: Sequence[int]) -> np.ndarray:
    """Float (x, y, z) image whose value encodes its position: 10000 z + 100 x + y."""
    x, y, z = np.meshgrid(*(np.arange(n) for n in shape), indexing="ij")
    return (10000 * z + 100 * x + y).astype(np.float32)


def image_data(tmp_path: Path, image: np.ndarray, labels: np.ndarray, **kwargs) -> ImageData:
    """ImageData of one image/label pair, written to ``tmp_path`` as img.h5:raw, lab.h5:lab."""
    write_h5(tmp_path / "img.h5", raw=image)
    write_h5(tmp_path / "lab.h5", lab=labels)
    return ImageData(
        [("img.h5", "raw")],
        [("lab.h5", "lab")],
        data_path=str(tmp_path),
        label_path=str(tmp_path),
        **kwargs,
    )


def tiny_net(
    filters: Sequence[Sequence[int]],
    pool: Sequence[Sequence[int]],
    nof: Sequence[int],
    *,
    n_ch: int = 1,
    n_lab: int = 2,
    act: str = "tanh",
    pooling_mode: str = "max",
    mlp: Sequence[int] = (),
    input_shape: tuple[int, ...] | None = None,
    seed: int = 0,
) -> ElektronnNet:
    """A small net with seeded weights; filters/pool per layer in internal order."""
    n = len(filters)
    spec = NetSpec(
        n_ch=n_ch, n_lab=n_lab, n_dim=len(filters[0]),
        filters=tuple(map(tuple, filters)), pool=tuple(map(tuple, pool)),
        nof_filters=tuple(nof), pooling_mode=(pooling_mode,) * n,
        activation_func=(act,) * (n + len(mlp)), dropout_rates=(),
        mlp_layers=tuple(mlp), rnn_layer_kwargs=None, input_shape=input_shape,
    )  # fmt: skip
    torch.manual_seed(seed)
    return ElektronnNet(spec)
