"""The Ctrl+C console: steer a running training without losing it.

Ctrl+C at a terminal pauses training after the current step (``Trainer.open_console``) and
opens this prompt (specification "CNN Command Line", reference §6). A command word runs a
command from :data:`COMMANDS`; any other input is Python: a bare expression prints its value
(``config.n_steps``), input with ``(`` or ``=`` (or any statement) is executed, with the
trainer's objects in scope. Errors are printed and the prompt stays, so a typo never costs
a run. Differences from the original, as the design asks: ``sethist 0`` is refused,
``smooth`` and ``sf`` work for 3D nets, ``params`` prints the statistics it announces, and
changed data settings reach the background workers (see :func:`propagate_changes`).
"""

from __future__ import annotations

import contextlib
import copy
import functools
import getpass
import math
import signal
import sys
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import torch

from ..config.options import OPTIMIZERS
from ..streams import RUN_LOG
from . import introspection

if TYPE_CHECKING:
    from .trainer import Trainer

Output = Callable[[str], object]
DEFAULT_PARAM_FILE = "CNN.save"


@dataclass
class Session:
    """One opening of the console: the trainer, where text goes, and the user's names."""

    trainer: Trainer
    output: Output
    namespace: dict[str, Any]


@dataclass(frozen=True)
class Settings:
    """What the background workers must know: getbatch arguments and plain data attributes."""

    kwargs: dict[str, Any]
    attributes: dict[str, Any]


# -- status and menu ------------------------------------------------------------------------


def _last(trainer: Trainer, kind: str, column: int) -> float:
    row = trainer.history.last(kind)
    return math.nan if row is None else float(row[column])


def _optional(value: float | None, fmt: str) -> str:
    return "n/a" if value is None else format(value, fmt)


def status_line(trainer: Trainer) -> str:
    """The long status line printed when the console opens (reference §5.3).

    Smoothed and last loss, the last monitored train/valid loss and error, LR, momentum,
    speed and training time. The train/valid values are those of the last history step.
    """
    name = "MSE" if trainer.regression else "NLL"
    unit = "" if trainer.regression else "%"
    ema = math.nan if trainer.loss_ema is None else trainer.loss_ema
    lr, momentum = trainer.optimizer.lr, trainer.optimizer.momentum
    train_err, valid_err = _last(trainer, "errors", 2), _last(trainer, "errors", 3)
    return (
        f"{trainer.step:05d} {name}m={ema:.5f}, {name}={trainer.last_loss:.4f}, "
        f"train={_last(trainer, 'history', 4):.5f}, valid={_last(trainer, 'history', 5):.5f}, "
        f"train={train_err:.3f}{unit}, valid={valid_err:.3f}{unit}, "
        f"{trainer.best_text()},\nLR={_optional(lr, '.6f')}, MOM={_optional(momentum, '.6f')}, "
        f"{trainer.its_per_s:.1f} it/s, {trainer.progress()}"
    )


def menu(save_name: str) -> str:
    """The menu of the specification, with the optimisers this implementation offers."""
    entries = [
        "'q' (leave menu)", "'abort' (saving params)",
        "'kill' (no saving)", "'save'/'load' (opt: filename)",
        "'sf' (show filters)", "'smooth' (smooth filters)",
        "'sethist <int>'", "'setlr <float>'",
        "'setmom <float>'", "'params' print info",
    ]  # fmt: skip
    rows = [
        f"{left + ',':<36}{right}," for left, right in zip(entries[::2], entries[1::2], strict=True)
    ]
    return "\n".join(
        [
            f">> {save_name} <<",
            *rows,
            f"Change training optimizer: {', '.join(repr(o) for o in OPTIMIZERS)}",
            "For everything else enter a command in the command line ('help' shows this menu)",
        ]
    )


# -- commands -------------------------------------------------------------------------------
# Each returns True when the console should close.


def _leave(session: Session, args: list[str]) -> bool:
    session.output("Continuing training")
    return True


def _abort(session: Session, args: list[str]) -> bool:
    session.trainer.stop_reason = "aborted from the console"
    session.output("Aborting: saving the parameters and making the final plots")
    return True


def _kill(session: Session, args: list[str]) -> bool:
    session.trainer.killed = True
    session.output("Killing the training without saving")
    return True


def _help(session: Session, args: list[str]) -> bool:
    session.output(menu(session.trainer.config.save_name))
    return False


def param_file_path(trainer: Trainer, args: list[str]) -> Path:
    """The file of ``save``/``load``: ``CNN.save`` by default, relative names in the save dir."""
    if len(args) > 1:
        raise ValueError("Give at most one file name, e.g. 'save my.param'.")
    path = Path(args[0] if args else DEFAULT_PARAM_FILE).expanduser()
    return path if path.is_absolute() else Path(trainer.save_dir) / path


def _save(session: Session, args: list[str]) -> bool:
    path = session.trainer.save(param_file_path(session.trainer, args))
    session.output(f"Saved the parameters to {path}")
    return False


def _load(session: Session, args: list[str]) -> bool:
    from ..net.paramfile import load_into_model, load_params

    trainer = session.trainer
    path = param_file_path(trainer, args)
    report = load_into_model(trainer.cnn, load_params(path)["state_dict"])
    trainer.optimizer.reset_state()  # momenta and step sizes belong to the old weights
    session.output(f"Loaded {path} (optimiser state reset): {report}")
    return False


def _show_filters(session: Session, args: list[str]) -> bool:
    path = Path(session.trainer.save_dir) / introspection.FILTER_IMAGE
    introspection.plot_filters(session.trainer.cnn, path)
    session.output(f"First-layer filters drawn into {path}")
    return False


def _smooth(session: Session, args: list[str]) -> bool:
    shape = introspection.smooth_filters(session.trainer.cnn)
    session.output(
        f"Smoothed the first-layer filters {shape} with a Gaussian of sigma "
        f"{introspection.SMOOTH_SIGMA} px"
    )
    return False


def _number(session: Session, args: list[str], kind: type, usage: str) -> Any:
    """The single numeric argument of a command, or None after printing how to use it."""
    try:
        (text,) = args
        value = kind(text)
    except ValueError:
        session.output(f"Could not convert {' '.join(args)!r} to a number; use '{usage}'.")
        return None
    if not math.isfinite(value):
        session.output(f"{value} is not a finite number; use '{usage}'.")
        return None
    return value


def _sethist(session: Session, args: list[str]) -> bool:
    steps = _number(session, args, int, "sethist <int>")
    if steps is not None and steps < 1:
        session.output(f"The history frequency must be at least 1 step, not {steps}.")
    elif steps is not None:
        session.trainer.run_state.history_freq = steps
        session.output(f"Monitoring every {steps} steps")
    return False


OPTIMIZER_SETTINGS: dict[str, tuple[str, str, float, float]] = {
    "setlr": ("lr", "learning rate", 0.0, math.inf),
    "setmom": ("momentum", "momentum", 0.0, 1.0),
}
"""Command → (optimiser attribute, its name for messages, allowed range [low, high))."""


def _set_optimizer_value(session: Session, args: list[str], command: str) -> bool:
    """``setlr``/``setmom``: set the optimiser's value if the optimiser has one, within range."""
    attribute, label, low, high = OPTIMIZER_SETTINGS[command]
    trainer = session.trainer
    current = trainer.optimizer.lr if attribute == "lr" else trainer.optimizer.momentum
    if current is None:
        session.output(f"The {trainer.run_state.optimizer} optimiser has no {label}.")
        return False
    value = _number(session, args, float, f"{command} <float>")
    if value is not None and not low <= value < high:
        session.output(f"The {label} must lie in [{low}, {high}), not {value}.")
    elif value is not None:
        (trainer.set_lr if attribute == "lr" else trainer.set_momentum)(value)
        session.output(f"{label.capitalize()} set to {value}")
    return False


def _params(session: Session, args: list[str]) -> bool:
    session.output(parameter_report(session.trainer.cnn))
    session.output(f"Progress: {session.trainer.progress()}, {session.trainer.best_text()}")
    return False


def parameter_report(model: torch.nn.Module) -> str:
    """Shape, mean |w|, std and median |w| of every parameter tensor, and the total count."""
    lines = [f"{'parameter':<32}{'shape':<22}{'mean|w|':>11}{'std':>11}{'median|w|':>11}"]
    for name, p in model.named_parameters():
        w = p.detach().cpu().double().numpy()
        a = np.abs(w)
        lines.append(
            f"{name:<32}{str(w.shape):<22}{a.mean():>11.3e}{w.std():>11.3e}{np.median(a):>11.3e}"
        )
    total = sum(p.numel() for p in model.parameters())
    lines.append(f"Total count of trainable parameters: {total:,}")
    return "\n".join(lines)


def _switch(session: Session, args: list[str], name: str) -> bool:
    session.trainer.switch_optimizer(name)
    session.output(f"Changing training optimizer to {name}")
    return False


Command = Callable[[Session, list[str]], bool]
COMMANDS: dict[str, Command] = {
    "q": _leave,
    "abort": _abort,
    "kill": _kill,
    "help": _help,
    "save": _save,
    "load": _load,
    "sf": _show_filters,
    "smooth": _smooth,
    "sethist": _sethist,
    **{name: functools.partial(_set_optimizer_value, command=name) for name in OPTIMIZER_SETTINGS},
    "params": _params,
    **{name: functools.partial(_switch, name=name) for name in OPTIMIZERS},
}


# -- free input -----------------------------------------------------------------------------


def namespace(trainer: Trainer) -> dict[str, Any]:
    """The names free input can use (those of the original's ``run()`` scope that exist here)."""
    return {
        "self": trainer,
        "trainer": trainer,
        "cnn": trainer.cnn,
        "data": trainer.data,
        "config": trainer.config,
        "run": trainer.run_state,
        "batches": trainer.batches,
        "batch": trainer.batch,
        "batch_kwargs": trainer.batches.batch_kwargs,
        "i": trainer.step,
        "np": np,
        "torch": torch,
        "exit": _leave_hint,
        "quit": _leave_hint,
    }


def _leave_hint(*args: Any) -> None:
    """``exit()``/``quit()`` would close standard input and end the run: explain instead."""
    print("Type 'q' to continue training, 'abort' to stop and save, 'kill' to stop without saving.")


def evaluate(session: Session, text: str) -> None:
    """Print the value of a bare expression; execute anything with ``(`` or ``=``, or a statement.

    As in the original, a call is executed, not printed (``print(...)`` shows its value), so
    ``self.debugGetCNNBatch()`` does not flood the terminal with arrays.
    """
    if "(" not in text and "=" not in text:
        try:
            code = compile(text, "<console>", "eval")
        except SyntaxError:
            pass
        else:
            session.output(str(eval(code, session.namespace)))
            return
    exec(compile(text, "<console>", "exec"), session.namespace)


def handle(session: Session, text: str) -> bool:
    """Run one line of input; True when the console should close. Never raises for user errors."""
    words = text.split()
    if not words:
        return False
    assignment = len(words) > 1 and words[1].startswith("=")  # e.g. 'params = ...' is Python
    command = None if assignment else COMMANDS.get(words[0])
    try:
        if command is not None:
            return command(session, words[1:])
        evaluate(session, text.strip())
    except SystemExit:
        session.output("Use 'abort' (saving) or 'kill' (no saving) to end the training.")
    except (Exception, KeyboardInterrupt) as exc:
        session.output(f"{type(exc).__name__}: {exc}")
    return False


@contextlib.contextmanager
def interruptible() -> Iterator[None]:
    """Let Ctrl+C raise KeyboardInterrupt while the console is open.

    The trainer's handler only flags a request for the console; at the prompt Ctrl+C should
    instead cancel the current line or a long-running command, and must not reopen the
    console after ``q``.
    """
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)


def read_line(input_fn: Callable[[str], str], prompt: str, output: Output) -> str:
    """One line of input; Ctrl+D (EOF) means ``q``, Ctrl+C an empty line.

    The line typed goes into the run's log (the terminal echoes it, so no stream sees it),
    after the prompt unless that is in the log already (:func:`prompt_reaches_the_log`).
    """
    try:
        line = input_fn(prompt)
    except EOFError:
        output("")
        return "q"
    except KeyboardInterrupt:
        output("\n(Ctrl+C: type 'q' to continue, 'abort' or 'kill' to stop)")
        return ""
    RUN_LOG.write(f"{'' if prompt_reaches_the_log(input_fn) else prompt}{line}\n")
    return line


def prompt_reaches_the_log(input_fn: Callable[[str], str]) -> bool:
    """Whether ``input_fn`` writes its prompt through ``sys.stdout``, which copies it into the
    run's log: Python's ``input`` does so unless stdin and stdout are both terminals (then
    readline draws the prompt), e.g. under ``elektronn-train CONFIG | tee out.txt``."""
    return input_fn is input and not (sys.stdin.isatty() and sys.stdout.isatty())


def prompt() -> str:
    """``<unix user>@ELEKTRONN: ``."""
    try:
        user = getpass.getuser()
    except (KeyError, OSError):  # no user name, e.g. an anonymous uid in a container
        user = "user"
    return f"{user}@ELEKTRONN: "


# -- background workers ---------------------------------------------------------------------


def snapshot(trainer: Trainer) -> Settings:
    """Copies of the settings that shape training batches, to see what the console changed."""
    kwargs = copy.deepcopy(trainer.batches.batch_kwargs)
    return Settings(kwargs, trainer.data.batch_settings())


def _differs(a: Any, b: Any) -> bool:
    try:
        return bool(a != b)
    except (TypeError, ValueError):  # e.g. arrays: assume changed, sending again is harmless
        return True


def changes(before: Settings, after: Settings) -> dict[str, Any]:
    """Settings changed from ``before`` to ``after`` (getbatch arguments win name clashes)."""
    removed = before.kwargs.keys() - after.kwargs.keys()
    if removed:
        raise ValueError(f"getbatch arguments {sorted(removed)} were removed; set them instead.")
    changed: dict[str, Any] = {}
    missing = object()
    for old, new in ((before.attributes, after.attributes), (before.kwargs, after.kwargs)):
        changed.update({k: v for k, v in new.items() if _differs(old.get(k, missing), v)})
    return changed


def restore(trainer: Trainer, before: Settings) -> None:
    """Undo the console's changes of batch settings (when the batch source refused them)."""
    trainer.batches.batch_kwargs.clear()
    trainer.batches.batch_kwargs.update(before.kwargs)
    trainer.data.apply_settings(before.attributes)


def propagate_changes(trainer: Trainer, before: Settings, output: Output) -> None:
    """Send changed data attributes and getbatch arguments to the batch source.

    The workers hold their own copies of the data object and of the arguments; without this,
    ``data.warp_on = False`` would only affect monitor batches (the original's bug, reference
    §3.9). Batches made under the old settings are discarded, so the next training batch
    already uses the new ones. Settings the workers refuse are undone, with a message, so
    the main process and the workers never disagree.
    """
    try:
        changed = changes(before, snapshot(trainer))
        if changed:
            changed = checked_changes(trainer, before, changed, output)
            try_one_batch(trainer, changed)
            trainer.batches.update(**changed)
            output(f"Training batches from now on use {changed}")
    except Exception as exc:
        restore(trainer, before)
        output(f"The changed batch settings were undone: {exc}")


def checked_changes(
    trainer: Trainer, before: Settings, changed: dict[str, Any], output: Output
) -> dict[str, Any]:
    """Refuse attributes the data object did not have; a new one that is a getbatch argument
    (``data.warp_on = False`` for image data) becomes that argument, as the user meant.

    Raises
    ------
    ValueError
        Naming the attribute and listing the settable names.
    """
    data = trainer.data
    for name in data.batch_settings().keys() - before.attributes.keys():
        delattr(data, name)
        if not data.accepts(name):
            raise ValueError(
                f"the data object has no setting '{name}'; its settable attributes are "
                f"{', '.join(sorted(before.attributes))}, the batch settings "
                f"{', '.join(sorted(before.kwargs))} (batch_kwargs[...])"
            )
        output(f"data.{name} is a batch setting: applied as batch_kwargs[{name!r}]")
    return changed


def try_one_batch(trainer: Trainer, changed: dict[str, Any]) -> None:
    """Make one batch with the new settings in this process, so a bad value is refused before
    the console says it is applied (and before any worker could fail on it)."""
    kwargs = {k: v for k, v in changed.items() if trainer.data.accepts(k)}
    trainer.data.getbatch(**{**trainer.batches.batch_kwargs, **kwargs})


def sync_warp_counters(trainer: Trainer) -> None:
    """Show the workers' warp counts in ``data.n_failed_warp`` etc. (summed over workers).

    Warping happens in the workers, so the main process's own counters would stay near 0.
    """
    trainer.data.n_successful_warp = trainer.batches.n_successful_warp
    trainer.data.n_failed_warp = trainer.batches.n_failed_warp


# -- helpers attached to the trainer --------------------------------------------------------


def report_test(
    trainer: Trainer, source: str = "valid", output: Output = print, whole: bool = False
) -> tuple[float, float]:
    """Loss and error on one monitor batch of ``source`` ('train', 'valid', 'test'), printed.

    The console's ``self.testModel('test')``: the value is printed because a call typed at
    the prompt is executed, not echoed. Attach it to the trainer as ``testModel``.
    ``whole=True`` walks every example of the split once (data classes with ``iter_split``).
    """
    if not trainer.data.has_source(source):
        output(f"The data has no '{source}' examples.")
        return math.nan, math.nan
    if whole:
        return report_whole_split(trainer, source, output)
    loss, error = trainer.test_model(source)
    unit = "" if trainer.regression else " %"
    output(
        f"{source}: loss={loss:.5f}, error={error:.3f}{unit} "
        f"(one monitor batch of {trainer.config.monitor_batch_size} examples)"
    )
    return loss, error


def report_whole_split(trainer: Trainer, source: str, output: Output) -> tuple[float, float]:
    """``testModel(source, whole=True)``: the same numbers as ``elektronn-evaluate --split``."""
    from ..evaluate.split import BATCH_SIZE, split_scores

    batches = trainer.data.iter_split(source, BATCH_SIZE)
    scores = split_scores(
        trainer.cnn, batches, trainer.config.target, lambda x: trainer.forward(trainer.cnn, x)
    )
    error = scores.get("error", scores.get("rmse"))
    unit = "" if trainer.regression else " %"
    output(
        f"{source}: loss={scores['loss']:.5f}, error={error:.3f}{unit} "
        f"(whole split, {scores['n_examples']} examples)"
    )
    return scores["loss"], error


CONSOLE_METHODS = {"debugGetCNNBatch": introspection.debug_get_cnn_batch, "testModel": report_test}
"""The original's console methods, reached as ``self.<name>()`` at the prompt."""


def attach_helpers(trainer: Trainer) -> None:
    """Give the trainer the original's console methods (``self.testModel('test')``)."""
    for name, function in CONSOLE_METHODS.items():
        setattr(trainer, name, functools.partial(function, trainer))


# -- the console ----------------------------------------------------------------------------


def run_console(
    trainer: Trainer, input_fn: Callable[[str], str] = input, output: Output = print
) -> None:
    """Show the status and the menu, then run commands until ``q``, ``abort`` or ``kill``.

    Parameters
    ----------
    trainer
        The paused trainer. ``abort`` sets ``trainer.stop_reason`` (the trainer then saves
        ``_end.param`` and plots), ``kill`` sets ``trainer.killed`` (exit without saving).
    input_fn, output
        Where lines come from and where text goes (tests pass fakes).

    On leaving with ``q`` (or Ctrl+D), changed batch settings are sent to the background
    workers, so they apply from the next training batch on.
    """
    attach_helpers(trainer)
    sync_warp_counters(trainer)
    before = snapshot(trainer)
    session = Session(trainer, output, namespace(trainer))
    output(status_line(trainer))
    output(menu(trainer.config.save_name))
    if input_fn is input and sys.stdin is not None and sys.stdin.isatty():
        import readline  # noqa: F401  (line editing and history for input())
    with interruptible():
        while not handle(session, read_line(input_fn, prompt(), output)):
            pass
    if trainer.stop_reason is None and not trainer.killed:
        propagate_changes(trainer, before, output)
