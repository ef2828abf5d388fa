"""A U-Net trained end to end: start-up summary, previews, parameter file, prediction, resume."""

import subprocess
import sys

import h5py
import numpy as np
import pytest
from tiny import run_cli, tiny_config

from elektronn.net.paramfile import build_model_from_params
from elektronn.net.unet import UNet
from elektronn.predict import predict_dense

pytestmark = pytest.mark.slow  # end-to-end: see pyproject's markers

UNET = """
architecture = 'unet'
desired_input = 28
filters = [3, 3]
pool = [2, 1]
nof_filters = [4, 8]
unet_batch_norm = True
warp_on = 0.5
elastic_deform = True
elastic_spacing = 8
elastic_strength = 2.0
random_seed = 7
n_steps = 11
"""


def timeline_losses(save_dir):
    timeline = np.load(save_dir / "Backup" / f"{save_dir.name}.timeline.npy")
    return dict(zip(timeline[:, 0].astype(int), timeline[:, 3], strict=True))


def test_unet_trains_previews_predicts_and_resumes(tmp_path, tiny_data):
    preview = (
        f"preview_data_path = {str(tiny_data / 'raw_1.h5')!r}\ninitial_prev_h = 0.0\n"
        "preview_kwargs = dict(export_class=1, max_z_pred=1)\n"
    )
    config = tiny_config(tmp_path, UNET + preview)
    full = run_cli(config, "--gpu=false", "--set", "save_name=full")
    assert full.returncode == 0, full.stderr
    assert "U-Net (2D" in full.stdout and "FOV 17x17, offset (8.0, 8.0)" in full.stdout
    full_dir = tmp_path / "runs" / "full"
    assert list(full_dir.glob("full-pred-0-c1-z*-0hrs.png"))

    model = build_model_from_params(full_dir / "full_end.param")
    assert isinstance(model, UNet) and model.spec.unet_batch_norm
    out = tmp_path / "prob.h5"
    result = subprocess.run(
        [sys.executable, "-m", "elektronn.predict.cli", str(full_dir),
         f"{tiny_data / 'raw_1.h5'}:raw", str(out), "--gpu=false", "--tile", "30,30,1"],
        capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    with h5py.File(tiny_data / "raw_1.h5", "r") as f:
        raw = f["raw"][()]
    with h5py.File(out, "r") as f:
        tiled = f["prob"][()]
    single = predict_dense(model, raw[None], axes="cxyz", tile_shape=(64, 64, 1))
    np.testing.assert_allclose(tiled, single, rtol=0, atol=1e-5)

    part = run_cli(config, "--gpu=false", "--set", "n_steps=8", "--set", "save_name=tiny")
    assert part.returncode == 0, part.stderr
    save_dir = tmp_path / "runs" / "tiny"
    (save_dir / "tiny_end.param").unlink()  # as if it crashed after the LAST backup at step 5
    resumed = run_cli("--resume", save_dir, "--set", "n_steps=11")
    assert resumed.returncode == 0, resumed.stderr
    assert "at step 6" in resumed.stdout
    got, expected = timeline_losses(save_dir), timeline_losses(full_dir)
    assert sorted(got) == list(range(11))
    assert all(got[step] == loss for step, loss in expected.items())


def test_unet_with_batch_norm_trains_data_parallel(tmp_path, tiny_data):
    config = tiny_config(tmp_path, UNET)
    result = run_cli(config, "--gpu=false", "--nproc=2", "--set", "n_steps=3", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert "2 processes (DDP)" in result.stdout
    model = build_model_from_params(tmp_path / "runs" / "tiny" / "tiny_end.param")
    assert isinstance(model, UNet) and model.encoder[0].norms[0].num_batches_tracked > 0
