"""A blockwise job in one record: the region, the write blocks, the read context, the work.

As daisy's ``Task``: the whole region is cut into write blocks on a lattice; each block is
read with a context (clipped to the region) and processed by one call of ``process``, which
writes only its own block. Finished blocks are marked in a zarr array, so a rerun of the
same task computes only the others. The engine knows nothing of nets or segments.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import numpy as np

from .errors import BlockwiseError

Index = tuple[int, ...]


@dataclass(frozen=True)
class Block:
    """One block of a :class:`Task`.

    Attributes
    ----------
    index
        The block's position in the grid (blocks per axis).
    number
        Its place in grid order, ``0 .. n_blocks - 1`` (e.g. to give it a range of IDs).
    write
        The voxels it writes (the last block of an axis is clipped to the region).
    read
        ``write`` grown by the task's context, clipped to the region.
    """

    index: Index
    number: int
    write: tuple[slice, ...]
    read: tuple[slice, ...]

    @property
    def inner(self) -> tuple[slice, ...]:
        """The write box relative to the read box."""
        return tuple(
            slice(w.start - r.start, w.stop - r.start)
            for w, r in zip(self.write, self.read, strict=True)
        )

    @property
    def voxels(self) -> int:
        """Voxels written."""
        return math.prod(s.stop - s.start for s in self.write)


#: ``process(block) -> int``: does the block's work, returns the voxels it made.
Process = Callable[[Block], int]


@dataclass(frozen=True)
class Task:
    """A blockwise job (picklable: ``process`` must be a module-level function or a frozen
    dataclass with ``__call__``, so Dask workers can receive it).

    Attributes
    ----------
    name
        Shown in progress lines and error messages (e.g. ``"prediction"``).
    shape
        The region written, voxels per axis (the axes are the caller's).
    block
        Voxels each block writes per axis.
    process
        The work of one block; it reads ``block.read`` and writes only ``block.write``.
    context
        Voxels read beyond each side of a write box (default none).
    done
        Path of a zarr array marking finished blocks (created when missing), or None.
    axes
        Names of the axes, in the order of ``shape``, for messages (e.g. ``"xyz"``).
    """

    name: str
    shape: tuple[int, ...]
    block: tuple[int, ...]
    process: Process
    context: tuple[int, ...] | None = None
    done: str | None = None
    axes: str = ""

    def __post_init__(self) -> None:
        n = len(self.shape)
        if len(self.block) != n or min(self.block, default=1) < 1:
            raise BlockwiseError(
                f"{self.name}: the block shape {self.block} needs one positive size per axis "
                f"of the region {self.shape}."
            )
        if self.context is not None and (len(self.context) != n or min(self.context) < 0):
            raise BlockwiseError(
                f"{self.name}: the context {self.context} needs one size >= 0 per axis of "
                f"the region {self.shape}."
            )

    @property
    def grid(self) -> tuple[int, ...]:
        """Blocks per axis."""
        return tuple(math.ceil(n / b) for n, b in zip(self.shape, self.block, strict=True))

    @property
    def n_blocks(self) -> int:
        return math.prod(self.grid)

    def block_at(self, index: Index) -> Block:
        """The block at grid position ``index``."""
        context = self.context or (0,) * len(self.shape)
        write = tuple(
            slice(i * b, min((i + 1) * b, n))
            for i, b, n in zip(index, self.block, self.shape, strict=True)
        )
        read = tuple(
            slice(max(0, w.start - c), min(n, w.stop + c))
            for w, c, n in zip(write, context, self.shape, strict=True)
        )
        number = int(np.ravel_multi_index(index, self.grid)) if self.grid else 0
        return Block(tuple(index), number, write, read)

    def blocks(self) -> Iterator[Block]:
        """Every block, in grid order."""
        for index in itertools.product(*(range(n) for n in self.grid)):
            yield self.block_at(index)

    def describe(self, index: Index) -> str:
        """``block (1, 0, 2) (x, y, z)``: how messages name a block."""
        names = f" ({', '.join(self.axes)})" if self.axes else ""
        return f"block {tuple(index)}{names}"


#: Done arrays this process has open, by path and grid (a worker marks many blocks).
_DONE: dict[tuple[str, tuple[int, ...]], Any] = {}


def done_marks(task: Task) -> Any:
    """The task's done array (one uint8 per block, one chunk each), created when missing;
    refused when it was made for another grid."""
    import zarr

    try:
        marks = zarr.open_array(
            task.done,
            mode="a",
            shape=task.grid,
            chunks=(1,) * len(task.grid),
            dtype="uint8",
            fill_value=0,
            zarr_format=3,
        )
    except (OSError, ValueError, TypeError) as exc:
        raise BlockwiseError(
            f"{task.name}: the record of finished blocks '{task.done}' cannot be opened "
            f"({type(exc).__name__}: {exc})."
        ) from None
    if tuple(marks.shape) != task.grid:
        raise BlockwiseError(
            f"{task.name}: '{task.done}' records {tuple(marks.shape)} blocks, but this task "
            f"has {task.grid}; it belongs to another run. Remove it (or the output) to start "
            f"afresh."
        )
    return marks


def missing_blocks(task: Task) -> list[Block]:
    """The blocks not marked done, in grid order (all of them without a done record)."""
    if task.done is None:
        return list(task.blocks())
    done = np.asarray(done_marks(task)[...])
    return [block for block in task.blocks() if not done[block.index]]


def run_block(task: Task, block: Block) -> int:
    """Process one block, then mark it done (never before its work is written)."""
    voxels = task.process(block)
    if task.done is not None:
        key = (task.done, task.grid)
        if key not in _DONE:
            _DONE[key] = done_marks(task)
        _DONE[key][block.index] = 1
    return voxels
