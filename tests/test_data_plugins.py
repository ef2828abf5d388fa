"""Plug-in data classes: loading by name or (file, class), contract checks, the base Data."""

from __future__ import annotations

import pickle
import textwrap
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest

from elektronn.data.errors import DataError
from elektronn.data.mnist import MNISTData
from elektronn.data.plugins import Data, PluginError, build_plugin_data, load_data_class

USER_FILE = """
import numpy as np
from elektronn.data.plugins import Data


class Blobs(Data):
    def __init__(self, n=40, n_features=3, seed=None):
        rng = np.random.default_rng(0)
        x = rng.normal(size=(n, n_features))
        y = (x[:, 0] > 0).astype(np.int64)
        super().__init__(x[:30], y[:30], x[30:], y[30:], seed=seed)


class Plain:
    n_lab = 2
    example_shape = (3,)

    def getbatch(self, batch_size, source="train"):
        return np.zeros((batch_size, 3), np.float32), np.zeros(batch_size, np.int16)


class NoBatches:
    n_lab = 2
"""


@pytest.fixture
def user_file(tmp_path: Path) -> Path:
    path = tmp_path / "my_data.py"
    path.write_text(textwrap.dedent(USER_FILE))
    return path


def config(name, mode: str = "vect-scalar", **load_kwargs) -> SimpleNamespace:
    return SimpleNamespace(data_class_name=name, data_load_kwargs=load_kwargs, mode=mode)


def indexed_data(n_train: int = 20, n_valid: int = 7, seed: int | None = 0) -> Data:
    """Examples whose single feature is their own index, so batches reveal the order."""
    train = np.arange(n_train, dtype=np.float32)[:, None]
    valid = np.arange(n_valid, dtype=np.float32)[:, None]
    return Data(train, np.arange(n_train) % 3, valid, np.arange(n_valid) % 3, seed=seed)


def indices(batch: tuple[np.ndarray, np.ndarray]) -> list[int]:
    return batch[0][:, 0].astype(int).tolist()


# --------------------------------------------------------------------------- loading
def test_user_class_from_file_is_loaded_and_created(user_file: Path, capsys) -> None:
    cls = load_data_class((str(user_file), "Blobs"))
    assert cls.__name__ == "Blobs"
    data = build_plugin_data(config([str(user_file), "Blobs"], seed=3))
    x, y = data.getbatch(8)
    assert x.shape == (8, 3) and x.dtype == np.float32 and y.dtype == np.int16
    assert data.n_lab == 2 and data.example_shape == (3,) and data.has_source("valid")
    assert (
        "2-class Data Set: #training examples: 30 and #validation examples: 10"
        in capsys.readouterr().out
    )


def test_user_class_instances_pickle(user_file: Path) -> None:
    """Background workers may need to pickle the data object; the module must be importable."""
    data = load_data_class((str(user_file), "Blobs"))(seed=1)
    copy = pickle.loads(pickle.dumps(data))
    np.testing.assert_array_equal(copy.getbatch(5)[0], data.getbatch(5)[0])


def test_plain_class_without_base_class_satisfies_contract(user_file: Path) -> None:
    data = build_plugin_data(config((str(user_file), "Plain")))
    assert data.getbatch(4)[0].shape == (4, 3)


def test_shipped_class_by_name() -> None:
    assert load_data_class("MNISTData") is MNISTData


def test_unknown_shipped_name_lists_the_shipped_ones() -> None:
    with pytest.raises(PluginError, match="MNISTData.*file_path, class_name"):
        load_data_class("MNISTdata")


def test_missing_file_names_file_and_class(tmp_path: Path) -> None:
    path = tmp_path / "nowhere.py"
    with pytest.raises(PluginError, match=r"nowhere\.py.*does not exist.*'Blobs'"):
        load_data_class((str(path), "Blobs"))


def test_missing_class_names_file_and_class(user_file: Path) -> None:
    with pytest.raises(PluginError, match=r"my_data\.py' defines no class 'Blobz'"):
        load_data_class((str(user_file), "Blobz"))


def test_class_without_getbatch_is_refused(user_file: Path) -> None:
    with pytest.raises(PluginError, match=r"'NoBatches' in .*my_data\.py.* no method getbatch"):
        load_data_class((str(user_file), "NoBatches"))


def test_file_that_fails_to_import_is_reported(tmp_path: Path) -> None:
    path = tmp_path / "broken.py"
    path.write_text("import numpy as np\nraise RuntimeError('no data here')\n")
    with pytest.raises(PluginError, match=r"broken\.py' failed: RuntimeError: no data here"):
        load_data_class((str(path), "Anything"))


def test_rejected_load_kwargs_name_the_option(user_file: Path) -> None:
    with pytest.raises(PluginError, match="data_load_kwargs.*n_featurez"):
        build_plugin_data(config((str(user_file), "Blobs"), n_featurez=4))


def test_missing_contract_attribute_for_image_mode(user_file: Path) -> None:
    with pytest.raises(PluginError, match="lacks the attribute.*n_ch.*img-scalar"):
        build_plugin_data(config((str(user_file), "Plain"), mode="img-scalar"))


def test_plugin_error_is_a_data_error() -> None:
    """The CLI reports DataErrors as bad input (one paragraph, exit code 2)."""
    assert issubclass(PluginError, DataError) and issubclass(PluginError, ValueError)


# --------------------------------------------------------------------------- the base class
def test_attributes_and_dtypes() -> None:
    images = np.zeros((6, 2, 5, 4), dtype=np.float64)
    data = Data(images, np.array([0, 4, -1, 2, 1, 0]))
    assert data.n_lab == 5  # max label + 1; the ignore label -1 is no class
    assert data.example_shape == (2, 5, 4) and data.n_ch == 2
    x, y = data.getbatch(3)
    assert x.dtype == np.float32 and y.dtype == np.int16
    assert not data.has_source("valid") and not data.has_source("test")
    vectors = Data(np.zeros((4, 7)), np.zeros(4, np.int64), n_lab=3)
    assert vectors.example_shape == (7,) and vectors.n_ch == 1 and vectors.n_lab == 3


def test_float_labels_need_n_lab() -> None:
    with pytest.raises(PluginError, match="n_lab"):
        Data(np.zeros((4, 2)), np.zeros(4, np.float64))
    assert Data(np.zeros((4, 2)), np.zeros(4), n_lab=1).getbatch(2)[1].dtype == np.float32


def test_mismatched_split_lengths() -> None:
    with pytest.raises(PluginError, match="'valid' split.*3 examples and 2 labels"):
        Data(np.zeros((4, 2)), np.zeros(4, int), np.zeros((3, 2)), np.zeros(2, int))


def test_absent_split_and_bad_source() -> None:
    data = Data(np.zeros((4, 2)), np.zeros(4, int))
    with pytest.raises(PluginError, match="no 'test' split"):
        data.getbatch(2, source="test")
    with pytest.raises(PluginError, match="source must be one of"):
        data.getbatch(2, source="validation")


def test_seeds_give_reproducible_and_distinct_sequences() -> None:
    a, b, c = indexed_data(seed=1), indexed_data(seed=1), indexed_data(seed=2)
    seq_a = [indices(a.getbatch(5)) for _ in range(6)]
    assert seq_a == [indices(b.getbatch(5)) for _ in range(6)]
    assert seq_a != [indices(c.getbatch(5)) for _ in range(6)]


def test_reseed_restarts_the_stream() -> None:
    """Workers reseed copies of one object: equal seeds must agree, different ones differ."""
    data = indexed_data(seed=0)
    data.getbatch(7)
    seeds = np.random.SeedSequence(42).spawn(2)
    data.reseed(seeds[0])
    first = [indices(data.getbatch(5)) for _ in range(4)]
    data.reseed(seeds[0])
    assert first == [indices(data.getbatch(5)) for _ in range(4)]
    data.reseed(seeds[1])
    assert first != [indices(data.getbatch(5)) for _ in range(4)]


def test_train_epochs_cover_every_example_once_without_repeats() -> None:
    data = indexed_data(n_train=20)
    batches = [indices(data.getbatch(5)) for _ in range(12)]  # three epochs
    for epoch in range(3):
        seen = sum(batches[4 * epoch : 4 * epoch + 4], [])
        assert sorted(seen) == list(range(20))
    assert all(batches[i] != batches[i + 1] for i in range(len(batches) - 1))
    assert batches[:4] != batches[4:8]  # reshuffled


def test_batches_straddling_an_epoch_skip_nothing() -> None:
    data = indexed_data(n_train=10)
    stream = sum((indices(data.getbatch(3)) for _ in range(10)), [])  # 30 = three epochs
    for epoch in range(3):
        assert sorted(stream[10 * epoch : 10 * epoch + 10]) == list(range(10))
    assert indices(data.getbatch(25))  # a batch larger than the split spans several epochs


def test_valid_batches_cycle_through_the_split_in_order() -> None:
    data = indexed_data(n_valid=7)
    assert indices(data.getbatch(3, "valid")) == [0, 1, 2]
    data.getbatch(5)  # training batches do not move the validation walk
    assert indices(data.getbatch(3, "valid")) == [3, 4, 5]
    assert indices(data.getbatch(3, "valid")) == [6, 0, 1]


def test_iter_split_sees_each_example_once_and_leaves_the_walk_alone() -> None:
    data = indexed_data(n_valid=7)
    data.getbatch(2, "valid")
    batches = [indices(b) for b in data.iter_split("valid", 3)]
    assert batches == [[0, 1, 2], [3, 4, 5], [6]]
    assert indices(data.getbatch(2, "valid")) == [2, 3]
    with pytest.raises(PluginError, match="no 'test' split"):
        next(data.iter_split("test", 3))
