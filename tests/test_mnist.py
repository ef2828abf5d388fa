"""MNISTData on the real mnist.pkl.gz (../shared/data) and the safe loading of pickles."""

from __future__ import annotations

import functools
import gzip
import os
import pickle
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest

from elektronn.data import mnist
from elektronn.data.mnist import MNISTData, load_mnist, shifted_crops, training_mean
from elektronn.data.plugins import PluginError, build_plugin_data

pytestmark = pytest.mark.slow  # end-to-end: see pyproject's markers


@functools.lru_cache(maxsize=1)
def _cached_splits(path: str) -> list[tuple[np.ndarray, np.ndarray]]:
    return load_mnist(path)


@pytest.fixture
def mnist_path(shared_data: Path, monkeypatch) -> Path:
    """The real file; it is unpickled once per test session (1.5 s), not once per instance."""
    path = shared_data / "mnist" / "mnist.pkl.gz"
    if not path.is_file():
        pytest.skip(f"MNIST not found at {path}")
    monkeypatch.setattr(mnist, "load_mnist", lambda p: _cached_splits(str(p)))
    return path


def write_pickle(path: Path, obj, protocol: int) -> Path:
    with gzip.open(path, "wb") as f:
        pickle.dump(obj, f, protocol=protocol)
    return path


class RunsCommand:
    """Unpickling this would call os.system: what a malicious 'mnist.pkl.gz' could contain."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return os.system, (f"touch {self.marker}",)


# --------------------------------------------------------------------------- safe loading
def test_pickle_with_code_is_refused_without_running_it(tmp_path: Path) -> None:
    marker = tmp_path / "pwned"
    evil = write_pickle(tmp_path / "evil.pkl.gz", [RunsCommand(marker)], protocol=2)
    with pytest.raises(PluginError, match=r"Refusing to load '\w+\.system'.*only numpy arrays"):
        MNISTData(path=evil)
    assert not marker.exists()


@pytest.mark.parametrize("protocol", [2, 5])
def test_numpy_pickles_of_either_protocol_load(tmp_path: Path, protocol: int) -> None:
    rng = np.random.default_rng(0)
    splits = tuple((rng.random((n, 784), dtype=np.float32), np.arange(n) % 10) for n in (8, 4, 4))
    loaded = load_mnist(write_pickle(tmp_path / "small.pkl.gz", splits, protocol))
    for (images, labels), (want_images, want_labels) in zip(loaded, splits, strict=True):
        np.testing.assert_array_equal(images, want_images)
        np.testing.assert_array_equal(labels, want_labels)


def test_wrong_layout_is_reported(tmp_path: Path) -> None:
    path = write_pickle(tmp_path / "odd.pkl.gz", (np.zeros((3, 784)),), protocol=2)
    with pytest.raises(PluginError, match="not the classic mnist.pkl.gz"):
        load_mnist(path)


def test_missing_file_says_where_to_put_it(tmp_path: Path) -> None:
    with pytest.raises(PluginError, match=r"missing\.pkl\.gz' does not exist.*does not download"):
        MNISTData(path=tmp_path / "missing.pkl.gz")


# --------------------------------------------------------------------------- the real data
def test_shapes_labels_and_counts(mnist_path: Path) -> None:
    data = MNISTData(path=mnist_path, seed=0)
    assert data.n_train == 200_000 and data.n_examples("valid") == 10_000
    assert data.n_lab == 10 and data.n_ch == 1 and data.example_shape == (1, 26, 26)
    for source in ("train", "valid", "test"):
        x, y = data.getbatch(50, source)
        assert x.shape == (50, 1, 26, 26) and x.dtype == np.float32
        assert y.shape == (50,) and y.dtype == np.int16 and 0 <= y.min() and y.max() <= 9
    assert (
        "10-class Data Set: #training examples: 200000 and #validation examples: 10000"
        in data.summary()
    )


def test_without_shift_augment_images_stay_28(mnist_path: Path) -> None:
    data = MNISTData(path=mnist_path, shift_augment=False, center=False, seed=0)
    assert data.n_train == 50_000 and data.example_shape == (1, 28, 28)
    raw_images, raw_labels = mnist.load_mnist(mnist_path)[1]
    x, y = data.getbatch(4, "valid")
    np.testing.assert_array_equal(x.reshape(4, -1), raw_images[:4])
    np.testing.assert_array_equal(y, raw_labels[:4])


def test_convert2image_false_gives_vectors(mnist_path: Path) -> None:
    data = MNISTData(path=mnist_path, convert2image=False, warp_on=True, seed=0)
    assert data.example_shape == (676,)
    assert data.getbatch(20)[0].shape == (20, 676)
    assert data.getbatch(20, "valid")[0].shape == (20, 676)


def test_shifted_crops_are_the_four_offsets() -> None:
    images = np.random.default_rng(0).random((3, 1, 28, 28), dtype=np.float32)
    examples, shifts = np.array([0, 2, 2, 1]), np.array([0, 1, 2, 3])
    crops = shifted_crops(images, examples, shifts)
    assert crops.shape == (4, 1, 26, 26)
    for crop, i, (dx, dy) in zip(crops, examples, [(0, 0), (0, 1), (1, 0), (1, 1)], strict=True):
        np.testing.assert_array_equal(crop[0], images[i, 0, dx : dx + 26, dy : dy + 26])


def test_centering_uses_the_training_mean(mnist_path: Path) -> None:
    raw = mnist.load_mnist(mnist_path)
    mean = training_mean(raw[0][0].reshape(-1, 1, 28, 28), shift_augment=True)
    data = MNISTData(path=mnist_path, seed=0)
    valid = raw[1][0].reshape(-1, 28, 28)[:100, 1:-1, 1:-1]
    np.testing.assert_allclose(data.getbatch(100, "valid")[0][:, 0], valid - mean, atol=1e-6)
    train_mean = np.mean([b[0].mean(dtype=np.float64) for b in data.iter_split("train", 50_000)])
    assert abs(train_mean) < 1e-5


def test_only_training_batches_are_warped(mnist_path: Path) -> None:
    warped = MNISTData(path=mnist_path, warp_on=True, seed=5)
    plain = MNISTData(path=mnist_path, warp_on=False, seed=5)
    x_warped, y_warped = warped.getbatch(30)
    x_plain, y_plain = plain.getbatch(30)
    np.testing.assert_array_equal(y_warped, y_plain)  # same examples, drawn in the same order
    assert np.abs(x_warped - x_plain).mean() > 0.01
    np.testing.assert_array_equal(warped.getbatch(300, "valid")[0], plain.getbatch(300, "valid")[0])
    np.testing.assert_array_equal(warped.getbatch(300, "test")[0], plain.getbatch(300, "test")[0])
    x_off, _ = warped.getbatch(30, warp_on=False)  # per-call switch, e.g. for monitor batches
    x_ref, _ = plain.getbatch(30)
    np.testing.assert_array_equal(x_off, x_ref)


def test_workers_reseeded_differently_serve_different_batches(mnist_path: Path) -> None:
    data = MNISTData(path=mnist_path, warp_on=True, seed=0)
    seeds = np.random.SeedSequence(7).spawn(2)
    data.reseed(seeds[0])
    first = data.getbatch(50)
    data.reseed(seeds[1])
    assert not np.array_equal(first[1], data.getbatch(50)[1])
    data.reseed(seeds[0])
    np.testing.assert_array_equal(first[0], data.getbatch(50)[0])


def test_created_from_config_by_name(mnist_path: Path, capsys) -> None:
    config = SimpleNamespace(
        data_class_name="MNISTData",
        data_load_kwargs=dict(path=str(mnist_path), convert2image=False),
        mode="vect-scalar",
    )
    data = build_plugin_data(config)
    assert isinstance(data, MNISTData) and data.example_shape == (676,)
    assert "#training examples: 200000 and #validation examples: 10000" in capsys.readouterr().out
