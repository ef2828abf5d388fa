"""What the net sees at prediction time is what it saw in training: previews and
``elektronn-predict`` scale the grey values like the training images and apply the training's
``pre_process='standardise'`` statistics, which the parameter files carry."""

import subprocess
import sys

import h5py
import numpy as np
import pytest
from tiny import run_cli, tiny_config

from elektronn.net.paramfile import build_model_from_params, input_standardisation, load_params
from elektronn.predict import predict_dense
from elektronn.train import preview as preview_module
from elektronn.train.preview import Preview, read_preview_cubes

pytestmark = pytest.mark.slow  # end-to-end: see pyproject's markers


def training_images(data_dir) -> np.ndarray:
    """Both tiny cubes' images as the training reads them (uint8 / 255), flattened."""
    images = []
    for i in range(2):
        with h5py.File(data_dir / f"raw_{i}.h5", "r") as f:
            images.append(np.asarray(f["raw"], dtype=np.float64).ravel() / 255)
    return np.concatenate(images)


def standardised_run(tmp_path):
    """A 3-step tiny run with pre_process='standardise' and a preview at the first step."""
    extra = (
        "pre_process = 'standardise'\nn_steps = 3\nrandom_seed = 1\n"
        f"preview_data_path = {str(tmp_path / 'data' / 'raw_1.h5')!r}\n"
        "initial_prev_h = 0.0\npreview_kwargs = dict(export_class=1, max_z_pred=1)\n"
    )
    result = run_cli(tiny_config(tmp_path, extra), "--gpu=false", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    return tmp_path / "runs" / "tiny"


@pytest.fixture
def run_dir(tmp_path, tiny_data):
    return standardised_run(tmp_path)


def test_param_file_carries_the_training_statistics(run_dir, tiny_data):
    images = training_images(tiny_data)
    mean, std = input_standardisation(load_params(run_dir / "tiny_end.param"))
    assert mean == pytest.approx(images.mean(), rel=1e-6)
    assert std == pytest.approx(images.std(), rel=1e-6)


def test_elektronn_predict_standardises_like_training(run_dir, tiny_data, tmp_path):
    out = tmp_path / "prob.h5"
    result = subprocess.run(
        [sys.executable, "-m", "elektronn.predict.cli", str(run_dir),
         f"{tiny_data / 'raw_1.h5'}:raw", str(out), "--gpu=false"],
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    with h5py.File(out, "r") as f:
        predicted = np.asarray(f[next(iter(f.keys()))])
    model = build_model_from_params(run_dir / "tiny_end.param")
    with h5py.File(tiny_data / "raw_1.h5", "r") as f:
        raw = np.asarray(f["raw"])[None]  # (ch, x, y, z)
    mean, std = input_standardisation(load_params(run_dir / "tiny_end.param"))
    by_hand = ((raw / 255.0 - mean) / std).astype(np.float32)
    expected = predict_dense(model, by_hand, axes="cxyz")
    np.testing.assert_allclose(predicted, expected, atol=1e-5)
    unstandardised = predict_dense(model, raw, axes="cxyz")
    assert np.abs(predicted - unstandardised).max() > 1e-3  # the statistics matter


def test_preview_is_the_standardised_prediction(run_dir, tiny_data, tmp_path, monkeypatch):
    # the run wrote its preview at the first step
    assert len(list(run_dir.glob("tiny-pred-0-c1-z*-0hrs.png"))) == 1
    assert len(list(run_dir.glob("tiny-raw-0-z*.png"))) == 1
    # the same preview with the final weights, against a prediction of standardised input
    model = build_model_from_params(run_dir / "tiny_end.param")
    statistics = input_standardisation(load_params(run_dir / "tiny_end.param"))
    cubes = read_preview_cubes(str(tiny_data / "raw_1.h5"))
    preview = Preview(cubes, "again", n_lab=2, z_halo=0, export_class=1, max_z_pred=1)
    shown_images = {}
    monkeypatch.setattr(
        preview_module, "save_image", lambda p, image, *_: shown_images.update({p: image})
    )
    (png,) = preview.predict(model, 1.0, tmp_path, statistics)
    z = int(png.name.split("-z")[1].split("-")[0])
    slab = (cubes[0][:, z : z + 1] / 255.0 - statistics[0]) / statistics[1]
    expected = predict_dense(model, slab.astype(np.float32), pad_raw=True)[1, 0]
    shown = shown_images[png]
    np.testing.assert_allclose(shown, expected, atol=1e-5)
    unstandardised = predict_dense(model, cubes[0][:, z : z + 1], pad_raw=True)[1, 0]
    assert np.abs(shown - unstandardised).max() > 0.04  # the statistics matter
