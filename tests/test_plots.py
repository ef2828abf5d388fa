"""The training plots as a user reads them: every value visible, every line named, round
step ticks, legends beside the curves, colour bars on images."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from makers import tiny_net
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from elektronn.data.label_stats import baseline_path
from elektronn.train import introspection
from elektronn.train.history import History
from elektronn.train.plots import centred_mean, create_plots, round_step_ticks
from elektronn.train.preview import Preview
from elektronn.train.trainer import LOSS_EMA_DECAY, bias_corrected_ema


@pytest.fixture
def figures(monkeypatch) -> dict[str, Figure]:
    """The figures saved while the test runs, by file name."""
    saved = {}
    real_savefig = Figure.savefig

    def recording_savefig(self, path, *args, **kwargs):
        saved[getattr(path, "name", str(path))] = self
        return real_savefig(self, path, *args, **kwargs)

    monkeypatch.setattr(Figure, "savefig", recording_savefig)
    return saved


def write_run(tmp_path, baseline: bool = True) -> None:
    """Logs of a run whose first errors (50 %) are far above the later ones (about 2 %)."""
    backup = tmp_path / "run" / "Backup"
    backup.mkdir(parents=True)
    if baseline:
        baseline_path(backup, "run").write_text('{"error": 12.9, "majority_class": 0}')
    history = History()
    steps = [0, 1126, 1441, 1737, 2750]
    for k, step in enumerate(steps):
        error = 50.0 if k == 0 else 2.0 + 1 / k
        history.add("errors", step, 60.0 * k, error, error + 0.5)
        history.add("history", step, 60.0 * k, 0.7 / (k + 1), 0.6 / (k + 1), 0.65 / (k + 1),
                    0.66 / (k + 1), -0.01, 0.02 * 0.99**k)  # fmt: skip
    for step in range(0, steps[-1] + 1, 10):
        history.add("timeline", step, 240.0 * step / steps[-1], 0.5, 0.5, 0.1)
    history.save(backup, "run")


def lines_and_legend(ax) -> tuple[list[str], list[str]]:
    labels = [line.get_label() for line in ax.get_lines()]
    return labels, [text.get_text() for text in ax.get_legend().get_texts()]


def test_errors_plot_shows_the_first_errors_and_names_every_line(tmp_path, figures):
    write_run(tmp_path, baseline=False)
    create_plots(tmp_path / "run", "run")
    ax = figures["run.Errors.png"].axes[0]
    low, high = ax.get_ylim()
    assert low <= 2.5 and high >= 50.5, "the first and the last errors are both visible"
    labels, legend = lines_and_legend(ax)
    assert legend == labels and not any(label.startswith("_") for label in labels)


def test_a_narrow_log_error_axis_has_enough_labelled_ticks(tmp_path, figures):
    """Errors from 23 % to 6 % (a real U-Net run) read off at least five labelled values."""
    backup = tmp_path / "run" / "Backup"
    backup.mkdir(parents=True)
    history = History()
    for k, error in enumerate([23.0, 12.0, 9.0, 7.5, 6.0]):
        history.add("errors", 100 * k, 60.0 * k, error, error + 1.0)
    history.save(backup, "run")
    create_plots(tmp_path / "run", "run")
    figure = figures["run.Errors.png"]
    FigureCanvasAgg(figure).draw()
    ax = figure.axes[0]
    low, high = ax.get_ylim()
    ticks = ax.yaxis.get_major_ticks() + ax.yaxis.get_minor_ticks()
    shown = {
        t.label1.get_text() for t in ticks if low <= t.get_loc() <= high and t.label1.get_text()
    }
    assert len(shown) >= 5, shown


def test_errors_plot_has_a_legend_entry_for_the_majority_class_error(tmp_path, figures):
    write_run(tmp_path)
    create_plots(tmp_path / "run", "run")
    _, legend = lines_and_legend(figures["run.Errors.png"].axes[0])
    assert "majority-class error (always class 0)" in legend


def test_moving_average_follows_a_falling_error_from_its_first_to_its_last_value():
    falling = np.linspace(14.0, 1.0, 20)
    smoothed = centred_mean(falling)  # 9 values around each
    # no lag, no artefact at either end: the curve ends where the data end (the demo's
    # curve ended at 8 % against a last error of 2.2 %)
    np.testing.assert_allclose(smoothed, falling)
    values = np.array([10.0, np.nan, 4.0, 2.0, 2.0])
    np.testing.assert_allclose(centred_mean(values, 2), [10.0, 7.0, 3.0, 8 / 3, 2.0])
    assert np.isnan(centred_mean(np.full(3, np.nan))).all()


def test_smoothed_loss_follows_the_batch_losses_after_a_high_start():
    mean, weight = None, 0.0
    for loss in [2.0] + [0.1] * 199:
        mean, weight = bias_corrected_ema(mean, weight, loss, LOSS_EMA_DECAY)
    assert 0.1 <= mean < 0.12, "the first loss must not dominate the smoothed loss"


@pytest.mark.parametrize("name", ["run.Errors.png", "run.history.png", "run.timeline.png"])
def test_step_axis_has_even_round_ticks(tmp_path, figures, name):
    write_run(tmp_path)
    create_plots(tmp_path / "run", "run")
    (step_axis,) = [ax for ax in figures[name].axes if ax.get_xlabel() == "update steps"]
    ticks = [int(t.get_text()) for t in step_axis.get_xticklabels()]
    spacing = ticks[1] - ticks[0]
    assert len(ticks) >= 3 and np.all(np.diff(ticks) == spacing)
    assert spacing in (100, 200, 250, 500, 1000) and ticks[0] % spacing == 0


@pytest.mark.parametrize("name", ["run.Errors.png", "run.history.png", "run.timeline.png"])
def test_every_panel_has_a_y_label_and_legends_lie_beside_the_curves(tmp_path, figures, name):
    write_run(tmp_path)
    create_plots(tmp_path / "run", "run")
    figure = figures[name]
    renderer = FigureCanvasAgg(figure).get_renderer()
    for ax in figure.axes:
        if ax.get_xlabel() == "update steps" or ax.get_label() == "<colorbar>":
            continue
        assert ax.get_ylabel(), f"a panel of {name} has no y-label"
        legend = ax.get_legend()
        if legend is not None:
            assert legend.get_window_extent(renderer).x0 >= ax.get_window_extent(renderer).x1


def test_history_plot_has_the_learning_rate_on_its_own_axes_and_a_log_loss(tmp_path, figures):
    write_run(tmp_path)
    create_plots(tmp_path / "run", "run")
    axes = figures["run.history.png"].axes
    (lr,) = [ax for ax in axes if ax.get_ylabel() == "learning rate"]
    assert [line.get_label() for line in lr.get_lines()] == ["learning rate"]
    assert axes[0].get_yscale() == "log"
    assert [line.get_marker() for line in axes[0].get_lines()[1:3]] == ["o", "s"]


def test_round_step_ticks():
    assert list(round_step_ticks(0, 2750)) == [0, 500, 1000, 1500, 2000, 2500]
    assert list(round_step_ticks(0, 300)) == [0, 50, 100, 150, 200, 250, 300]
    assert list(round_step_ticks(3, 9)) == [3, 4, 5, 6, 7, 8, 9]


def test_preview_has_a_colour_bar_and_the_step_and_time_in_its_title(tmp_path, figures):
    cube = np.random.default_rng(0).random((1, 3, 12, 12)).astype(np.float32)
    model = tiny_net([[3, 3]], [[1, 1]], [4])
    preview = Preview([cube], "run", n_lab=2, z_halo=0, export_class=1, max_z_pred=1)
    (png,) = preview.predict(model, 0.05, tmp_path, step=1234)
    figure = figures[png.name]
    assert any(ax.get_label() == "<colorbar>" for ax in figure.axes)
    title = figure.axes[0].get_title()
    assert "step 1234" in title and "3 min" in title


def test_filter_plot_has_a_scale(tmp_path, figures):
    model = torch.nn.Sequential(torch.nn.Conv2d(1, 4, 3))
    introspection.plot_filters(model, tmp_path / "f.png")
    (colour_bar,) = [ax for ax in figures["f.png"].axes if ax.get_label() == "<colorbar>"]
    assert colour_bar.get_ylabel() == "weight"


def test_debug_batch_names_the_label_colours(tmp_path, figures):
    data = np.random.default_rng(0).random((1, 1, 20, 20)).astype(np.float32)
    labels = (np.arange(144).reshape(1, 12, 12) % 2).astype(np.int16)
    introspection.plot_debug_batch(data, labels, tmp_path / "d.png")
    legend = figures["d.png"].axes[1].get_legend()
    assert [t.get_text() for t in legend.get_texts()] == ["class 0", "class 1", "offset: no labels"]


def test_timeline_colour_bar_sits_beside_its_scatter_and_the_curves_fill_the_width(
    tmp_path, figures
):
    write_run(tmp_path)
    create_plots(tmp_path / "run", "run")
    figure = figures["run.timeline.png"]
    renderer = FigureCanvasAgg(figure).get_renderer()
    width = figure.bbox.width
    (scatter,) = [ax for ax in figure.axes if ax.get_xlabel() == "mean label of the batch"]
    (colour_bar,) = [ax for ax in (*figure.axes, *scatter.child_axes)
                     if ax.get_ylabel() == "update step"]  # fmt: skip
    gap = colour_bar.get_window_extent(renderer).x0 - scatter.get_window_extent(renderer).x1
    assert 0 <= gap < 0.03 * width, f"the colour bar lies {gap / width:.0%} of the width away"
    assert scatter.get_window_extent(renderer).width > 0.75 * width


@pytest.mark.parametrize(
    "conv, labels",
    [
        (torch.nn.Conv2d(1, 4, 3), ["0", "1", "2", "3"]),
        (torch.nn.Conv3d(2, 2, 3), ["0/0", "0/1", "1/0", "1/1"]),
    ],
)
def test_filter_plot_numbers_every_filter(tmp_path, figures, conv, labels):
    """``sf`` numbers the filters (filter/input channel), so one seen there can be found."""
    introspection.plot_filters(torch.nn.Sequential(conv), tmp_path / "f.png")
    (image_axes,) = [ax for ax in figures["f.png"].axes if ax.get_label() != "<colorbar>"]
    assert [text.get_text() for text in image_axes.texts] == labels
