"""Prediction into an OME-Zarr OUTPUT: blockwise, resumable, optionally on Dask.

The blocks are a :class:`~elektronn.blockwise.Task` of :class:`.blockwise.PredictBlock`:
without workers or a scheduler they run one after the other in this process (Dask is not
imported, and the model already built here is used); with them, on a Dask cluster. Either way
a rerun of the same prediction computes only the blocks not yet recorded as done.
"""

from __future__ import annotations

import math
import shutil
import time
from dataclasses import dataclass, replace
from pathlib import Path

from ..axes import CHANNEL, internal_axes, reorder, user_axes
from ..blockwise import Task, run_task, worker_threads
from .blockwise import (
    BlockJob,
    PredictBlock,
    ValidRegion,
    block_shape,
    check_block,
    keep_model,
)
from .dense import DEFAULT_BUDGET, SLICE_AXIS, build_layout, default_tile, widest_layer
from .errors import PredictionError
from .geometry import AxisGeometry, net_geometry
from .settings import PredictSettings, TrainedNet
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


def user_geometry(
    trained: TrainedNet, raw_shape: tuple[int, ...], pad: bool
) -> tuple[AxisGeometry, ...]:
    """Geometry per spatial axis in user order (x, y[, z]) of a raw volume ``(c, x, y[, z])``.

    Refuses an input smaller than the field of view (without ``pad``), like the
    single-process path, through :func:`.dense.build_layout`.
    """
    n = len(raw_shape) - 1
    layout = build_layout(net_geometry(trained.net), raw_shape, CHANNEL + user_axes(n), pad)
    return reorder(layout.axes, internal_axes(n), user_axes(n))


def default_block(axes: tuple[AxisGeometry, ...], tile: tuple[int, ...]) -> tuple[int, ...]:
    """One tile's output per block (each block one forward pass); 8 slices of a stack."""
    return tuple(
        STACK_BLOCK_Z if g is SLICE_AXIS else g.output_size(t)
        for g, t in zip(axes, tile, strict=True)
    )


def default_user_tile(trained: TrainedNet, region: ValidRegion) -> tuple[int, ...]:
    """The default tile of :func:`.dense.predict_dense` for the valid region, user order."""
    frame_in = tuple(g.input_size(n) for g, n in zip(region.axes, region.size, strict=True))
    return default_tile(region.axes, frame_in, DEFAULT_BUDGET // widest_layer(trained.net))


@dataclass(frozen=True)
class BlockwisePlan:
    """The output image, the valid region, the block shape and the tile of one prediction."""

    image: OutputPlan
    region: ValidRegion
    block: tuple[int, ...]
    tile: tuple[int, ...]


def build_plan(
    trained: TrainedNet,
    source: InputSource,
    settings: PredictSettings,
    tile: tuple[int, ...] | None,
) -> BlockwisePlan:
    """What this prediction writes, and in which blocks."""
    raw_shape = source.open().shape
    axes = user_geometry(trained, raw_shape, settings.pad)
    region = ValidRegion(axes, raw_shape[1:], settings.pad)
    tile = tile or default_user_tile(trained, region)
    wanted = check_block(settings.block, len(axes)) if settings.block else default_block(axes, tile)
    block = block_shape(axes, region.shape, wanted)
    voxel = checked_voxel_size(settings.voxel_size, source)
    record = dict(
        model=str(trained.param_file.resolve()),
        level=settings.level,
        pad=settings.pad,
        input=f"{Path(source.path).resolve()}:{source.key or ''}",
        method=settings.method,
        precision=settings.precision,
        valid_offset=list(region.offset),
        valid_shape=list(region.size),
        **trained.output_attributes(len(region.shape)),
    )
    n_lab = trained.channels
    units = (settings.unit,) * len(voxel) if settings.unit else source.units
    image = OutputPlan(
        (n_lab, *region.shape),
        settings.dtype,
        (n_lab, *block),
        voxel,
        source.translation,
        units,
        trained.channel_names(len(region.shape)),
        record,
    )
    return BlockwisePlan(image, region, block, tile)


def checked_voxel_size(voxel: tuple[float, ...] | None, source: InputSource) -> tuple[float, ...]:
    """``--voxel-size`` (one per spatial axis of the input), else the input's metadata."""
    if voxel is None:
        return source.voxel_size
    n = len(source.voxel_size)
    if len(voxel) != n:
        raise PredictionError(
            f"--voxel-size {','.join(map(str, voxel))} must be {n} positive numbers "
            f"({'X,Y,Z' if n == 3 else 'X,Y'}, user order): the input's voxel size, written as "
            f"the OME-Zarr output's scale."
        )
    return voxel


def output_store(
    output: Path, plan: OutputPlan, source: InputSource, overwrite: bool
) -> OutputStore:
    """A new store, or the existing one to resume (``overwrite`` replaces it)."""
    if output.resolve() == Path(source.path).resolve():
        raise PredictionError(f"OUTPUT '{output}' is the input store itself; choose a new OUTPUT.")
    if output.exists() and overwrite:
        shutil.rmtree(output)
    if output.exists():
        return open_output_store(output, plan)
    return create_output_store(output, plan)


def predict_blockwise(
    trained: TrainedNet,
    source: InputSource,
    output: Path,
    settings: PredictSettings,
    tile: tuple[int, ...] | None,
) -> str:
    """Predict the missing blocks of ``output`` (an OME-Zarr image); returns the summary."""
    plan = build_plan(trained, source, settings, tile)
    store = output_store(output, plan.image, source, settings.overwrite)
    device = next(trained.net.parameters()).device
    cluster = settings.workers is not None or settings.scheduler is not None
    job = BlockJob(
        str(trained.param_file),
        source,
        store,
        plan.region,
        settings.dtype,
        settings.method,
        settings.precision,
        trained.target,
        trained.standardisation,
        plan.tile,
        ("worker" if device.type == "cuda" else "cpu") if cluster else str(device),
        trained.channels,
    )
    if settings.workers is not None:
        job = replace(job, threads=worker_threads(settings.workers))
    if not cluster:
        keep_model(job, trained.net)
    task = Task(
        "prediction",
        plan.region.shape,
        plan.block,
        PredictBlock(job),
        done=store.done,
        axes=user_axes(len(plan.block)),
    )
    start = time.perf_counter()
    computed = run_task(
        task, workers=settings.workers, scheduler=settings.scheduler, progress=settings.progress
    )
    if not computed:
        return (
            f"OUTPUT '{output}' is complete ({task.n_blocks} blocks done); nothing to do "
            f"(use --overwrite to predict it again)."
        )
    if settings.pyramid:
        write_pyramid(store, plan.image, settings.pyramid)
    return summary(output, plan, computed, task.n_blocks, time.perf_counter() - start)


def summary(output: Path, plan: BlockwisePlan, computed: int, n_blocks: int, seconds: float) -> str:
    """Path, shape, valid region, voxel size, what this run computed."""
    image, region = plan.image, plan.region
    voxels = math.prod(region.size) * computed / n_blocks
    names = ",".join(CHANNEL + user_axes(len(region.shape)))
    return (
        f"Wrote OME-Zarr '{output}' (array '0', stored as ({','.join(image.axes)})): shape "
        f"{image.shape} ({names}) on the input's grid, {image.dtype}; the net predicted the "
        f"region at {region.offset}, size {region.size} (the border is 0); voxel size "
        f"{image.voxel_size}, translation {image.translation}; {computed} of {n_blocks} "
        f"blocks computed in "
        f"{seconds:.1f} s ({voxels / seconds / 1e6:.3f} Mvox/s)."
    )
