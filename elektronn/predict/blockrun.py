"""``elektronn-predict`` with an OME-Zarr OUTPUT: blockwise, resumable, optionally on Dask.

Without ``--workers`` / ``--scheduler`` the blocks run one after the other in this process
(Dask is not imported); with them, on a Dask cluster (:mod:`.cluster`). Either way a rerun
of the same command computes only the blocks not yet recorded as done.
"""

from __future__ import annotations

import argparse
import shutil
import time
from pathlib import Path

import torch

from .blockwise import (
    BlockGrid,
    BlockJob,
    block_shape,
    check_block_option,
    describe_failures,
    missing_blocks,
    run_in_process,
)
from .dense import DEFAULT_BUDGET, SLICE_AXIS, default_tile, make_layout, widest_layer
from .errors import PredictionError
from .geometry import AxisGeometry, net_geometry
from .progress import BlockProgress
from .stores import (
    InputSource,
    OutputPlan,
    OutputStore,
    create_output_store,
    open_output_store,
    write_pyramid,
)

#: z slices per block for a 2D net on a stack (each slice is predicted on its own).
STACK_BLOCK_Z = 8


def check_cluster_options(args: argparse.Namespace) -> None:
    """``--workers`` / ``--scheduler`` are exclusive and need a ``.zarr`` OUTPUT."""
    if args.workers is not None and args.workers < 1:
        raise PredictionError(
            f"--workers {args.workers}: give the number of Dask worker processes to start "
            f"on this machine, at least 1 (one per GPU or CPU core), or leave it out to "
            f"predict in this process."
        )
    if args.workers is not None and args.scheduler is not None:
        raise PredictionError(
            "--workers starts a cluster on this machine and --scheduler uses an existing one; "
            "give one of them."
        )
    if (args.workers or args.scheduler) and Path(args.output).suffix != ".zarr":
        raise PredictionError(
            f"--workers / --scheduler write an OME-Zarr image that many processes can fill "
            f"at once, but OUTPUT '{args.output}' does not end in .zarr (an h5 file cannot "
            f"be written by several processes). Name the output OUTPUT.zarr."
        )


def user_axes(model: torch.nn.Module, raw_shape: tuple[int, ...],
              pad: bool) -> tuple[tuple[AxisGeometry, ...], tuple[int, ...]]:  # fmt: skip
    """Geometry and output frame per spatial axis in user order (x, y[, z]).

    Refuses an input smaller than the field of view (without ``--pad``), like the
    single-process path, through :func:`.dense.make_layout`.
    """
    layout = make_layout(net_geometry(model), raw_shape, "xyz", pad)
    axes = [SLICE_AXIS] * len(layout.perm)
    for i, p in enumerate(layout.perm):
        axes[p] = layout.axes[i]
    return tuple(axes), layout.storage_out_shape[1:]


def parse_voxel_size(text: str | None, source: InputSource) -> tuple[float, ...]:
    """``--voxel-size X,Y[,Z]``, else the input's OME metadata (1 without)."""
    if text is None:
        return source.voxel_size
    n = len(source.voxel_size)
    try:
        size = tuple(float(v) for v in text.split(","))
    except ValueError:
        size = ()
    if len(size) != n or min(size) <= 0:
        raise PredictionError(
            f"--voxel-size {text!r} must be {n} positive numbers ({'X,Y,Z' if n == 3 else 'X,Y'}"
            f", user order): the input's voxel size, written as the OME-Zarr output's scale."
        )
    return size


def default_block(axes: tuple[AxisGeometry, ...], tile: tuple[int, ...]) -> tuple[int, ...]:
    """One tile's output per block (each block one forward pass); 8 slices of a stack."""
    return tuple(STACK_BLOCK_Z if g is SLICE_AXIS else g.output_size(t) for g, t in
                 zip(axes, tile, strict=True))  # fmt: skip


def default_user_tile(model: torch.nn.Module, axes: tuple[AxisGeometry, ...],
                      out_shape: tuple[int, ...]) -> tuple[int, ...]:  # fmt: skip
    """The default tile of :func:`.dense.predict_dense` for this frame, in user order."""
    frame_in = tuple(g.input_size(n) for g, n in zip(axes, out_shape, strict=True))
    return default_tile(axes, frame_in, DEFAULT_BUDGET // widest_layer(model))


def make_plan(args: argparse.Namespace, source: InputSource, model: torch.nn.Module,
              tile: tuple[int, ...] | None, offset: tuple[int, ...],
              param_file: Path) -> tuple[OutputPlan, BlockGrid, tuple[int, ...]]:  # fmt: skip
    """The output image, its block grid and the tile (default when None) for this command."""
    raw_shape = source.open().shape
    axes, out_shape = user_axes(model, raw_shape, args.pad)
    tile = tile or default_user_tile(model, axes, out_shape)
    wanted = check_block_option(args.block, len(out_shape)) or default_block(axes, tile)
    grid = BlockGrid(out_shape, block_shape(axes, out_shape, wanted), axes, args.pad)
    voxel = parse_voxel_size(args.voxel_size, source)
    translation = tuple(t + o * v for t, o, v in zip(source.translation, offset, voxel))
    settings = dict(model=str(param_file.resolve()), level=args.level, pad=bool(args.pad),
                    input=f"{Path(source.path).resolve()}:{source.key or ''}",
                    method=args.method, precision=args.precision)  # fmt: skip
    n_lab = net_geometry(model).n_lab
    plan = OutputPlan((n_lab, *out_shape), args.dtype, (n_lab, *grid.block), grid.shape, voxel,
                      translation, settings)  # fmt: skip
    return plan, grid, tile


def output_store(args: argparse.Namespace, plan: OutputPlan, source: InputSource) -> OutputStore:
    """A new store, or the existing one to resume (``--overwrite`` replaces it)."""
    path = Path(args.output).expanduser()
    if path.resolve() == Path(source.path).resolve():
        raise PredictionError(f"OUTPUT '{path}' is the input store itself; choose a new OUTPUT.")
    if path.exists() and args.overwrite:
        shutil.rmtree(path)
    if path.exists():
        return open_output_store(path, plan)
    return create_output_store(path, plan)


def run_blockwise(args: argparse.Namespace, model: torch.nn.Module, target: str,
                  param_file: Path, standardisation: tuple[float, float] | None,
                  source: InputSource, tile: tuple[int, ...] | None,
                  offset: tuple[int, ...]) -> None:  # fmt: skip
    """Predict the missing blocks of OUTPUT.zarr, then print the summary."""
    plan, grid, tile = make_plan(args, source, model, tile, offset, param_file)
    store = output_store(args, plan, source)
    device = next(model.parameters()).device
    cluster = args.workers is not None or args.scheduler is not None
    job = BlockJob(
        str(param_file), source, store, grid, args.dtype, args.method, args.precision, target,
        standardisation, tile, ("worker" if device.type == "cuda" else "cpu") if cluster
        else str(device), None,
    )  # fmt: skip
    blocks = missing_blocks(job)
    if not blocks:
        print(f"OUTPUT '{args.output}' is complete ({grid.n_blocks} blocks done); nothing to do "
              f"(use --overwrite to predict it again).")  # fmt: skip
        return
    progress = BlockProgress(grid.n_blocks, grid.n_blocks - len(blocks))
    start = time.perf_counter()
    if cluster:
        failures = run_cluster(args, job, blocks, progress)
    else:
        failures = run_in_process(job, blocks, progress)
    if failures:
        raise PredictionError(describe_failures(failures, args.output, len(missing_blocks(job))))
    if args.pyramid:
        write_pyramid(store, plan, args.pyramid)
    report(args.output, plan, grid, len(blocks), offset, time.perf_counter() - start)


def run_cluster(args: argparse.Namespace, job: BlockJob, blocks: list, progress: BlockProgress):
    """The blocks on Dask: a LocalCluster of ``--workers``, or ``--scheduler``'s cluster."""
    from dataclasses import replace

    from .cluster import dask_client, run_on_dask, torch_threads

    if args.workers is not None:
        job = replace(job, threads=torch_threads(args.workers))
    with dask_client(args.workers, args.scheduler) as client:
        return run_on_dask(job, blocks, client, progress)


def report(output: str, plan: OutputPlan, grid: BlockGrid, computed: int,
           offset: tuple[int, ...], seconds: float) -> None:  # fmt: skip
    """The summary: path, shape, offset, voxel size, what this run computed."""
    voxels = sum(grid.voxels(i) for i in grid) * computed / grid.n_blocks
    names = "c," + ",".join("xyz"[: len(offset)])
    print(
        f"Wrote OME-Zarr '{output}' (array '0', stored as ({','.join(plan.axes)})): shape "
        f"{plan.shape} ({names}), {plan.dtype}, offset {offset} voxels, voxel size "
        f"{plan.voxel_size}, translation {plan.translation}; {computed} of {grid.n_blocks} "
        f"blocks computed in {seconds:.1f} s ({voxels / seconds / 1e6:.3f} Mvox/s)."
    )
