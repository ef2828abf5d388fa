"""Plots of the training progress, drawn from the history files in a separate process.

Training never waits for plotting: :class:`PlotProcess` starts
``python -m elektronn.train.plots SAVE_DIR SAVE_NAME`` in the background and skips a request
while the previous plot is still being drawn. The same command re-makes the plots by hand.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from ..data.label_stats import read_baseline
from .history import load_history

if TYPE_CHECKING:
    from matplotlib.axes import Axes

MAX_POINTS = 2000
SMOOTHING = 8
"""Monitor values averaged by the error plot's moving average (besides the centre)."""
TIMELINE_WINDOW = 50
"""Updates averaged around each point of the timeline's smoothed loss (more in long runs)."""
LEGEND_OUTSIDE = {"loc": "upper left", "bbox_to_anchor": (1.01, 1.0), "borderaxespad": 0.0}
"""Legends right of their axes, so they never cover a curve."""


def _subsample(a: np.ndarray) -> np.ndarray:
    step = max(1, len(a) // MAX_POINTS)
    return a[::step]


def centred_mean(x: np.ndarray, n: int = SMOOTHING) -> np.ndarray:
    """Mean of the finite values in a window of up to ``n + 1`` points centred on each point.

    Centred, so a falling error is not drawn above its own data (a trailing mean lags behind
    by half its window). Near either end the window shrinks symmetrically, so the curve
    starts and ends on the data: the newest point of a falling error is drawn where the
    error is now, not at the mean of the last ``n + 1`` values (which, for the demo, put the
    end at 8 % against a real 2.2 %). NaNs (no validation data) are skipped.
    """
    x = np.asarray(x, dtype=np.float64)
    index = np.arange(len(x))
    half = np.minimum(n // 2, np.minimum(index, len(x) - 1 - index))
    finite = np.isfinite(x)
    sums = np.concatenate([[0.0], np.cumsum(np.where(finite, x, 0.0))])
    counts = np.concatenate([[0], np.cumsum(finite)])
    total = sums[index + half + 1] - sums[index - half]
    count = counts[index + half + 1] - counts[index - half]
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(count > 0, total / np.maximum(count, 1), np.nan)


def round_step_ticks(first: float, last: float) -> np.ndarray:
    """Even, round step numbers (0, 500, 1000, …) between ``first`` and ``last``."""
    from matplotlib.ticker import MaxNLocator

    locator = MaxNLocator(nbins=6, steps=[1, 2, 2.5, 5, 10], integer=True)
    ticks = locator.tick_values(first, last)
    return ticks[(ticks >= first) & (ticks <= last)]


def _steps_axis(ax: Axes, minutes: np.ndarray, steps: np.ndarray) -> Axes | None:
    """A second x axis on top with round update steps for the time axis below."""
    if len(minutes) < 2 or minutes[-1] <= minutes[0] or steps[-1] <= steps[0]:
        return None
    top = ax.twiny()
    top.set_xlim(ax.get_xlim())
    ticks = round_step_ticks(steps[0], steps[-1])
    top.set_xticks(np.interp(ticks, steps, minutes), [f"{int(t)}" for t in ticks])
    top.set_xlabel("update steps")
    return top


#: Log-axis labels between the powers of ten of a range narrower than a decade.
DENSE_SUBS = (1.5, 2, 3, 4, 5, 6, 7, 8, 9)


def _log_scale_if_positive(ax: Axes, *columns: np.ndarray) -> None:
    """Log y, so the first high values and the later small ones are both readable."""
    from matplotlib.ticker import FuncFormatter, LogLocator

    values = np.concatenate([c[np.isfinite(c)] for c in columns])
    if len(values) and (values > 0).any():
        positive = values[values > 0]
        decades = np.log10(positive.max() / positive.min())
        # labels 1, 2, 5, 10, 20, … over a wide range, more over a narrow one (errors from
        # 25 % to 6 % would show only 10 and 20)
        subs = (2, 5) if decades >= 2 else (1.5, 2, 3, 5, 7) if decades >= 1 else DENSE_SUBS
        ax.set_yscale("log")
        ax.yaxis.set_minor_locator(LogLocator(subs=subs))
        for set_labels in (ax.yaxis.set_major_formatter, ax.yaxis.set_minor_formatter):
            set_labels(FuncFormatter(lambda value, _: f"{value:g}"))


def _symlog_scale(ax: Axes, values: np.ndarray) -> None:
    """Linear near 0, logarithmic beyond: the large first changes and the small late ones
    are all visible, with their sign."""
    small = np.abs(values[np.isfinite(values) & (values != 0)])
    if len(small):
        ax.set_yscale("symlog", linthresh=float(np.median(small)))


def plot_timeline(path: Path, timeline: np.ndarray, loss_name: str) -> None:
    import matplotlib.pyplot as plt

    window = max(TIMELINE_WINDOW, len(timeline) // 50)
    smoothed = _subsample(centred_mean(timeline[:, 3], window))
    t = _subsample(timeline)
    minutes = t[:, 1] / 60
    fig, (top, bottom) = plt.subplots(2, 1, figsize=(16, 12), layout="constrained")
    top.plot(minutes, t[:, 3], "b-", lw=0.5, alpha=0.5, label=f"{loss_name} of each update")
    top.plot(
        minutes,
        smoothed,
        "k-",
        lw=2,
        label=f"{loss_name} smoothed:\nmean of {window + 1} updates\naround each",
    )
    top.axhline(np.mean(smoothed[-30:]), color="gray", ls="--", label="smoothed,\nlast 30 points")
    _log_scale_if_positive(top, t[:, 3])
    top.set_xlabel("time [min]")
    top.set_ylabel(f"{loss_name} (log scale)")
    top.legend(**LEGEND_OUTSIDE)
    _steps_axis(top, minutes, t[:, 0])
    sc = bottom.scatter(t[:, 4], t[:, 3], c=t[:, 0], s=4, cmap="viridis")
    # beside its own axes (as the legend above), not at the far edge of the figure
    fig.colorbar(sc, cax=bottom.inset_axes((1.02, 0.0, 0.02, 1.0)), label="update step")
    _log_scale_if_positive(bottom, t[:, 3])
    bottom.set_xlabel("mean label of the batch")
    bottom.set_ylabel(f"{loss_name} of the update")
    fig.savefig(path)
    plt.close(fig)


def plot_history(path: Path, history: np.ndarray, loss_name: str) -> None:
    import matplotlib.pyplot as plt

    minutes = history[:, 1] / 60
    fig, (losses, change, lr) = plt.subplots(
        3, 1, figsize=(16, 13), sharex=True, height_ratios=(3, 2, 1), layout="constrained"
    )
    losses.plot(minutes, history[:, 2], "b-", lw=2, label=f"{loss_name} smoothed (updates)")
    losses.plot(minutes, history[:, 4], "go-", ms=4, label=f"train {loss_name} (monitor)")
    losses.plot(minutes, history[:, 5], "rs-", ms=4, label=f"valid {loss_name} (monitor)")
    _log_scale_if_positive(losses, history[:, 2], history[:, 4], history[:, 5])
    losses.set_ylabel(f"{loss_name} (log scale)")
    losses.legend(**LEGEND_OUTSIDE)
    change.plot(minutes, history[:, 6], "b.-", label=f"{loss_name} change by one update")
    change.axhline(0, color="k", ls=":", label="no change")
    _symlog_scale(change, history[:, 6])
    change.set_ylabel(f"{loss_name} change (symlog)")
    change.legend(**LEGEND_OUTSIDE)
    lr.plot(minutes, history[:, 7], "m-", label="learning rate")
    lr.set_ylabel("learning rate")
    lr.set_xlabel("time [min]")
    lr.legend(**LEGEND_OUTSIDE)
    _steps_axis(losses, minutes, history[:, 0])
    fig.savefig(path)
    plt.close(fig)


def plot_errors(
    path: Path, errors: np.ndarray, error_name: str, baseline: dict | None = None
) -> None:
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(16, 6), layout="constrained")
    minutes = errors[:, 1] / 60
    for column, colour, label in ((2, "g", "train"), (3, "r", "valid")):
        values = errors[:, column]
        if not np.isfinite(values).any():
            continue
        ax.plot(minutes, values, colour + "--", lw=1, label=f"{label} {error_name} (monitor)")
        ax.plot(
            minutes,
            centred_mean(values),
            colour + "-",
            lw=3,
            label=f"{label}, mean of up to {SMOOTHING + 1} around each",
        )
    if baseline is not None:  # a run that stays at this line learns nothing
        ax.axhline(
            baseline["error"],
            color="k",
            ls=":",
            lw=2,
            label=f"majority-class error (always class {baseline['majority_class']})",
        )
    _log_scale_if_positive(ax, errors[:, 2], errors[:, 3])
    ax.set_xlabel("time [min]")
    ax.set_ylabel(f"{error_name} (log scale)")
    ax.legend(**LEGEND_OUTSIDE)
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


def create_plots(save_dir: Path, save_name: str, regression: bool = False) -> list[Path]:
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
    """Runs :func:`create_plots` in a child process, at most one at a time."""

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
    for path in create_plots(args.save_dir, save_name, args.regression):
        print(path)


if __name__ == "__main__":
    main()
