"""Putting a training run together: device, save directory, data, network, trainer.

The order follows the specification ("How it works"): the config is checked and the
architecture computed (done by the caller), the save directory is created, the data is read,
the network is built, and the loop runs. ``dry_run`` stops before anything is written.
"""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import psutil
import torch

from ..config import Config
from ..data.label_stats import check_training_labels, write_baseline
from ..data.source import DataSource
from ..device import check_precision, parse_gpu, select_device
from ..streams import RUN_LOG
from .distributed import (
    SINGLE_PROCESS,
    Ranks,
    data_seed,
    ranks_from_env,
    seed_of_rank_0,
    start_ranks,
    stop_ranks,
)
from .savedir import check_save_dir, enter_save_dir, prepare_save_dir
from .state import RunState

if TYPE_CHECKING:
    from .loggers import RunLogger
    from .trainer import Trainer


def uses_plugin_data(config: Config) -> bool:
    """vect-scalar always, image modes when a data class is named (e.g. MNIST in img-scalar)."""
    return config.mode == "vect-scalar" or config.data_class_name is not None


def print_architecture(config: Config, n_ch: int | None = None, n_lab: int | None = None) -> None:
    arch = config.arch
    if arch is None:
        print(f"vect-scalar MLP: layers {config.MLP_layers} + output")
        return
    for line in arch.summary_lines(
        n_ch or 1,
        config.nof_filters,
        config.MLP_layers,
        n_lab or config.n_lab or 2,
        config.batch_size,
    ):
        print(line)


def dry_run(config: Config) -> None:
    """Print the architecture, the data files' shapes and the RAM estimate; write nothing.

    The files are opened by training's readers (h5, zarr, OME-Zarr), and the architecture
    counts the images' channels, as the net training builds."""
    from ..data import preflight

    image_data = not uses_plugin_data(config)
    print_architecture(config, preflight.image_channels(config) if image_data else None)
    if image_data:
        print("Data files:")
        for line in preflight.describe_data_files(config):
            print(line)
    check_data(config)
    print("Dry run: stopping before the save directory is created.")


def check_data(config: Config) -> None:
    """What training would refuse about the data, without reading the volumes."""
    from ..data import preflight

    if uses_plugin_data(config):
        preflight.check_plugin(config)
    else:
        preflight.check_cubes(config)


def load_data(config: Config) -> tuple[DataSource, dict, dict]:
    """The data source and the keyword arguments of training and monitor batches.

    The training arguments include ``batch_size``: the batch source owns them.
    """
    if uses_plugin_data(config):
        from ..data.plugins import build_plugin_data

        data = build_plugin_data(config)
        train_kwargs = dict(config.data_batch_kwargs)
        monitor_kwargs = {"warp_on": False} if data.accepts("warp_on") else {}
    else:
        from ..data import ImageData, batch_kwargs_from_config

        data = ImageData.from_config(config)
        train_kwargs = batch_kwargs_from_config(config)
        monitor_kwargs = {k: v for k, v in train_kwargs.items() if k != "source"}
        monitor_kwargs["warp_on"] = False
    return data, {"batch_size": config.batch_size, **train_kwargs}, monitor_kwargs


def share_cores_with_workers(n_workers: int, ranks: Ranks) -> None:
    """Leave the batch workers (and the other ranks on this machine) their cores: torch's
    CPU threads slow down several-fold when they compete with other busy processes
    (measured: 2 threads beside one busy process ran at 70-85 it/s, 1 thread at 120-135 it/s
    on a 2-core machine)."""
    if n_workers or ranks.local_world_size > 1:
        cores = (os.cpu_count() or 1) // ranks.local_world_size
        torch.set_num_threads(max(1, cores - n_workers))


def seed_everything(config: Config, ranks: Ranks) -> int:
    """Seed torch (weights, dropout) with ``random_seed``, or a fresh seed that is printed
    (rank 0's, on every rank); the run state keeps it."""
    seed = config.random_seed
    if seed is None:
        seed = seed_of_rank_0(int(np.random.SeedSequence().generate_state(1)[0]), ranks)
    torch.manual_seed(seed)
    print(f"Random seed: {seed} (set random_seed = {seed} to repeat this run)")
    return seed


def seed_rank_streams(data, seed: int, ranks: Ranks, step: int) -> None:
    """Each rank's own data stream (its workers' streams derive from it) and dropout masks."""
    data.reseed(data_seed(seed, ranks, step))
    if ranks.rank:
        torch.manual_seed(int(np.random.SeedSequence([seed, ranks.rank]).generate_state(1)[0]))


def run_training(config: Config, gpu, checkpoint: dict | None = None) -> int:
    """The whole run, or its continuation from ``checkpoint``; returns the exit code.

    Everything that can refuse bad input (device, data, ``param_file``) runs before the save
    directory is created or entered, so a mistake in the config never touches the files of
    an earlier run of the same name.
    """
    ranks = ranks_from_env()
    device = select_device(parse_gpu(gpu))
    if device.type == "cpu":
        share_cores_with_workers(config.background_processes, ranks)
    device = start_ranks(ranks, device)
    from .speed import check_compile

    check_precision(config.precision, device)
    check_compile(config.torch_compile, device)
    try:
        trainer = build_trainer(config, device, checkpoint, ranks)
        try:
            announce_start()
            trainer.run()
        finally:
            trainer.close()
    finally:
        stop_ranks()
    return 0


def seconds_since_process_start() -> float:
    """How long this process has existed, as a user timing the command measures it.

    On Linux from the kernel's start tick of the process and the boot-time clock (10 ms
    steps). psutil's ``create_time`` adds that tick to the boot time, which the kernel gives in
    whole seconds, so it read up to a second late; it is the fallback elsewhere.
    """
    try:
        with open("/proc/self/stat", encoding="ascii") as stat:
            start_ticks = int(stat.read().rsplit(")", 1)[1].split()[19])
        return time.clock_gettime(time.CLOCK_BOOTTIME) - start_ticks / os.sysconf("SC_CLK_TCK")
    except (OSError, AttributeError, ValueError, IndexError):  # not Linux
        return time.time() - psutil.Process().create_time()


def announce_start() -> None:
    started = seconds_since_process_start()
    print(
        f"Starting training {started:.1f} s after the process started "
        f"(torch {torch.__version__}, {torch.get_num_threads()} threads)",
        flush=True,
    )


def build_trainer(
    config: Config,
    device=None,
    checkpoint: dict | None = None,
    ranks: Ranks = SINGLE_PROCESS,
) -> Trainer:
    """Everything a run needs, wired into a :class:`Trainer` that is ready to ``run()``.

    The one factory of the CLI, the tests and the benchmarks (built objects in, as
    torch-em's trainer factory): save directory, seed, data, batch source, net, preview and
    the console as the trainer's pause. ``checkpoint`` continues a saved run. The caller
    closes the trainer (its batch workers).
    """
    from ..data.background import BackgroundBatches
    from ..net.paramfile import load_params
    from .console import run_console
    from .trainer import Trainer

    device = torch.device("cpu") if device is None else device
    initial = None
    if checkpoint is None:
        if ranks.is_main:
            check_save_dir(config)
        initial = load_params(config.param_file) if config.param_file else None
    seed = seed_everything(config, ranks)
    data, batch_kwargs, monitor_kwargs = load_data(config)
    labels = check_training_labels(data, data.n_lab, config.target) if ranks.is_main else None
    model = build_net(config, data, device, checkpoint, initial)
    run = RunState.from_config(config, seed, data.n_lab)
    step = checkpoint["extra"]["step"] if checkpoint is not None else 0
    seed_rank_streams(data, seed, ranks, step)
    preview = build_preview(config, model.n_lab)
    save_dir = open_save_dir(config, run, ranks, resuming=checkpoint is not None)
    if labels is not None:
        write_baseline(save_dir / "Backup", config.save_name, labels)
    print(f"Save directory: {save_dir}  |  device: {device}{describe_ranks(ranks)}")
    loggers = build_run_loggers(config, save_dir, run, step) if ranks.is_main else []
    batches = BackgroundBatches(data, batch_kwargs, int(config.background_processes))
    try:
        trainer = Trainer(
            config,
            run,
            data,
            model,
            device,
            save_dir,
            batches,
            monitor_kwargs,
            preview,
            ranks,
            pause=run_console,
            loggers=loggers,
        )
        if checkpoint is not None:
            trainer.restore(checkpoint["extra"])
    except BaseException:
        batches.close()
        raise
    return trainer


def open_save_dir(config: Config, run: RunState, ranks: Ranks, resuming: bool) -> Path:
    """The save directory, created (or entered, resuming) by rank 0 only, which also starts
    writing the terminal output to ``<save_name>.log`` there (appended when resuming)."""
    if not ranks.is_main:
        return Path(config.save_dir)
    if resuming:
        save_dir = enter_save_dir(config)
    else:
        save_dir = prepare_save_dir(config, run.resolved(config))
    RUN_LOG.open(save_dir / f"{config.save_name}.log", append=resuming)
    return save_dir


def describe_ranks(ranks: Ranks) -> str:
    if not ranks.is_distributed:
        return ""
    return f"  |  {ranks.world_size} processes (DDP), batch_size per process"


def build_net(config: Config, data, device, resumed: dict | None, initial: dict | None):
    """The net for ``data``, with the weights of the ``resumed`` run (loaded strictly) or of
    the ``initial`` file of ``param_file`` (adaptively), else freshly initialised."""
    from ..net.model import build_model
    from ..net.paramfile import init_from_param_file, load_into_model

    n_ch, n_lab, example_shape = data.n_ch, data.n_lab, data.example_shape
    print_architecture(config, n_ch, n_lab)
    model = build_model(config, n_ch, n_lab, example_shape).to(device)
    spatial = config.arch.input_shape if config.arch is not None else ()
    model.input_shape = (config.batch_size, *((n_ch, *spatial) if spatial else example_shape))
    if resumed is not None:
        load_into_model(model, resumed["state_dict"], strict=True)
    elif initial is not None:
        report = init_from_param_file(model, initial, config.param_file)
        print(f"Initialised from {config.param_file}: {report}")
    n_params = sum(p.numel() for p in model.parameters())
    print(f"Total count of trainable parameters: {n_params:,}")
    return model


def build_run_loggers(
    config: Config, save_dir: Path, run: RunState, start_step: int = 0
) -> list[RunLogger]:
    """The run loggers of the ``loggers`` option whose packages are installed (rank 0's), in
    a child process that starts at the first value, so training never waits for them.

    ``start_step`` is the step a resumed run continues from. MLflow's parameters are the
    resolved configuration as it stands when the run's first value is logged (a resumed run
    has restored its state by then).
    """
    from .logger_process import LoggerProcess, LoggerSpec, usable_names

    names = usable_names(config.loggers)
    if not names:
        return []
    spec = LoggerSpec(names, Path(save_dir), config.save_name, start_step)
    return [LoggerProcess(spec, lambda: run.resolved(config))]


def build_preview(config: Config, n_lab: int):
    """Preview predictions of ``preview_data_path`` (img-img only), or None."""
    if config.mode != "img-img" or not config.preview_data_path:
        return None
    from .preview import Preview

    return Preview.from_config(config, n_lab)
