"""Data-parallel training (issue 10): ``elektronn-train --nproc 2`` on CPU with gloo."""

import os
import signal
import textwrap

import numpy as np
import psutil
import pytest
import torch
from tiny import ENDLESS, STATUS_LINE, Training, run_cli, tiny_config

from elektronn.net.paramfile import load_params

pytestmark = pytest.mark.slow  # end-to-end: see pyproject's markers

# Rank r trains on examples [r*b, (r+1)*b) of one fixed set of 8, so that 2 ranks with
# batch b/2 see exactly the batch that 1 rank with batch b sees.
RANKED_DATA = """
import os

import numpy as np


class RankedHalves:
    n_lab = 3
    example_shape = (10,)

    def __init__(self):
        rng = np.random.default_rng(0)
        self.x = rng.normal(size=(8, 10)).astype("float32")
        self.y = rng.integers(0, 3, size=8).astype("int16")

    def has_source(self, source):
        return source == "train"

    def getbatch(self, batch_size, source="train"):
        start = int(os.environ.get("RANK", 0)) * batch_size
        return self.x[start:start + batch_size], self.y[start:start + batch_size]
"""


def mlp_config(tmp_path, name: str, batch_size: int):
    (tmp_path / "ranked.py").write_text(RANKED_DATA)
    path = tmp_path / f"{name}.py"
    path.write_text(
        textwrap.dedent(f"""
        save_path = {str(tmp_path / "runs")!r}
        save_name = {name!r}
        mode = "vect-scalar"
        data_class_name = ("ranked.py", "RankedHalves")
        MLP_layers = [16]
        batch_size = {batch_size}
        n_steps = 1
        monitor_batch_size = 4
        random_seed = 7
        plot_on = False
        SGD_params = dict(LR=0.5, momentum=0.0)
    """)
    )
    return path


def end_weights(tmp_path, name: str) -> dict[str, torch.Tensor]:
    return load_params(tmp_path / "runs" / name / f"{name}_end.param")["state_dict"]


def assert_same_weights(a: dict, b: dict) -> None:
    assert a.keys() == b.keys()
    for key in a:
        torch.testing.assert_close(a[key], b[key], rtol=0, atol=1e-6, msg=key)


def test_two_ranks_with_half_batches_make_the_step_of_one_rank_with_the_whole(tmp_path):
    runs = {"whole": (4, 1), "halves": (2, 2), "first_half": (2, 1)}
    for name, (batch_size, nproc) in runs.items():
        result = run_cli(mlp_config(tmp_path, name, batch_size), "--gpu=false",
                         f"--nproc={nproc}", cwd=tmp_path)  # fmt: skip
        assert result.returncode == 0, result.stderr
    whole, halves = end_weights(tmp_path, "whole"), end_weights(tmp_path, "halves")
    assert_same_weights(whole, halves)
    # the all-reduce matters: rank 0's half alone makes a different step
    with pytest.raises(AssertionError):
        assert_same_weights(whole, end_weights(tmp_path, "first_half"))


def test_distributed_run_with_workers_completes_only_rank_0_writes_and_it_resumes(
    tmp_path, tiny_data
):
    config = tiny_config(tmp_path, "background_processes = 1\nn_steps = 11\n")
    result = run_cli(config, "--gpu=false", "--nproc=2", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    out = result.stdout
    assert "2 processes (DDP)" in out
    status_lines = [line for line in out.splitlines() if " NLLm=" in line]
    assert [line[:5] for line in status_lines] == ["00000", "00005", "00010"]  # printed once
    assert out.count("End of training after 11 steps") == 1
    save_dir = tmp_path / "runs" / "tiny"
    assert load_params(save_dir / "tiny_end.param")["extra"]["step"] == 11
    history = np.load(save_dir / "Backup" / "tiny.history.npy")
    assert history[:, 0].tolist() == [0, 5, 10]  # monitored once per history step

    resumed = run_cli("--resume", save_dir, "--gpu=false", "--nproc=2", "--set", "n_steps=16",
                      cwd=tmp_path)  # fmt: skip
    assert resumed.returncode == 0, resumed.stderr
    assert resumed.stdout.count("End of training after 16 steps") == 1
    assert load_params(save_dir / "tiny_end.param")["extra"]["step"] == 16


def rank_processes(launcher_pid: int) -> dict[int, psutil.Process]:
    """The ranks started by ``--nproc``, by their RANK."""
    ranks = {}
    for child in psutil.Process(launcher_pid).children():
        rank = child.environ().get("RANK")
        if rank is not None:
            ranks[int(rank)] = child
    return ranks


def test_sigterm_to_a_distributed_run_stops_every_rank_and_saves(tmp_path, tiny_data):
    config = tiny_config(tmp_path, ENDLESS + "background_processes = 1\n")
    run = Training(config, "--gpu=false", "--nproc=2", cwd=tmp_path)
    try:
        run.wait_for(STATUS_LINE)
        everyone = psutil.Process(run.process.pid).children(recursive=True)
        assert len(everyone) == 4  # 2 ranks with one data worker each
        run.process.send_signal(signal.SIGTERM)
        code, output = run.finish()
    finally:
        run.kill()
    assert code == 0, output
    assert output.count("(SIGTERM received)") == 1 and "Traceback" not in output, output
    assert load_params(tmp_path / "runs" / "tiny" / "tiny_end.param")["extra"]["step"] > 0
    _, alive = psutil.wait_procs(everyone, timeout=10)
    assert not alive, "a rank or worker outlived the run"


def test_a_crashed_rank_ends_the_run_and_rank_0_saves_what_it_trained(tmp_path, tiny_data):
    config = tiny_config(tmp_path, ENDLESS)
    run = Training(config, "--gpu=false", "--nproc=2", cwd=tmp_path)
    try:
        run.wait_for(STATUS_LINE)
        ranks = rank_processes(run.process.pid)
        os.kill(ranks[1].pid, signal.SIGKILL)
        code, output = run.finish()
    finally:
        run.kill()
    assert code != 0, output
    assert "tiny-LAST.param" in output and "--resume" in output, output
    assert load_params(tmp_path / "runs" / "tiny" / "tiny-LAST.param")["extra"]["step"] > 0
    assert not ranks[0].is_running()
