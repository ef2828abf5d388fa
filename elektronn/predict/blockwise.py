"""Blockwise prediction into an OME-Zarr store: resumable, in-process or on Dask workers.

The output frame is cut into blocks on the output chunk grid (each block one chunk, a
multiple of the net's stride). A task reads its block's input box (the block plus the FOV
halo, mirrored at the volume's borders with ``--pad``) and predicts it with
:func:`~.dense.predict_dense`, whose exact tiling computes every voxel from its own window
only, so the blocks together equal a single-process prediction. After a block's data is
written, its entry of the store's done array is set: a rerun computes only the others.

Tasks carry a :class:`BlockJob` (paths and numbers) and a block index; each process opens
the model and the stores itself and keeps them for the next block.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from .dense import predict_dense
from .errors import PredictionError
from .geometry import AxisGeometry
from .stores import AxesView, InputSource, OutputStore
from .volume import StoredVolume, mirror_indices

Index = tuple[int, ...]


@dataclass(frozen=True)
class BlockGrid:
    """Blocks of the output frame, user order (x, y[, z]).

    Attributes
    ----------
    out_shape
        Spatial shape of the output frame.
    block
        Output size of a block (the last one per axis may be smaller).
    axes
        Geometry per spatial axis (a 2D net on a stack has FOV 1 along z).
    pad
        Whether the frame is the mirror-padded input (``--pad``).
    """

    out_shape: tuple[int, ...]
    block: tuple[int, ...]
    axes: tuple[AxisGeometry, ...]
    pad: bool

    @property
    def shape(self) -> tuple[int, ...]:
        """Number of blocks per axis."""
        return tuple(math.ceil(n / b) for n, b in zip(self.out_shape, self.block, strict=True))

    @property
    def n_blocks(self) -> int:
        return math.prod(self.shape)

    def __iter__(self) -> Iterator[Index]:
        return itertools.product(*(range(n) for n in self.shape))

    def out_box(self, index: Index) -> tuple[slice, ...]:
        """The block's output voxels."""
        return tuple(
            slice(i * b, min((i + 1) * b, n))
            for i, b, n in zip(index, self.block, self.out_shape, strict=True)
        )

    def voxels(self, index: Index) -> int:
        return math.prod(s.stop - s.start for s in self.out_box(index))

    def input_box(self, index: Index) -> tuple[tuple[int, ...], tuple[int, ...]]:
        """First raw voxel and size of the block's input per axis (may reach past the raw
        volume with ``pad``: those voxels are mirrored, as the single-process run does)."""
        lows, sizes = [], []
        for box, g in zip(self.out_box(index), self.axes, strict=True):
            lows.append(box.start - g.left if self.pad else box.start)
            sizes.append(g.input_size(box.stop - box.start))
        return tuple(lows), tuple(sizes)


def block_shape(axes: tuple[AxisGeometry, ...], out_shape: tuple[int, ...],
                wanted: tuple[int, ...]) -> tuple[int, ...]:  # fmt: skip
    """``wanted`` output per axis rounded up to the stride, at most the frame (rounded up)."""
    return tuple(g.ceil_output(min(w, n)) for g, w, n in zip(axes, wanted, out_shape, strict=True))


class MirroredWindow:
    """A box of a channel-first user-order volume, indices outside it mirrored.

    Offered to :func:`predict_dense` as the whole raw volume of one block, so the block's
    prediction reads exactly the voxels the single-process run reads for it.
    """

    def __init__(self, raw: Any, lows: tuple[int, ...], sizes: tuple[int, ...]) -> None:
        self.volume = StoredVolume(raw, tuple(range(len(lows))))
        self.raw, self.lows, self.sizes = raw, lows, sizes

    @property
    def shape(self) -> tuple[int, ...]:
        return (self.raw.shape[0], *self.sizes)

    @property
    def dtype(self) -> np.dtype:
        return np.dtype(self.raw.dtype)

    def __getitem__(self, index: tuple) -> np.ndarray:
        indices = tuple(
            mirror_indices(np.arange(low + s.start, low + s.stop), n)
            for s, low, n in zip(index[1:], self.lows, self.raw.shape[1:], strict=True)
        )
        return self.volume.read(indices)


@dataclass(frozen=True)
class BlockJob:
    """Everything a task needs, as paths and numbers (small, picklable, hashable).

    ``device`` is ``'cpu'``, ``'cuda:N'``, or ``'worker'``: the Dask worker's own GPU
    (worker ``i`` -> GPU ``i mod n``; CPU without CUDA). ``threads``: torch threads per
    process (None: torch's default).
    """

    param_file: str
    source: InputSource
    output: OutputStore
    grid: BlockGrid
    dtype: str
    method: str
    precision: str
    target: str
    standardisation: tuple[float, float] | None
    tile: tuple[int, ...] | None
    device: str
    threads: int | None = None


@dataclass(frozen=True)
class BlockDone:
    """What a finished task reports back: its block and how many output voxels it made."""

    index: Index
    voxels: int


@dataclass
class _State:
    """A process's open model and stores for one job."""

    model: torch.nn.Module
    raw: AxesView
    out: AxesView
    done: Any


_STATES: dict[BlockJob, _State] = {}


def job_state(job: BlockJob) -> _State:
    """This process's model and stores for ``job``, opened on its first block."""
    if job not in _STATES:
        from ..net.paramfile import build_model_from_params

        _STATES.clear()
        if job.threads is not None:
            torch.set_num_threads(job.threads)
        model = build_model_from_params(job.param_file).to(job_device(job.device))
        _STATES[job] = _State(model, job.source.open(), job.output.level0(), job.output.done())
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


def predict_block(job: BlockJob, index: Index) -> BlockDone:
    """Predict one block, write it, then mark it done (never before its data is written)."""
    state = job_state(job)
    lows, sizes = job.grid.input_box(index)
    prob = predict_dense(
        state.model, MirroredWindow(state.raw, lows, sizes), raw_order="xyz",
        tile_shape=job.tile, method=job.method, target=job.target, out_dtype=job.dtype,
        standardisation=job.standardisation, precision=job.precision,
    )  # fmt: skip
    state.out[(slice(None), *job.grid.out_box(index))] = prob
    state.done[index] = 1
    return BlockDone(index, job.grid.voxels(index))


def missing_blocks(job: BlockJob) -> list[Index]:
    """The blocks whose done entry is not set, in grid order."""
    done = np.asarray(job.output.done(mode="r")[...])
    return [index for index in job.grid if not done[index]]


@dataclass
class BlockFailure:
    index: Index
    error: BaseException


#: ``report(done: BlockDone | None, failure: BlockFailure | None, retried: bool)``
Report = Callable[[BlockDone | None, BlockFailure | None, bool], None]


def run_in_process(job: BlockJob, blocks: Iterable[Index], report: Report) -> list[BlockFailure]:
    """Predict ``blocks`` one after the other here; stop at the first failure (e.g. a full
    disk: later blocks would fail alike), which is returned."""
    for index in blocks:
        try:
            report(predict_block(job, index), None, False)
        except OSError as exc:
            failure = BlockFailure(index, exc)
            report(None, failure, False)
            return [failure]
    return []


def describe_failures(failures: list[BlockFailure], output: str, n_missing: int) -> str:
    """One paragraph: how many blocks failed, the first error, and how to finish."""
    first = failures[0]
    return (
        f"{len(failures)} block(s) could not be predicted and written to '{output}'; the "
        f"first, block {first.index} (user order x, y[, z]), failed with: "
        f"{type(first.error).__name__}: {first.error}. Blocks finished so far are recorded as "
        f"done; fix the cause (e.g. free disk space) and rerun the same command to compute "
        f"the {n_missing} missing block(s)."
    )


def check_block_option(text: str | None, n_spatial: int) -> tuple[int, ...] | None:
    """``--block X,Y[,Z]``: output voxels per block, user order."""
    if text is None:
        return None
    try:
        block = tuple(int(v) for v in text.split(","))
    except ValueError:
        block = ()
    if len(block) != n_spatial or min(block) < 1:
        raise PredictionError(
            f"--block {text!r} must be {n_spatial} positive integers "
            f"({'X,Y,Z' if n_spatial == 3 else 'X,Y'}): the output voxels of one block (one "
            f"chunk of the OME-Zarr output), rounded up to a multiple of the net's stride."
        )
    return block
