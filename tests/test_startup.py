"""The start of training as a user times it: the self-reported start-up time is true."""

from __future__ import annotations

import subprocess
import sys
import time

import pytest

pytestmark = pytest.mark.slow  # end-to-end: see pyproject's markers

REPORT = "from elektronn.train.run import seconds_since_process_start as s; print(s(), flush=True)"


def test_the_reported_process_age_matches_a_clock_outside_the_process():
    """``Starting training N s after the process started`` read ~0.7 s late (psutil's start
    time counts from a boot time in whole seconds); it must never exceed what a stopwatch
    started before the process shows."""
    for _ in range(3):
        started = time.monotonic()
        child = subprocess.Popen([sys.executable, "-c", REPORT], stdout=subprocess.PIPE,
                                 text=True)  # fmt: skip
        reported = float(child.stdout.readline())
        outside = time.monotonic() - started
        child.wait(timeout=60)
        assert reported <= outside + 0.02, f"reported {reported:.2f} s, measured {outside:.2f} s"
        assert reported >= outside - 1.0, f"reported {reported:.2f} s, measured {outside:.2f} s"
