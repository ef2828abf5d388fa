"""Command-line entry points: ``elektronn-train``."""

from __future__ import annotations

import argparse
import os
import sys
import traceback
import warnings
from pathlib import Path

from ..commands import command_parser
from ..config import Config, ConfigError, load_config, missing_warning
from ..errors import UserError

EXAMPLES_DIR = Path(__file__).resolve().parents[1] / "examples"


def shipped_examples() -> list[str]:
    """Names of the example configs that ship with the package."""
    return sorted(p.name for p in EXAMPLES_DIR.glob("*.py") if not p.name.startswith("_"))


def resolve_config_path(name: str) -> Path:
    """A config path as given, or else the shipped example of that name (with or without .py)."""
    path = Path(name).expanduser()
    if path.is_file():
        return path
    for candidate in (EXAMPLES_DIR / name, EXAMPLES_DIR / f"{name}.py"):
        if candidate.is_file():
            return candidate
    raise ConfigError(
        f"Config file '{name}' does not exist, and it is not one of the shipped examples "
        f"({', '.join(shipped_examples())})."
    )


def train_parser() -> argparse.ArgumentParser:
    parser = command_parser(
        prog="elektronn-train",
        allow_abbrev=False,  # --nproc is taken out of the command line by its exact name
        description="Train a CNN as described by a config file.",
    )
    parser.add_argument(
        "config", nargs="?", help="training config file, or the name of a shipped example"
    )
    parser.add_argument(
        "--resume",
        metavar="SAVE_DIR",
        help="continue a stopped or crashed run from its save directory (or a .param file)",
    )
    parser.add_argument(
        "--gpu",
        default=None,
        help="auto (free GPU with most memory), false (CPU) or a CUDA device number; "
        "default: the 'device' option",
    )
    parser.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="NAME=VALUE",
        help="override an option, e.g. --set n_steps=100 --set 'SGD_params=dict(LR=0.01)'",
    )
    parser.add_argument(
        "--nproc",
        type=int,
        default=1,
        metavar="N",
        help="train data-parallel on N processes of this machine (GPUs, or CPU cores with "
        "--gpu=false); batch_size is per process",
    )
    parser.add_argument(
        "--new-config",
        metavar="FILE",
        help="write a short, commented starting config to FILE (mode, data, network, steps) "
        "and stop",
    )
    parser.add_argument(
        "--dry-run",
        action="store_true",
        help="print the architecture, data shapes and RAM estimate, then stop",
    )
    return parser


def print_startup(config: Config) -> None:
    """The architecture summary printed before anything is written."""
    print(f"Reading config-file {config.config_file}")
    warning = missing_warning(config)
    if warning:
        print(warning)
    if config.arch is not None:
        for message in config.arch.messages:
            print(message)


def dry_run_device(gpu: str | bool | int, config: Config) -> str:
    """The device training would use, refused now as the real start would refuse it (a CUDA
    device number without CUDA, bf16 on a GPU without it)."""
    from ..device import check_precision, parse_gpu, select_device

    device = select_device(parse_gpu(gpu))
    check_precision(config.precision, device)
    return str(device)


def report_stopped(stop: Exception) -> int:
    """Print why a started training ended early (``stop``'s message); returns the exit code.

    Bad input found during training (e.g. by a data class) and failed saves (a full disk)
    are one paragraph, like bad input before training; an interrupt is no error; anything
    else is a bug somewhere, so its traceback comes first and the last line still says where
    the parameters are.
    """
    from .trainer import SaveFailed

    cause = stop.__cause__
    if isinstance(cause, KeyboardInterrupt):
        print(f"elektronn-train: interrupted: {stop}", file=sys.stderr)
        return 130
    if not isinstance(cause, (UserError, SaveFailed)):
        traceback.print_exception(type(cause), cause, cause.__traceback__)
    print(f"elektronn-train: error: {stop}", file=sys.stderr)
    return 2 if isinstance(cause, UserError) else 1


def one_line_warning(message, category, filename, lineno, line=None) -> str:
    """Warnings as a user reads them: ``WARNING: ...``, without source file and line."""
    return f"WARNING: {message}\n"


def train_main(argv: list[str] | None = None) -> int:
    """``elektronn-train CONFIG [--gpu=...] [--set NAME=VALUE]... [--dry-run]``."""
    argv = sys.argv[1:] if argv is None else argv
    args = train_parser().parse_args(argv)
    if args.nproc < 1:
        train_parser().error(f"--nproc must be a number of processes >= 1, not {args.nproc}")
    if args.nproc > 1 and "RANK" not in os.environ and not args.dry_run:
        from .distributed import launch_on_this_machine

        return launch_on_this_machine(argv, args.nproc)
    from ..streams import RUN_LOG, survive_broken_pipes
    from .distributed import ranks_from_env, silence_other_ranks

    silence_other_ranks()
    # `elektronn-train cfg.py | tee log` and Ctrl+C: tee ends, we don't; rank 0 keeps the log
    survive_broken_pipes(RUN_LOG if ranks_from_env().is_main else None)
    warnings.formatwarning = one_line_warning
    from .trainer import TrainingStopped

    try:
        from .run import dry_run, run_training

        if args.new_config:
            from .newconfig import write_new_config

            path = write_new_config(args.new_config)
            print(
                f"Wrote {path}: fill in your data files, then 'elektronn-train {path} --dry-run'."
            )
            return 0
        if args.resume:
            from ..net.paramfile import load_params
            from .resume import config_from_checkpoint, find_checkpoint

            path = find_checkpoint(args.resume)
            checkpoint = load_params(path)
            config = config_from_checkpoint(checkpoint, path, args.set)
            print(f"Resuming from {path} at step {checkpoint['extra']['step']}")
        elif args.config:
            config = load_config(resolve_config_path(args.config), args.set)
            checkpoint = None
        else:
            raise ConfigError(
                "Give a config file (or a shipped example's name), or --resume SAVE_DIR."
            )
        print_startup(config)
        gpu = args.gpu if args.gpu is not None else config.device
        if args.dry_run:
            print(f"Device: {dry_run_device(gpu, config)}")
            dry_run(config)
            return 0
        return run_training(config, gpu, checkpoint)
    except UserError as exc:
        print(f"elektronn-train: error: {exc}", file=sys.stderr)
        return 2
    except TrainingStopped as stop:
        return report_stopped(stop)
    except KeyboardInterrupt:
        print(
            "elektronn-train: interrupted before training started; nothing saved.", file=sys.stderr
        )
        return 130
    finally:
        RUN_LOG.close()


if __name__ == "__main__":
    sys.exit(train_main())
