"""What a person sees of a run: the status line, ``<save_name>.log`` and ``-BEST.param``.

The runs are the real command line with stdout a pipe (as under ``nohup`` or a batch job).
"""

from __future__ import annotations

import re

import numpy as np
import pytest
from tiny import run_cli, tiny_config

from elektronn.net.paramfile import load_params

pytestmark = pytest.mark.slow  # end-to-end: see pyproject's markers

PROGRESS = re.compile(r"step \d+/11, t=\d+s/120s, ETA (\d+s|n/a)")


def test_piped_run_prints_plain_progress_keeps_best_and_logs_everything(tmp_path, tiny_data):
    result = run_cli(tiny_config(tmp_path, "random_seed = 3\n"), "--set", "n_steps=11")
    assert result.returncode == 0, result.stderr + result.stdout
    status = [line for line in result.stdout.splitlines() if line[:5].isdigit()]
    assert len(status) == 3 and all(PROGRESS.search(line) for line in status), status
    assert all("best=" in line for line in status)

    save = tmp_path / "runs" / "tiny"
    errors = np.load(save / "Backup" / "tiny.errors.npy")
    best_step = int(errors[np.argmin(errors[:, 3]), 0])  # the first lowest validation error
    best = load_params(save / "tiny-BEST.param")
    assert best["extra"]["step"] == best_step + 1  # saved during step best_step
    assert f"@{best_step}," in status[-1]

    log = (save / "tiny.log").read_text()
    assert log.startswith("Reading config-file")  # printed before the save directory existed
    for line in status + ["Random seed: 3", "Save directory:", "End of training after 11"]:
        assert line in log

    resumed = run_cli("--resume", save, "--set", "n_steps=16")
    assert resumed.returncode == 0, resumed.stderr
    log = (save / "tiny.log").read_text()
    assert log.count("Reading config-file") == 2 and "Resuming from" in log
    assert "End of training after 16" in log
    assert load_params(save / "tiny-BEST.param")["extra"]["best"] <= best["extra"]["best"]


def test_no_best_file_without_validation_data(tmp_path, tiny_data):
    result = run_cli(tiny_config(tmp_path, "valid_cubes = []\n"), "--set", "n_steps=6")
    assert result.returncode == 0, result.stderr
    assert "best=nan" in result.stdout
    assert not (tmp_path / "runs" / "tiny" / "tiny-BEST.param").exists()
