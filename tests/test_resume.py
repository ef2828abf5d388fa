"""Resuming a run continues it exactly (CPU, no background processes)."""

import numpy as np
import pytest
from tiny import run_cli, tiny_config

pytestmark = pytest.mark.slow  # end-to-end: see pyproject's markers


def timeline_losses(save_dir):
    timeline = np.load(save_dir / "Backup" / f"{save_dir.name}.timeline.npy")
    return dict(zip(timeline[:, 0].astype(int), timeline[:, 3], strict=True))


def test_interrupted_and_resumed_run_matches_uninterrupted(tmp_path, tiny_data):
    config = tiny_config(tmp_path, "warp_on = 0.5\ndropout_rates = [0.2, 0.2]\nrandom_seed = 7\n")
    full = run_cli(config, "--set", "n_steps=21", "--set", "save_name=full")
    assert full.returncode == 0, full.stderr
    part = run_cli(config, "--set", "n_steps=13", "--set", "save_name=tiny")
    assert part.returncode == 0, part.stderr
    save_dir = tmp_path / "runs" / "tiny"
    (save_dir / "tiny_end.param").unlink()  # as if it crashed after the LAST backup at step 10
    resumed = run_cli("--resume", save_dir, "--set", "n_steps=21")
    assert resumed.returncode == 0, resumed.stderr
    assert "Resuming from" in resumed.stdout and "at step 11" in resumed.stdout
    expected = timeline_losses(tmp_path / "runs" / "full").items()
    got = timeline_losses(save_dir)
    assert sorted(got) == list(range(21))
    for step, loss in expected:
        assert got[step] == loss, f"step {step}: {got[step]} != {loss}"
    history = np.load(save_dir / "Backup" / "tiny.history.npy")
    assert list(history[:, 0]) == [0, 5, 10, 15, 20]


def test_resume_needs_a_save_directory(tmp_path):
    result = run_cli("--resume", tmp_path / "nothing")
    assert result.returncode == 2
    assert "--resume" in result.stderr and "Traceback" not in result.stderr


def test_resumed_cg_run_has_the_cg_timeline_of_an_uninterrupted_run(tmp_path, tiny_data):
    config = tiny_config(tmp_path, "optimizer = 'CG'\nrandom_seed = 5\n")
    full = run_cli(config, "--set", "n_steps=14", "--set", "save_name=full")
    assert full.returncode == 0, full.stderr
    part = run_cli(config, "--set", "n_steps=13", "--set", "save_name=tiny")
    assert part.returncode == 0, part.stderr
    save_dir = tmp_path / "runs" / "tiny"
    (save_dir / "tiny_end.param").unlink()  # the logs in Backup/ are of step 13 ...
    resumed = run_cli("--resume", save_dir, "--set", "n_steps=14")  # ... the LAST of step 10
    assert resumed.returncode == 0, resumed.stderr
    expected = np.load(tmp_path / "runs" / "full" / "Backup" / "full.CGtimeline.npy")
    got = np.load(save_dir / "Backup" / "tiny.CGtimeline.npy")
    assert len(got) == len(expected) > 14  # several line-search rows per step, none twice
    np.testing.assert_array_equal(got, expected)
