"""The training loop: batches → update steps → monitoring, logs, snapshots, previews.

One readable file in the spirit of nanoGPT's ``train.py``. Per step (specification, "How it
works"): get a batch (from background workers when configured), make one update (several for
CG and L-BFGS), and every ``history_freq`` steps estimate train/valid performance on monitor
batches, print a status line, save the logs, the ``-LAST`` parameters and plots. Persistent
snapshots every ``param_save_h`` hours, previews after ``initial_prev_h`` then every
``prev_save_h`` hours. Ends after ``n_steps`` or ``max_runtime`` seconds (batch creation and
monitoring included, time in the Ctrl+C console excluded) and saves ``<save_name>_end.param``.
"""

from __future__ import annotations

import math
import os
import signal
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ..data.background import BackgroundBatches, WaitStopped
from ..data.source import DataSource
from ..device import autocast
from ..net.losses import affinity_errors, compute_loss, error_rate
from ..net.paramfile import save_params
from ..terminal import format_seconds
from .distributed import SINGLE_PROCESS, Ranks, any_rank, mean_over_ranks, wrap
from .history import History
from .loggers import Outcome, RunLogger, call_each
from .optimizers import build_optimizer, optimizer_params, switch_optimizer
from .plots import PlotProcess, create_plots
from .speed import compiled, set_layout, to_layout
from .state import RunState, lr_at_step

STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)
"""Signals that end a run with the final save: a hang-up (a closed terminal, a dropped ssh
session) is a stop like SIGTERM, not a loss of the run; SIGINT at a terminal opens the console."""

LOSS_EMA_DECAY = 0.995
SPEED_EMA_DECAY = 0.8


def _number(value: float, fmt: str) -> str:
    """``value`` formatted, or ``nan`` (e.g. no validation data) without zero padding."""
    return format(value, fmt) if math.isfinite(value) else "nan"


def bias_corrected_ema(
    mean: float | None, weight: float, value: float, decay: float
) -> tuple[float, float]:
    """The exponential moving average after ``value``, and its new weight ``1 - decay**n``.

    Dividing by the weight (as Adam does) keeps the first losses from dominating the average
    for hundreds of steps, so the smoothed loss follows the batch losses from the start.
    """
    new_weight = decay * weight + (1 - decay)
    old = 0.0 if mean is None else decay * weight * mean
    return (old + (1 - decay) * value) / new_weight, new_weight


class NonFiniteLoss(FloatingPointError):
    """Raised inside the update closure so a NaN/inf loss never reaches the parameters."""


class SaveFailed(Exception):
    """A file of the run could not be written (full disk, quota, permissions).

    Files are written atomically, so the previous version of the file is intact; the message
    says what was being saved and why it failed, in the user's words rather than a traceback.
    """

    def __init__(self, what: str, error: OSError) -> None:
        reason = os.strerror(error.errno) if error.errno else str(error)
        super().__init__(f"{reason[:1].lower()}{reason[1:]} while saving {what}")


def failed_save_line(what: str, error: OSError) -> str:
    """One line for a file that could not be written while training goes on."""
    text = str(SaveFailed(what, error))
    return f"{text[:1].upper()}{text[1:]}."


class TrainingStopped(Exception):
    """Training ended by an exception after it had started; the cause is ``__cause__``.

    Raised from :meth:`Trainer.run` once the current parameters are saved, with a message
    that says why and where the parameters are, for the command line to print last.
    """


class Trainer:
    """Owns the model, optimiser, batch source and every file written during training.

    Built by :func:`elektronn.train.run.build_trainer`. Attributes used from the Ctrl+C
    console: ``cnn`` (the model), ``data``, ``batches`` (the batch source, which owns the
    training batch settings), ``config`` (the user's, read-only), ``run`` (the run's state),
    ``optimizer``, ``step``, ``history``, ``batch`` (the last training batch).

    ``pause(trainer)`` is called after a step when Ctrl+C was pressed at a terminal (the run
    passes the console); without it Ctrl+C stops the run like SIGTERM.

    ``loggers`` (:class:`~elektronn.train.loggers.RunLogger`: TensorBoard, MLflow; rank 0's
    only) get every history step and preview; they are closed when :meth:`run` ends.
    """

    def __init__(
        self,
        config: Any,
        run: RunState,
        data: DataSource,
        model: torch.nn.Module,
        device: torch.device,
        save_dir: Path,
        batches: BackgroundBatches,
        monitor_kwargs: dict | None = None,
        preview: Any = None,
        ranks: Ranks = SINGLE_PROCESS,
        pause: Callable[[Trainer], None] | None = None,
        loggers: Sequence[RunLogger] = (),
    ) -> None:
        self.config = config
        self.run_state = run
        self.data = data
        self.cnn = model
        self.ranks = ranks
        set_layout(model, config.channels_last)
        # DDP when distributed, compiled when asked for; self.cnn is the plain model
        self.train_net = compiled(wrap(model, ranks, device), config.torch_compile)
        self.device = device
        self.save_dir = Path(save_dir)
        self.batches = batches
        self.monitor_kwargs = dict(monitor_kwargs or {})
        self.preview = preview
        self.pause = pause
        self.regression = config.target == "regression"
        # affinity targets are float (-1 = masked); their first channels are the affinities
        self.float_labels = config.target in ("regression", "affinity")
        self.n_affinities = len(config.affinity_offsets or ()) or None
        # per source, the majority baseline of the affinity error (%) of the last monitor batch
        self.affinity_baseline: dict[str, float] = {}
        self.optimizer = build_optimizer(run.optimizer, list(model.parameters()), config)
        self.history = History()
        self.plotter = PlotProcess(self.save_dir, config.save_name, self.regression)
        self.loggers = list(loggers)
        self.step = 0
        self.t_passed = 0.0
        self.wait_time = 0.0
        self.loss_ema: float | None = None
        self.loss_ema_weight = 0.0  # 1 - decay**updates: corrects the EMA's start from zero
        self.its_per_s = 0.0
        self.batch: tuple | None = None
        self.last_loss = math.nan
        # the best validation error (loss for regression) so far and its step: -BEST.param
        self.best = math.inf
        self.best_step: int | None = None
        self.last_snapshot_t = 0.0
        self.next_preview_h = config.initial_prev_h
        self.stop_reason: str | None = None
        self.console_requested = False
        self.killed = False
        self._interrupts = 0

    # ----------------------------------------------------------------- batches and losses
    def get_batch(self) -> tuple:
        """One training batch from the batch source (workers, or made in this process).

        Waiting gives up (:class:`WaitStopped`) when a stop was requested or ``max_runtime``
        passes meanwhile, so a run whose workers hang still ends on time, and on the first
        SIGTERM (a single process only: every rank must take the same step).
        """
        t0 = time.perf_counter()

        def should_stop() -> bool:
            waited = time.perf_counter() - t0
            return (
                self.stop_reason is not None or self.t_passed + waited > self.run_state.max_runtime
            )

        batch = self.batches.get(None if self.ranks.is_distributed else should_stop)
        self.wait_time += time.perf_counter() - t0
        return batch

    def _to_device(self, batch: tuple) -> tuple[torch.Tensor, torch.Tensor, dict]:
        data, labels = batch[0], batch[1]
        x = torch.from_numpy(np.ascontiguousarray(data)).to(self.device, non_blocking=True)
        x = to_layout(x, self.config.channels_last)
        y = torch.from_numpy(np.ascontiguousarray(labels)).to(self.device, non_blocking=True)
        y = y.float() if self.float_labels else y.long()
        extras: dict[str, torch.Tensor] = {}
        rest = list(batch[2:])
        if self.config.lazy_labels and len(rest) >= 2:
            extras["info"] = tuple(
                torch.from_numpy(np.asarray(a)).to(self.device) for a in rest[:2]
            )
            rest = rest[2:]
        if self.config.use_example_weights and rest:
            extras["example_weights"] = torch.from_numpy(np.asarray(rest[0])).to(self.device)
        return x, y, extras

    def forward(self, net: torch.nn.Module, x: torch.Tensor) -> torch.Tensor:
        """``net(x)`` in the configured ``precision``; the logits as float32 for the loss."""
        with autocast(self.device, self.config.precision):
            return net(x).float()

    def loss(self, logits: torch.Tensor, y: torch.Tensor, extras: dict) -> torch.Tensor:
        return compute_loss(
            logits,
            y,
            target=self.config.target,
            class_weights=self.config.class_weights,
            label_prop_thresh=self.config.label_prop_thresh,
            n_affinities=self.n_affinities,
            affinity_dice=self.config.affinity_dice,
            **extras,
        )

    def train_step(self, batch: tuple) -> float:
        """One update on ``batch``; returns the loss before the update.

        Distributed, the loss is the mean over the ranks, so every rank decides alike.
        """
        x, y, extras = self._to_device(batch)
        self.cnn.train()

        def closure() -> torch.Tensor:
            for p in self.cnn.parameters():
                p.grad = None
            loss = self.loss(self.forward(self.train_net, x), y, extras)
            mean_loss = mean_over_ranks(loss.detach(), self.ranks)
            if not torch.isfinite(mean_loss):
                raise NonFiniteLoss(float(mean_loss))
            loss.backward()
            return mean_loss

        return float(self.optimizer.step(closure))

    @torch.no_grad()
    def test_model(self, source: str = "valid") -> tuple[float, float]:
        """Loss and error on a monitor batch from ``source`` (no warping, no dropout).

        Returns ``(nan, nan)`` when the data has no such source (e.g. no validation cubes).
        The error is in % for classification and the RMSE for regression.
        """
        if not self.data.has_source(source):
            return math.nan, math.nan
        batch = self.data.getbatch(
            self.config.monitor_batch_size, source=source, **self.monitor_kwargs
        )
        x_all, y_all, extras = self._to_device(batch)
        self.cnn.eval()
        loss_sum = err_sum = base_sum = 0.0
        n, size = len(x_all), self.batches.batch_size
        for start in range(0, n, size):
            chunk = slice(start, start + size)
            part = {
                k: tuple(t[chunk] for t in v) if isinstance(v, tuple) else v[chunk]
                for k, v in extras.items()
            }
            logits = self.forward(self.cnn, x_all[chunk])
            weight = len(x_all[chunk]) / n
            loss_sum += weight * float(self.loss(logits, y_all[chunk], part))
            err_sum += weight * float(
                error_rate(logits, y_all[chunk], self.config.target, self.n_affinities)
            )
            if self.config.target == "affinity":
                base_sum += weight * float(
                    affinity_errors(logits, y_all[chunk], self.n_affinities)[1]
                )
        self.cnn.train()
        if self.config.target == "affinity":
            self.affinity_baseline[source] = 100.0 * base_sum
        error = math.sqrt(err_sum) if self.regression else 100.0 * err_sum
        return loss_sum, error

    # ------------------------------------------------------------------ files
    def param_path(self, suffix: str) -> Path:
        return self.save_dir / f"{self.config.save_name}{suffix}.param"

    def save(self, path: Path | str) -> Path:
        """Save the parameters with the resolved config and the resumable training state."""
        path = Path(path)
        try:
            save_params(
                path,
                self.cnn,
                self.run_state.resolved(self.config),
                extra=self.state(),
                input_standardisation=self.data.input_standardisation(),
            )
        except OSError as exc:
            raise SaveFailed(f"the parameters to {path}", exc) from exc
        return path

    def state(self) -> dict:
        """Everything besides the weights that a resumed run needs to continue exactly."""
        rng = self.data.rng
        return {
            "step": self.step,
            "t_passed": self.t_passed,
            "loss_ema": self.loss_ema,
            "loss_ema_weight": self.loss_ema_weight,
            "best": self.best,
            "best_step": self.best_step,
            "last_snapshot_t": self.last_snapshot_t,
            "next_preview_h": self.next_preview_h,
            "optimizer_name": self.run_state.optimizer,
            "optimizer": self.optimizer.state_dict(),
            "cg_rows": self.history.count("CGtimeline"),
            "torch_rng": torch.get_rng_state(),
            "data_rng": None if rng is None else rng.bit_generator.state,
        }

    def restore(self, state: dict) -> None:
        """Continue from :meth:`state` of a saved run (``elektronn-train --resume``)."""
        self.step = int(state["step"])
        self.t_passed = float(state["t_passed"])
        self.loss_ema = state["loss_ema"]
        # files of runs before the bias correction: their EMA has long forgotten its start
        self.loss_ema_weight = float(state.get("loss_ema_weight", 1.0))
        # files of runs before -BEST.param existed have no best value yet
        self.best = float(state.get("best", math.inf))
        self.best_step = state.get("best_step")
        self.last_snapshot_t = float(state["last_snapshot_t"])
        self.next_preview_h = float(state["next_preview_h"])
        if state["optimizer_name"] != self.run_state.optimizer:
            self.switch_optimizer(state["optimizer_name"])
        self.optimizer.load_state_dict(state["optimizer"])
        if not self.ranks.is_main:  # only rank 0 keeps logs and saved its random streams
            return
        self.history.load(
            self.save_dir / "Backup", self.config.save_name, self.step, state["cg_rows"]
        )
        torch.set_rng_state(state["torch_rng"])
        if state["data_rng"] is not None and self.data.rng is not None:
            self.data.rng.bit_generator.state = state["data_rng"]

    def save_logs(self) -> None:
        backup = self.save_dir / "Backup"
        try:
            self.history.save(backup, self.config.save_name)
        except OSError as exc:
            raise SaveFailed(f"the training logs to {backup}", exc) from exc

    # ------------------------------------------------------------------ the loop
    def current_lr(self) -> float | None:
        return self.optimizer.lr

    def apply_lr_schedule(self) -> None:
        """The LR of this step from the schedule (optimisers with an LR only)."""
        if self.optimizer.lr is not None:
            lr0 = optimizer_params(self.run_state.optimizer, self.config)["LR"]
            self.optimizer.lr = lr_at_step(
                self.step, lr0, self.config.LR_decay, self.run_state.lr_schedule
            )

    def set_lr(self, lr: float) -> None:
        """``setlr``: a schedule entry at the next step, so the LR stays (and decays) from here."""
        self.run_state.lr_schedule[self.step] = float(lr)
        self.optimizer.lr = lr

    def set_momentum(self, momentum: float) -> None:
        """``setmom``: kept in the run state, so it survives switching the optimiser."""
        self.run_state.momentum = float(momentum)
        self.optimizer.momentum = momentum

    def switch_optimizer(self, name: str) -> None:
        """Change the optimiser mid-run (console commands SGD, CG, RPROP, LBFGS, Adam).

        An LR in use carries over (as a schedule entry), and so does a ``setmom`` momentum.
        """
        lr = self.optimizer.lr
        self.optimizer = switch_optimizer(
            self.optimizer, name, list(self.cnn.parameters()), self.config
        )
        self.run_state.optimizer = name
        if lr is not None and self.optimizer.lr is not None:
            self.run_state.lr_schedule[self.step] = lr
        if self.run_state.momentum is not None and self.optimizer.momentum is not None:
            self.optimizer.momentum = self.run_state.momentum

    def monitor(self, i: int, nll: float, nll_after: float) -> None:
        """The history step: monitor batches, logs, status line, LAST backup and plots."""
        train_loss, train_err = self.test_model("train")
        valid_loss, valid_err = self.test_model("valid")
        lr = self.current_lr()
        self.history.add(
            "history",
            i,
            self.t_passed,
            self.loss_ema,
            nll,
            train_loss,
            valid_loss,
            nll_after - nll,
            math.nan if lr is None else lr,
        )
        self.history.add("errors", i, self.t_passed, train_err, valid_err)
        self.save_logs()
        self.to_loggers(lambda logger: logger.log_history(self.history, i, self.its_per_s))
        self.save(self.param_path("-LAST"))
        self.keep_best(i, valid_loss if self.regression else valid_err)
        if self.config.plot_on:
            self.plotter.request()
        if self.config.print_status:
            print(self.status_line(i, train_err, valid_err, nll_after - nll), flush=True)

    def keep_best(self, i: int, value: float) -> None:
        """``-BEST.param`` when the validation error (regression: loss) of step ``i`` is the
        lowest so far; nothing without validation data (``value`` is nan)."""
        if not value < self.best:
            return
        self.best, self.best_step = value, i
        self.save(self.param_path("-BEST"))

    def best_text(self) -> str:
        """``best=09.42%@2300``: the lowest validation error (regression: loss) and its step."""
        if self.best_step is None:
            return "best=nan"
        value = f"{self.best:.4f}" if self.regression else f"{self.best:05.2f}%"
        return f"best={value}@{self.best_step}"

    def progress(self) -> str:
        """``step 600/2000, t=12m/30m, ETA 8m``: how far the run is toward whichever of
        ``n_steps`` and ``max_runtime`` ends it first, at the mean speed so far."""
        run = self.run_state
        left = run.max_runtime - self.t_passed
        if self.step and self.t_passed > 0:
            left = min(left, (run.n_steps - self.step) * self.t_passed / self.step)
        no_speed_yet = self.t_passed <= 0
        eta = "n/a" if no_speed_yet else format_seconds(max(left, 0.0))
        return (
            f"step {self.step}/{run.n_steps}, t={format_seconds(self.t_passed)}/"
            f"{format_seconds(run.max_runtime)}, ETA {eta}"
        )

    def status_line(self, i: int, train_err: float, valid_err: float, diff: float) -> str:
        name = {"regression": "MSE", "affinity": "BCE"}.get(self.config.target, "NLL")
        unit = "" if self.regression else "%"
        lr = self.current_lr()
        lr_text = "n/a" if lr is None else f"{lr:.5f}"
        prevalence = 100.0 * float(np.mean(self.batch[1])) if self.batch is not None else math.nan
        return (
            f"{i:05d} {name}m={self.loss_ema:.3f}, train={_number(train_err, '05.2f')}{unit}, "
            f"valid={_number(valid_err, '05.2f')}{unit}, {self.affinity_text()}{self.best_text()}, "
            f"prev={prevalence:04.1f}, {name}diff={diff:+.1e}, "
            f"LR={lr_text}, {self.its_per_s:.1f} it/s, {self.progress()}"
        )

    def affinity_text(self) -> str:
        """``(affinity error at 0.5; majority 21.30%/19.80%), ``: the errors beside what
        always answering each channel's more frequent value scores (train/valid); empty for
        other targets."""
        if self.config.target != "affinity":
            return ""
        train, valid = (self.affinity_baseline.get(s, math.nan) for s in ("train", "valid"))
        return (
            f"(affinity error at 0.5; majority {_number(train, '05.2f')}%/"
            f"{_number(valid, '05.2f')}%), "
        )

    def maybe_snapshot(self) -> None:
        hours = self.config.param_save_h
        if (self.t_passed - self.last_snapshot_t) / 3600 > hours:
            k = round(self.t_passed / 3600 / hours)
            path = self.save(self.param_path(f"-{k * hours:.1f}h"))
            self.last_snapshot_t = self.t_passed
            print(f"Snapshot of step {self.step - 1} saved to {path.name}", flush=True)

    def maybe_preview(self) -> None:
        if self.preview is None or self.t_passed / 3600 <= self.next_preview_h:
            return
        self.cnn.eval()
        try:
            written = self.preview.predict(
                self.cnn,
                self.next_preview_h,
                self.save_dir,
                self.data.input_standardisation(),
                self.step - 1,
            )
            self.to_loggers(lambda logger: logger.log_images(written, self.step))
            pattern = f"{self.config.save_name}-pred-*-{self.next_preview_h:g}hrs.png"
            print(f"Preview of step {self.step - 1}: {len(written)} images ({pattern})", flush=True)
        except OSError as exc:  # e.g. a full disk: one line, and training goes on
            print(failed_save_line(f"the previews to {self.save_dir}", exc), flush=True)
        except Exception as exc:  # a failed preview must not end hours of training
            print(f"Preview prediction failed: {type(exc).__name__}: {exc}", flush=True)
        finally:
            self.cnn.train()
        self.next_preview_h += self.config.prev_save_h

    def _on_interrupt(self, signum: int, frame: Any) -> None:
        """Ctrl+C at a terminal opens the console after this step; otherwise stop like abort.

        SIGTERM, SIGHUP (the terminal closed) and SIGINT without a terminal (e.g. a batch
        job) end the run cleanly with the final save. A third signal before the step ends
        interrupts at once.
        """
        self._interrupts += 1
        if self._interrupts > 2:
            raise KeyboardInterrupt
        at_terminal = sys.stdin is not None and sys.stdin.isatty()
        pausable = self.pause is not None and not self.ranks.is_distributed
        if signum == signal.SIGINT and at_terminal and pausable:
            self.console_requested = True
        else:
            self.stop_reason = self.stop_reason or f"{signal.Signals(signum).name} received"

    def open_console(self) -> None:
        """The Ctrl+C console (``pause``); its time does not count as training time."""
        self.console_requested = False
        self.pause(self)
        self._interrupts = 0

    def one_step(self) -> bool:
        """Update step ``i = self.step`` and its bookkeeping; False if the loss was not finite.

        ``self.step`` counts the steps done, so a parameter file saved during step ``i``
        resumes at ``i + 1``. ``t_passed`` is advanced by the caller.
        """
        i, t0 = self.step, time.perf_counter()
        self.apply_lr_schedule()
        try:
            self.batch = self.get_batch()
        except WaitStopped:
            self.stop_reason = self.stop_reason or (
                f"max_runtime of {self.run_state.max_runtime} s reached while waiting for data"
            )
            return False
        try:
            nll = self.train_step(self.batch)
        except NonFiniteLoss as exc:
            self.stop_reason = (
                f"the loss became {exc.args[0]} at step {i} (no update was made); "
                f"lower the learning rate or check the data"
            )
            return False
        cg_rows = self.optimizer.take_timeline()  # CG's line search
        self.step += 1
        dt = time.perf_counter() - t0
        self.its_per_s = (
            1 / dt
            if not self.its_per_s
            else (SPEED_EMA_DECAY * self.its_per_s + (1 - SPEED_EMA_DECAY) / dt)
        )
        self.last_loss = nll
        self.loss_ema, self.loss_ema_weight = bias_corrected_ema(
            self.loss_ema, self.loss_ema_weight, nll, LOSS_EMA_DECAY
        )
        if self.ranks.is_main:  # only rank 0 keeps and writes the logs
            for row in cg_rows:
                self.history.add("CGtimeline", *row)
            self.history.add(
                "timeline", i, self.t_passed + dt, self.loss_ema, nll, float(np.mean(self.batch[1]))
            )
            if i % self.run_state.history_freq == 0:
                self.monitor(i, nll, self.loss_after_update())
            self.maybe_snapshot()
            self.maybe_preview()
        return True

    @torch.no_grad()
    def loss_after_update(self) -> float:
        """Loss on the same batch after the update (the history's loss change)."""
        x, y, extras = self._to_device(self.batch)
        self.cnn.eval()
        loss = float(self.loss(self.forward(self.cnn, x), y, extras))
        self.cnn.train()
        return loss

    def run(self) -> str:
        """Train until n_steps, max_runtime or a stop request; returns why it ended.

        Raises
        ------
        TrainingStopped
            For any exception (or a third interrupt) once training started, after the
            current parameters were saved to ``-LAST``.
        """
        previous = {s: signal.signal(s, self._on_interrupt) for s in STOP_SIGNALS}
        outcome: Outcome = "FAILED"
        try:
            reason = self.loop()
            if self.killed:
                print("Killed from the console: nothing saved.", flush=True)
            else:
                self.finish(reason)
            outcome = "KILLED" if self.killed else "FINISHED"
        except BaseException as exc:
            if isinstance(exc, KeyboardInterrupt):  # the third Ctrl+C
                outcome = "KILLED"
            raise TrainingStopped(self.stop_message(exc)) from exc
        finally:
            for s, handler in previous.items():
                signal.signal(s, handler)
            self.to_loggers(lambda logger: logger.close(outcome))
            self.loggers = []
        return reason

    def to_loggers(self, call: Callable[[RunLogger], object]) -> None:
        """``call`` each run logger; one that fails is dropped with one line (a logger must
        not end hours of training), the others go on."""
        self.loggers = call_each(self.loggers, call)

    def loop(self) -> str:
        """The update steps, until a stop condition; returns why it ended."""
        run = self.run_state
        t_last = time.perf_counter()
        # Only the agreed decision may end the loop: a signal reaching one rank just after
        # the agreement would otherwise let it leave while the others start the next step.
        stop = any_rank(self.stop_reason is not None, self.ranks)
        while self.step < run.n_steps and not stop and not self.killed:
            if not self.one_step():
                break
            now = time.perf_counter()
            self.t_passed += now - t_last
            if self.console_requested:
                self.open_console()
            t_last = time.perf_counter()
            if self.t_passed > run.max_runtime:
                self.stop_reason = f"max_runtime of {run.max_runtime} s reached"
            stop = any_rank(self.stop_reason is not None, self.ranks)
            if stop and self.stop_reason is None:
                self.stop_reason = "another rank stopped"
        return self.stop_reason or f"n_steps={run.n_steps} reached"

    def stop_message(self, exc: BaseException) -> str:
        """Save what was trained, and say why training stopped and how to continue."""
        saved = self.save_on_error(exc)
        why = (
            str(exc)
            if isinstance(exc, SaveFailed)
            else ": ".join(filter(None, (type(exc).__name__, str(exc))))
        )
        last = self.param_path("-LAST")
        if saved is not None:
            kept = f"the parameters of step {self.step} were saved to {saved}"
        elif last.is_file():
            kept = f"the last saved parameters in {last} are intact"
        else:
            return f"training stopped at step {self.step}: {why}; nothing was saved."
        return (
            f"training stopped at step {self.step}: {why}; {kept}; continue with "
            f"'elektronn-train --resume {self.save_dir}'."
        )

    def save_on_error(self, exc: BaseException) -> Path | None:
        """Keep what was trained when anything goes wrong after training started.

        Returns the saved file, or None when nothing was trained yet or saving is what
        failed (a second attempt would only fail the same way and hide the first message).
        """
        if self.step == 0 or isinstance(exc, SaveFailed) or not self.ranks.is_main:
            return None
        try:
            path = self.save(self.param_path("-LAST"))
        except Exception as save_exc:  # report both, never hide the original error
            print(f"Could not save the parameters: {save_exc}", file=sys.stderr, flush=True)
            return None
        try:
            self.save_logs()
        except Exception as save_exc:
            print(f"Could not save the training logs: {save_exc}", file=sys.stderr, flush=True)
        return path

    def close(self) -> None:
        """Stop the batch workers (idempotent)."""
        self.batches.close()

    def final_plots(self) -> None:
        """The plots of the whole run; a full disk here costs the pictures, not the run."""
        try:
            create_plots(self.save_dir, self.config.save_name, self.regression)
        except OSError as exc:
            print(
                failed_save_line(f"the plots to {self.save_dir}", exc), file=sys.stderr, flush=True
            )

    def finish(self, reason: str) -> None:
        """Normal end: final parameters, logs and plots (written by rank 0)."""
        if not self.ranks.is_main:
            return
        path = self.save(self.param_path("_end"))
        self.save_logs()
        self.plotter.close()
        self.final_plots()
        share = 100 * self.wait_time / self.t_passed if self.t_passed else 0.0
        print(
            f"End of training after {self.step} steps ({reason}); "
            f"t={format_seconds(self.t_passed)}, waiting for data {share:.1f} % of the time.\n"
            f"Parameters saved to {path}",
            flush=True,
        )
