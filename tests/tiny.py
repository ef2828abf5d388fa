"""The tiny training used by the CLI, console, resume and stop tests: data, config, runners."""

from __future__ import annotations

import os
import queue
import re
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path

import h5py

from elektronn.data.synthetic import build_membrane_volume


def run_cli(*args, cwd=None, env_extra=None, timeout=300):
    """``elektronn-train ARGS`` in a subprocess, as a user runs it."""
    env = dict(os.environ, **(env_extra or {}))
    return subprocess.run(
        [sys.executable, "-m", "elektronn.train", *map(str, args)],
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
        raw, labels = build_membrane_volume(shape, n_cells=12, seed=i)
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


def data_class_config(tmp_path, name, class_name):
    """A vect-scalar MLP config on the user data class ``class_name`` of ``tmp_path/<name>.py``
    (history every 5 steps, up to 1000 steps), written to ``tmp_path/<name>_cfg.py``."""
    text = f"""
    save_path = {str(tmp_path / "runs")!r}
    save_name = {name!r}
    mode = "vect-scalar"
    data_class_name = ({name + ".py"!r}, {class_name!r})
    MLP_layers = [8]
    n_lab = 2
    batch_size = 4
    monitor_batch_size = 4
    n_steps = 1000
    history_freq = [5]
    plot_on = False
    """
    path = tmp_path / f"{name}_cfg.py"
    path.write_text(textwrap.dedent(text))
    return path


ENDLESS = "n_steps = 10**9\nmax_runtime = 120\n"
STATUS_LINE = re.compile(r"^\d{5} ")


class Training:
    """``elektronn-train`` in a child process without a terminal, its output read by a thread.

    Reading in a thread keeps the pipe drained (a full pipe would block the trainer) and lets
    the test wait for a line with a deadline.
    """

    def __init__(self, *args: object, cwd: Path) -> None:
        self.process = subprocess.Popen(
            [sys.executable, "-m", "elektronn.train", *map(str, args)],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            cwd=cwd,
        )
        self.lines: queue.Queue[str] = queue.Queue()
        self.output: list[str] = []
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        for line in self.process.stdout:
            self.lines.put(line)

    def wait_for(self, pattern: re.Pattern, timeout: float = 120) -> str:
        """The first output line matching ``pattern`` (fails the test after ``timeout`` s)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                line = self.lines.get(timeout=1)
            except queue.Empty:
                assert self.process.poll() is None, "".join(self.output)
                continue
            self.output.append(line)
            if pattern.search(line):
                return line
        raise AssertionError(f"no line matching {pattern.pattern!r}:\n{''.join(self.output)}")

    def finish(self, timeout: float = 60) -> tuple[int, str]:
        """Exit code and the whole output."""
        code = self.process.wait(timeout=timeout)
        time.sleep(0.2)  # let the reader thread take the last lines
        while not self.lines.empty():
            self.output.append(self.lines.get())
        return code, "".join(self.output)

    def kill(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
            self.process.wait()
