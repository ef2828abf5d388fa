"""Blockwise prediction into an OME-Zarr store: the prediction's use of :mod:`elektronn.blockwise`.

The output lies on the raw volume's grid (same shape and origin, so every viewer overlays it
on the raw data whatever it does with translations). The *valid region* is what the net
predicts: the whole volume with ``pad`` (the border seen mirrored), else the volume less the
net's offset at each side, the border keeping the fill value 0. The grid is cut into blocks
(one output chunk each); a block predicts its part of the valid region with
:func:`~.dense.predict_dense` from the input box it needs (mirrored at the volume's borders
with ``pad``), starting on the net's tiling lattice, so the blocks together equal a
single-process prediction.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from ..axes import CHANNEL, AxesView, user_axes
from ..blockwise import Block
from .dense import predict_dense
from .errors import PredictionError
from .geometry import AxisGeometry
from .stores import InputSource, OutputStore


@dataclass(frozen=True)
class ValidRegion:
    """Where the net's output lies on the raw grid, per spatial axis in user order.

    Attributes
    ----------
    axes
        Geometry per axis (a 2D net on a stack has FOV 1 along z).
    shape
        The raw volume's spatial shape.
    pad
        Whether the border is predicted from the mirrored volume (the region is everything).
    """

    axes: tuple[AxisGeometry, ...]
    shape: tuple[int, ...]
    pad: bool

    @property
    def offset(self) -> tuple[int, ...]:
        """The region's first voxel: 0 with ``pad``, else the net's offset."""
        return tuple(0 if self.pad else g.left for g in self.axes)

    @property
    def size(self) -> tuple[int, ...]:
        """The region's length per axis."""
        if self.pad:
            return self.shape
        return tuple(g.output_size(n) for g, n in zip(self.axes, self.shape, strict=True))

    def part(self, write: tuple[slice, ...]) -> tuple[slice, ...] | None:
        """The valid part of a write box, None when it has none."""
        part = tuple(
            slice(max(w.start, o), min(w.stop, o + n))
            for w, o, n in zip(write, self.offset, self.size, strict=True)
        )
        return part if all(s.start < s.stop for s in part) else None

    def input_box(self, part: tuple[slice, ...]) -> tuple[tuple[int, ...], tuple[int, ...]]:
        """First input voxel and input length per axis of a prediction that starts on the
        tiling lattice at or before ``part`` and ends with it (may reach past the volume
        with ``pad``: those voxels are mirrored, as the single-process run does)."""
        lows, sizes = [], []
        for s, o, g in zip(part, self.offset, self.axes, strict=True):
            start = o + g.lattice_floor(s.start - o)
            lows.append(start - g.left)
            sizes.append(g.input_size(s.stop - start))
        return tuple(lows), tuple(sizes)


@dataclass(frozen=True)
class BlockJob:
    """Everything a block needs, as paths and numbers (small, picklable, hashable).

    ``device`` is ``'cpu'``, ``'cuda:N'``, or ``'worker'``: the Dask worker's own GPU
    (worker ``i`` -> GPU ``i mod n``; CPU without CUDA). ``threads``: torch threads per
    process (None: torch's default).
    """

    param_file: str
    source: InputSource
    output: OutputStore
    region: ValidRegion
    dtype: str
    method: str
    precision: str
    target: str
    standardisation: tuple[float, float] | None
    tile: tuple[int, ...] | None
    device: str
    channels: int
    threads: int | None = None


@dataclass
class _State:
    """A process's open model and stores for one job."""

    model: torch.nn.Module
    raw: AxesView
    out: AxesView


_STATES: dict[BlockJob, _State] = {}


def keep_model(job: BlockJob, model: torch.nn.Module) -> None:
    """Let this process's blocks of ``job`` use ``model`` (already built) instead of
    reading the parameter file again."""
    _STATES.clear()
    _STATES[job] = _State(model, job.source.open(), job.output.level0())


def job_state(job: BlockJob) -> _State:
    """This process's model and stores for ``job``, opened on its first block."""
    if job not in _STATES:
        from ..net.paramfile import build_model_from_params

        if job.threads is not None:
            torch.set_num_threads(job.threads)
        keep_model(job, build_model_from_params(job.param_file).to(job_device(job.device)))
    return _STATES[job]


def job_device(device: str) -> torch.device:
    """The torch device of a task; ``'worker'`` picks the Dask worker's GPU by its number."""
    if device != "worker":
        return torch.device(device)
    if not torch.cuda.is_available():
        return torch.device("cpu")
    from dask.distributed import get_worker

    name = get_worker().name
    index = name if isinstance(name, int) else 0  # dask-cuda: each worker sees one GPU
    return torch.device("cuda", index % torch.cuda.device_count())


@dataclass(frozen=True)
class PredictBlock:
    """The process function of the prediction's :class:`~elektronn.blockwise.Task`."""

    job: BlockJob

    def __call__(self, block: Block) -> int:
        """Predict the valid part of one block and write it; returns its voxels."""
        job = self.job
        part = job.region.part(block.write)
        if part is None:
            return 0
        state = job_state(job)
        lows, sizes = job.region.input_box(part)
        names = CHANNEL + user_axes(len(lows))
        window = state.raw.mirrored_window((0, *lows), (state.raw.shape[0], *sizes))
        prob = predict_dense(
            state.model,
            window,
            axes=names,
            tile_shape=job.tile,
            method=job.method,
            target=job.target,
            out_dtype=job.dtype,
            standardisation=job.standardisation,
            precision=job.precision,
            channels=job.channels,
        )
        skip = tuple(
            slice(s.start - low - g.left, None)
            for s, low, g in zip(part, lows, job.region.axes, strict=True)
        )
        state.out[(slice(None), *part)] = prob[(slice(None), *skip)]
        return int(np.prod([s.stop - s.start for s in part]))


def check_block(block: tuple[int, ...], n_spatial: int) -> tuple[int, ...]:
    """``--block X,Y[,Z]``: output voxels per block, one per spatial axis (user order)."""
    if len(block) != n_spatial or min(block) < 1:
        raise PredictionError(
            f"--block {','.join(map(str, block))} must be {n_spatial} positive integers "
            f"({'X,Y,Z' if n_spatial == 3 else 'X,Y'}): the output voxels of one block (one "
            f"chunk of the OME-Zarr output), rounded up to a multiple of the net's stride."
        )
    return block


def block_shape(
    axes: tuple[AxisGeometry, ...], shape: tuple[int, ...], wanted: tuple[int, ...]
) -> tuple[int, ...]:
    """``wanted`` per axis rounded up to the stride, at most the volume (rounded up)."""
    return tuple(g.ceil_output(min(w, n)) for g, w, n in zip(axes, wanted, shape, strict=True))
