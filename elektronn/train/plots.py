"""Plots of the training progress, drawn from the history files in a separate process.

Training never waits for plotting: :class:`PlotProcess` starts
``python -m elektronn.train.plots SAVE_DIR SAVE_NAME`` in the background and skips a request
while the previous plot is still being drawn. The same command re-makes the plots by hand.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np

from ..data.label_stats import read_baseline
from .history import load_history

MAX_POINTS = 2000


def _subsample(a: np.ndarray) -> np.ndarray:
    step = max(1, len(a) // MAX_POINTS)
    return a[::step]


def _moving_average(x: np.ndarray, n: int = 8) -> np.ndarray:
    if len(x) < n:
        return x
    return np.convolve(x, np.ones(n) / n, mode="valid")


def _steps_axis(ax, minutes: np.ndarray, steps: np.ndarray) -> None:
    """A second x axis on top showing update steps for the time axis below."""
    if len(minutes) < 2 or minutes[-1] <= minutes[0]:
        return
    top = ax.twiny()
    top.set_xlim(ax.get_xlim())
    ticks = np.linspace(minutes[0], minutes[-1], 5)
    top.set_xticks(ticks)
    top.set_xticklabels([f"{int(s)}" for s in np.interp(ticks, minutes, steps)])
    top.set_xlabel("update steps")


def plot_timeline(path: Path, timeline: np.ndarray, loss_name: str) -> None:
    import matplotlib.pyplot as plt

    t = _subsample(timeline)
    minutes = t[:, 1] / 60
    fig, (top, bottom) = plt.subplots(2, 1, figsize=(16, 12))
    top.plot(minutes, t[:, 3], "b-", lw=0.5, alpha=0.5, label=f"{loss_name} per update")
    top.plot(minutes, t[:, 2], "k-", lw=2, label=f"{loss_name} smoothed")
    top.axhline(np.mean(t[-30:, 2]), color="gray", ls="--")
    top.set_xlabel("time [min]")
    top.set_ylabel(loss_name)
    top.legend()
    _steps_axis(top, minutes, t[:, 0])
    sc = bottom.scatter(t[:, 4], t[:, 3], c=t[:, 0], s=4, cmap="viridis")
    fig.colorbar(sc, ax=bottom, label="update step")
    bottom.set_xlabel("mean label of the batch")
    bottom.set_ylabel(loss_name)
    fig.savefig(path)
    plt.close(fig)


def plot_history(path: Path, history: np.ndarray, loss_name: str) -> None:
    import matplotlib.pyplot as plt

    minutes = history[:, 1] / 60
    fig, (top, bottom) = plt.subplots(2, 1, figsize=(16, 12))
    top.plot(minutes, history[:, 2], "b-", label=f"{loss_name} smoothed (updates)")
    top.plot(minutes, history[:, 4], "g-", label=f"train {loss_name} (monitor)")
    top.plot(minutes, history[:, 5], "r-", label=f"valid {loss_name} (monitor)")
    top.set_xlabel("time [min]")
    top.legend()
    _steps_axis(top, minutes, history[:, 0])
    bottom.plot(minutes, history[:, 6], "b-", label=f"{loss_name} change by the update")
    bottom.axhline(0, color="k", ls=":")
    if len(history) > 4:
        spread = 2 * np.std(history[3:, 6]) or 1.0
        bottom.set_ylim(-spread, spread)
    lr_axis = bottom.twinx()
    lr_axis.plot(minutes, history[:, 7], "r-", label="learning rate")
    lr_axis.set_ylabel("learning rate")
    bottom.set_xlabel("time [min]")
    lines = bottom.get_lines()[:1] + lr_axis.get_lines()  # one legend for both y-axes,
    lr_axis.legend(lines, [line.get_label() for line in lines], loc="upper left")  # on top
    fig.savefig(path)
    plt.close(fig)


def plot_errors(path: Path, errors: np.ndarray, error_name: str,
                baseline: dict | None = None) -> None:  # fmt: skip
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(16, 6))
    minutes = errors[:, 1] / 60
    for column, colour, label in ((2, "g", "train"), (3, "r", "valid")):
        values = errors[:, column]
        ax.plot(minutes, values, colour + "--", lw=1, label=f"{label} {error_name}")
        smooth = _moving_average(values)
        ax.plot(minutes[len(minutes) - len(smooth) :], smooth, colour + "-", lw=3)
    reference = errors[2:, 3] if np.isfinite(errors[2:, 3]).any() else errors[2:, 2]
    top = 3 * np.nanmean(reference) if np.isfinite(reference).any() else 0.0
    if baseline is not None:  # a run that stays at this line learns nothing
        ax.axhline(baseline["error"], color="k", ls=":", lw=2,
                   label=f"majority-class error (always class {baseline['majority_class']})")
        top = max(top, 1.2 * baseline["error"])  # fmt: skip
    if top > 0:
        ax.set_ylim(0, top)
    ax.set_xlabel("time [min]")
    ax.set_ylabel(error_name)
    ax.legend()
    _steps_axis(ax, minutes, errors[:, 0])
    fig.savefig(path)
    plt.close(fig)


def plot_cg(path: Path, cg: np.ndarray) -> None:
    import matplotlib.pyplot as plt

    fig, (top, bottom) = plt.subplots(2, 1, figsize=(16, 12))
    top.plot(cg[:, 0], "b-")
    top.set_ylabel("loss per CG step")
    bottom.scatter(cg[:, 1], cg[:, 2], c=np.arange(len(cg)), s=6)
    bottom.set_xlabel("accepted step size")
    bottom.set_ylabel("conjugacy coefficient")
    fig.savefig(path)
    plt.close(fig)


def make_plots(save_dir: Path, save_name: str, regression: bool = False) -> list[Path]:
    """Draw every plot whose log exists; returns the written PNG paths."""
    import matplotlib

    matplotlib.use("Agg")
    logs = load_history(save_dir / "Backup", save_name)
    baseline = None if regression else read_baseline(save_dir / "Backup", save_name)
    loss_name = "MSE" if regression else "NLL"
    error_name = "RMSE" if regression else "error [%]"
    written = []
    jobs = (
        ("timeline", "timeline", lambda p, a: plot_timeline(p, a, loss_name)),
        ("history", "history", lambda p, a: plot_history(p, a, loss_name)),
        ("errors", "Errors", lambda p, a: plot_errors(p, a, error_name, baseline)),
        ("CGtimeline", "CGtimeline", plot_cg),
    )
    for kind, suffix, plot in jobs:
        if kind in logs and len(logs[kind]) > 0:
            path = save_dir / f"{save_name}.{suffix}.png"
            plot(path, logs[kind])
            written.append(path)
    return written


class PlotProcess:
    """Runs :func:`make_plots` in a child process, at most one at a time."""

    def __init__(self, save_dir: Path, save_name: str, regression: bool) -> None:
        self.command = [sys.executable, "-m", "elektronn.train.plots", str(save_dir), save_name]
        if regression:
            self.command.append("--regression")
        self.process: subprocess.Popen | None = None

    def request(self) -> bool:
        """Start plotting unless a plot is still being drawn; True if one was started."""
        if self.process is not None and self.process.poll() is None:
            return False
        self.process = subprocess.Popen(
            self.command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
        )
        return True

    def close(self) -> None:
        """Wait for a running plot (it takes a few seconds at most)."""
        if self.process is not None:
            try:
                self.process.wait(timeout=60)
            except subprocess.TimeoutExpired:
                self.process.kill()


def main() -> None:
    import argparse

    parser = argparse.ArgumentParser(description="Make the training plots of a save directory.")
    parser.add_argument("save_dir", type=Path)
    parser.add_argument("save_name", nargs="?", help="default: the save directory's name")
    parser.add_argument("--regression", action="store_true", help="label axes MSE/RMSE")
    args = parser.parse_args()
    save_name = args.save_name or args.save_dir.resolve().name
    for path in make_plots(args.save_dir, save_name, args.regression):
        print(path)


if __name__ == "__main__":
    main()
