"""Label sanity before training and the majority-class baseline (issue 17, item 6)."""

from __future__ import annotations

import h5py
import numpy as np
import pytest
from matplotlib.axes import Axes

from elektronn.data import DataError, ImageData
from elektronn.data.label_stats import check_training_labels, write_baseline
from elektronn.data.plugins import Data, PluginSource
from elektronn.data.source import DataSource
from elektronn.train.history import History
from elektronn.train.plots import create_plots


def data_with_labels(tmp_path, labels: np.ndarray, **kwargs) -> ImageData:
    with h5py.File(tmp_path / "img.h5", "w") as f:
        f["raw"] = np.zeros(labels.shape, np.uint8)
    with h5py.File(tmp_path / "lab.h5", "w") as f:
        f["lab"] = labels
    return ImageData([("img.h5", "raw")], [("lab.h5", "lab")], data_path=str(tmp_path),
                     label_path=str(tmp_path), n_dim=2, patch_shape=(5, 5), int_offset=(0, 0),
                     **kwargs)  # fmt: skip


def test_shares_and_majority_class_error_are_printed(tmp_path, capsys):
    labels = np.zeros((10, 10, 2), np.int16)
    labels[:2] = 1  # 20 % class 1
    labels[-1] = -1  # 10 voxels per slice ignored
    data = data_with_labels(tmp_path, labels)
    stats = check_training_labels(data, data.n_lab, "nll")
    out = capsys.readouterr().out
    assert "Training labels: class 0 77.8 %, class 1 22.2 % (180 labels; 20 negative ones" in out
    assert "Majority-class error: 22.22 % (always answering class 0)" in out
    assert stats.majority == 0 and stats.ignored == 20


def test_labels_of_one_class_only_are_refused(tmp_path):
    data = data_with_labels(tmp_path, np.zeros((10, 10, 2), np.int16), n_lab=2)
    with pytest.raises(DataError, match=r"contain only class 0 \(n_lab=2.*learns nothing"):
        check_training_labels(data, data.n_lab, "nll")


def test_classes_that_never_occur_are_named(tmp_path):
    labels = np.zeros((10, 10, 2), np.int16)
    labels[:5] = 1
    data = data_with_labels(tmp_path, labels, n_lab=3)
    with pytest.warns(UserWarning, match=r"class\(es\) 2 of n_lab=3 never occur"):
        check_training_labels(data, data.n_lab, "nll")


def test_the_errors_plot_draws_the_majority_class_error(tmp_path, monkeypatch, capsys):
    data = data_with_labels(tmp_path, np.arange(200, dtype=np.int16).reshape(10, 10, 2) % 2)
    backup = tmp_path / "run" / "Backup"
    backup.mkdir(parents=True)
    write_baseline(backup, "run", check_training_labels(data, data.n_lab, "nll"))
    history = History()
    for step in range(3):
        history.add("errors", step, step * 60.0, 50.0, 49.0)
    history.save(backup, "run")
    drawn = []
    real_axhline = Axes.axhline

    def recording_axhline(self, y=0, *args, **kwargs):
        drawn.append((y, kwargs.get("label")))
        return real_axhline(self, y, *args, **kwargs)

    monkeypatch.setattr(Axes, "axhline", recording_axhline)
    assert [p.name for p in create_plots(tmp_path / "run", "run")] == ["run.Errors.png"]
    assert drawn == [(50.0, "majority-class error (always class 0)")]


def test_in_memory_data_classes_have_their_labels_checked():
    examples = np.zeros((20, 3), np.float32)
    one_class = Data(examples, np.ones(20, np.int16), n_lab=2)
    with pytest.raises(DataError, match=r"contain only class 1 \(n_lab=2"):
        check_training_labels(one_class, 2, "nll")


def test_a_users_class_may_list_its_own_training_labels(capsys):
    class Own:  # not a DataSource: wrapped in PluginSource
        n_lab, example_shape = 2, (3,)

        def getbatch(self, batch_size, source="train"):
            raise AssertionError("not needed for the label check")

        def training_labels(self):
            return iter([np.array([0, 0, 0, 1], np.int16)])

    stats = check_training_labels(PluginSource(Own()), 2, "nll")
    assert stats.majority == 0 and "class 0 75.0 %, class 1 25.0 %" in capsys.readouterr().out


def test_sources_without_listed_labels_are_not_checked():
    class Drawn(DataSource):
        n_lab, example_shape = 2, (3,)

    assert check_training_labels(Drawn(), 2, "nll") is None
