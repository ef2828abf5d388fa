"""Optional TensorBoard logging: absent package → no logger; present → readable event files."""

import builtins
import math

import numpy as np
import pytest

from elektronn.train import tensorboard
from elektronn.train.history import History
from elektronn.train.loggers import ERROR_TAGS, HISTORY_TAGS, SPEED_TAG


def test_no_logger_without_the_tensorboard_package(tmp_path, monkeypatch):
    real_import = builtins.__import__

    def no_tensorboard(name, *args, **kwargs):
        if name == "tensorboard" or name.startswith("tensorboard."):
            raise ModuleNotFoundError(f"No module named '{name}'")
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", no_tensorboard)
    assert not tensorboard.available()
    assert tensorboard.build_logger(tmp_path) is None
    assert not (tmp_path / tensorboard.LOG_FOLDER).exists()


def test_disabled_logger_is_none(tmp_path):
    assert tensorboard.build_logger(tmp_path, enabled=False) is None


def test_image_tags_follow_the_preview_file_names(tmp_path):
    preview = tmp_path / "isbi-pred-0-c1-z14-0.25hrs.png"
    assert tensorboard.image_tag(preview) == "preview/cube0/class1/z14"
    assert tensorboard.image_tag(tmp_path / "debugGetCNNBatch.png") == "images/debugGetCNNBatch"


@pytest.mark.parametrize("shape", [(6, 5), (6, 5, 3), (6, 5, 4)])
def test_png_becomes_rgb(tmp_path, shape):
    from matplotlib import image

    path = tmp_path / "a.png"
    values = np.linspace(0, 1, int(np.prod(shape))).reshape(shape)
    if len(shape) == 2:
        image.imsave(path, values, cmap="gray", vmin=0, vmax=1)
    else:
        image.imsave(path, values)
    rgb = tensorboard.read_png(path)
    assert rgb.shape == (6, 5, 3) and rgb.dtype == np.float32
    assert 0 <= rgb.min() and rgb.max() <= 1


# -- with tensorboard installed -------------------------------------------------------------


def _events(log_dir):
    """Scalars {tag: [(step, value)]} and image tags {tag: [step]} of the event files."""
    pytest.importorskip("tensorboard")
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    acc = EventAccumulator(str(log_dir), size_guidance={"scalars": 0, "images": 0})
    acc.Reload()
    tags = acc.Tags()
    scalars = {t: [(e.step, e.value) for e in acc.Scalars(t)] for t in tags["scalars"]}
    images = {t: [e.step for e in acc.Images(t)] for t in tags["images"]}
    return scalars, images


def _history_step(history, step, valid=math.nan):
    history.add("history", step, step / 10, 0.5, 0.6, 0.55, valid, -0.01, 0.01)
    history.add("errors", step, step / 10, 20.0, valid)


@pytest.fixture
def logger(tmp_path):
    pytest.importorskip("tensorboard")
    pytest.importorskip("torch.utils.tensorboard")
    log = tensorboard.build_logger(tmp_path)
    assert log is not None
    yield log
    log.close()


def test_history_values_become_scalars(tmp_path, logger):
    history = History()
    _history_step(history, 0, valid=30.0)
    logger.log_history(history, 0, its_per_s=12.5)
    _history_step(history, 50)  # no validation value: NaN is left out
    logger.log_history(history, 50)
    logger.close()
    scalars, _ = _events(tmp_path / tensorboard.LOG_FOLDER)
    assert scalars["loss/smoothed"] == [(0, 0.5), (50, 0.5)]
    assert scalars["error/train"] == [(0, 20.0), (50, 20.0)]
    assert scalars["error/valid"] == [(0, 30.0)]
    assert [s for s, _ in scalars["optimizer/learning_rate"]] == [0, 50]
    assert scalars["speed/steps_per_s"] == [(0, 12.5)]
    assert set(scalars) == set(HISTORY_TAGS.values()) | set(ERROR_TAGS.values()) | {SPEED_TAG}


def test_preview_pngs_become_images(tmp_path, logger):
    from matplotlib import image

    paths = []
    for z in (3, 4):
        path = tmp_path / f"run-pred-0-c1-z{z}-0.1hrs.png"
        image.imsave(path, np.random.default_rng(z).random((16, 12)), cmap="gray")
        paths.append(path)
    logger.log_images(paths, 100)
    logger.log_images(paths[:1], 200)
    logger.close()
    _, images = _events(tmp_path / tensorboard.LOG_FOLDER)
    assert images == {"preview/cube0/class1/z3": [100, 200], "preview/cube0/class1/z4": [100]}


def test_resumed_run_drops_stale_events(tmp_path):
    """A run stopped after step 300 but resumed from step 200 does not keep steps > 200."""
    pytest.importorskip("tensorboard")
    history = History()
    first = tensorboard.build_logger(tmp_path)
    for step in (100, 200, 300):
        _history_step(history, step)
        first.log_history(history, step)
    first.close()
    resumed = tensorboard.build_logger(tmp_path)
    for step in (250, 300):
        _history_step(history, step)
        resumed.log_history(history, step)
    resumed.close()
    scalars, _ = _events(tmp_path / tensorboard.LOG_FOLDER)
    assert [s for s, _ in scalars["loss/train"]] == [100, 200, 250, 300]


def test_nothing_written_before_the_first_value(tmp_path, logger):
    logger.log_values({"error/valid": math.nan, "lr": None}, 0)
    logger.log_images([], 0)
    assert not (tmp_path / tensorboard.LOG_FOLDER).exists()
