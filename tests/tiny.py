"""The tiny training used by the CLI, console, resume and stop tests: data, config, runner."""

import os
import subprocess
import sys
import textwrap

import h5py

from elektronn.data.synthetic import make_membrane_volume


def run_cli(*args, cwd=None, env_extra=None, timeout=300):
    """``elektronn-train ARGS`` in a subprocess, as a user runs it."""
    env = dict(os.environ, **(env_extra or {}))
    return subprocess.run(
        [sys.executable, "-m", "elektronn.cli", *map(str, args)],
        capture_output=True,
        text=True,
        cwd=cwd,
        env=env,
        timeout=timeout,
    )


def write_cubes(folder, shape=(64, 64, 4)):
    """Two small synthetic membrane cubes (raw_i.h5:raw, lab_i.h5:lab) in ``folder``."""
    folder.mkdir(parents=True, exist_ok=True)
    for i in range(2):
        raw, labels = make_membrane_volume(shape, n_cells=12, seed=i)
        with h5py.File(folder / f"raw_{i}.h5", "w") as f:
            f["raw"] = raw
        with h5py.File(folder / f"lab_{i}.h5", "w") as f:
            f["lab"] = labels
    return folder


def tiny_config(tmp_path, extra=""):
    """A small 2D img-img config (output stride 2) on the cubes in tmp_path/data."""
    text = f"""
    save_path = {str(tmp_path / "runs")!r}
    save_name = "tiny"
    n_dim = 2
    desired_input = 30
    filters = [6, 4]
    pool = [2, 1]
    nof_filters = [4, 4]
    batch_size = 2
    n_lab = 2
    mode = "img-img"
    data_path = "data/"
    label_path = "data/"
    d_files = [("raw_0.h5", "raw"), ("raw_1.h5", "raw")]
    l_files = [("lab_0.h5", "lab"), ("lab_1.h5", "lab")]
    valid_cubes = [1]
    n_steps = 12
    max_runtime = 120
    history_freq = [5]
    monitor_batch_size = 4
    plot_on = False
    SGD_params = dict(LR=0.01, momentum=0.9)
    """
    path = tmp_path / "tiny.py"
    path.write_text(textwrap.dedent(text) + textwrap.dedent(extra))
    return path
