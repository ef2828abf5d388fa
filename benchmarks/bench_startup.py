"""Start-up of ``elektronn-train``: time to the first status line, with and without loggers.

The default ``loggers`` (TensorBoard, MLflow where installed) must not delay the first step:
the target is at most 1.1 x the time with ``loggers=[]``. The script also checks that the
self-reported ``Starting training N s after the process started`` agrees with a stopwatch
started before the process (it never reads later than the stopwatch).

Each configuration runs the shipped demo for one step (``n_steps=1``, no plots), alternating
between the two so that both share the machine's load alike; the table shows the medians.

Run: ``python benchmarks/bench_startup.py [--repeats 3]``; ``PYTHONPATH=OTHER_CHECKOUT``
measures another version of the package the same way.
"""

from __future__ import annotations

import argparse
import math
import re
import statistics
import subprocess
import sys
import tempfile
import time

REPORTED = re.compile(r"Starting training ([\d.]+) s after the process started")
STATUS_LINE = re.compile(r"^\d{5} ")


def one_run(loggers: str, save_path: str) -> tuple[float, float, float]:
    """(s to the 'Starting training' line, the s it reports, s to the first status line)."""
    command = [sys.executable, "-m", "elektronn.train", "demo", "--gpu=false",
               "--set", "n_steps=1", "--set", "plot_on=False", "--set", f"save_path={save_path!r}",
               "--set", f"loggers={loggers}"]  # fmt: skip
    t0 = time.monotonic()
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                               text=True)  # fmt: skip
    start_line = reported = first = float("nan")
    output = []
    for line in process.stdout:
        output.append(line)
        found = REPORTED.search(line)
        if found:
            start_line, reported = time.monotonic() - t0, float(found.group(1))
        if STATUS_LINE.match(line) and math.isnan(first):
            first = time.monotonic() - t0
    if process.wait() != 0:
        raise RuntimeError("".join(output))
    return start_line, reported, first


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    runs: dict[str, list[tuple[float, float, float]]] = {"default": [], "[]": []}
    with tempfile.TemporaryDirectory() as save_path:
        for _ in range(args.repeats):
            runs["default"].append(one_run("['tensorboard','mlflow']", save_path))
            runs["[]"].append(one_run("[]", save_path))
    print("| loggers | 'Starting training' line [s] | it reports [s] | first status line [s] |")
    print("|---|---:|---:|---:|")
    medians = {}
    for name, rows in runs.items():
        medians[name] = [statistics.median(column) for column in zip(*rows, strict=True)]
        line, reported, first = medians[name]
        print(f"| {name} | {line:.2f} | {reported:.2f} | {first:.2f} |")
    ratio = medians["default"][2] / medians["[]"][2]
    print(f"first status line, default loggers / none: {ratio:.2f} (target <= 1.1)")


if __name__ == "__main__":
    main()
