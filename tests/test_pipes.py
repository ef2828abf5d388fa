"""``elektronn-train cfg.py | tee log`` and Ctrl+C: the reader of stdout goes away first.

Ctrl+C reaches ``tee`` too, so the trainer's next ``print`` meets a closed pipe. The test runs
the real command line with stdout a pipe that it closes after the first status line, then
sends SIGINT (no terminal: stop cleanly, as SIGTERM), and the run must still end normally.
"""

from __future__ import annotations

import signal
import subprocess
import sys
import time

import pytest
from tiny import ENDLESS, STATUS_LINE, tiny_config

from elektronn.net.paramfile import load_params

pytestmark = pytest.mark.slow  # end-to-end: see pyproject's markers


def test_closed_stdout_pipe_and_ctrl_c_end_the_run_normally(tmp_path, tiny_data):
    config = tiny_config(tmp_path, ENDLESS)
    with open(tmp_path / "stderr.txt", "w") as stderr:
        process = subprocess.Popen(
            [sys.executable, "-m", "elektronn.train", str(config), "--gpu=false"],
            stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=stderr, text=True,
            cwd=tmp_path,
        )  # fmt: skip
        try:
            while not STATUS_LINE.match(process.stdout.readline() or "00000 eof"):
                pass
            process.stdout.close()  # tee ends on Ctrl+C ...
            time.sleep(1.0)  # ... while more status lines are printed
            process.send_signal(signal.SIGINT)
            code = process.wait(timeout=120)
        finally:
            process.kill()
    err = (tmp_path / "stderr.txt").read_text()
    assert code == 0 and "Traceback" not in err, err
    assert "the reader of stdout went away" in err and "Parameters saved to" in err, err
    assert load_params(tmp_path / "runs" / "tiny" / "tiny_end.param")["extra"]["step"] > 5
