"""The GPU suite's smoke version runs on a CPU in under a minute and prints its table."""

import subprocess
import sys
import time
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow  # end-to-end: see pyproject's markers

SUITE = Path(__file__).resolve().parents[1] / "benchmarks" / "gpu_suite.py"


def test_gpu_suite_smoke_on_cpu(shared_data):  # the examples train on ISBI 2012
    t0 = time.perf_counter()
    result = subprocess.run([sys.executable, str(SUITE), "--device", "cpu"], capture_output=True,
                            text=True, timeout=120)  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert "GPU suite (smoke): CPU" in result.stdout
    for net in ("3D CNN (neuro_3d)", "3D U-Net (neuro_3d_unet)"):
        for figure in ("train steps/s, eager fp32", "data wait", "dense prediction Mvox/s"):
            assert f"| {net} | {figure}" in result.stdout, result.stdout
    assert "failed" not in result.stdout
    assert time.perf_counter() - t0 < 90  # under a minute on an idle 2-core CPU
