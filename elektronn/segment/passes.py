"""The blockwise passes of a segmentation, each a :class:`~elektronn.blockwise.Task`.

1. ``fragments``: each block reads the prediction with a halo, runs the method's kernel, and
   writes the fragments of its own region into the work store, numbered in its own ID range
   (``number * ids_per_block + 1 ..``), with a table of their voxels and first voxel.
2. ``edges``: each block reads its fragments grown by one voxel and writes the pairs of
   fragments that touch (inside it and across its faces), with the edge map summed over
   where they touch.
3. The global agglomeration (:func:`.graph.agglomerate`, in this process) gives a lookup
   table fragment -> segment.
4. ``labels``: each block maps its fragments through the table into the output.

Each pass keeps done marks in the work store, so a rerun continues where a run stopped; the
output gets its metadata (and ``complete``) only after the last pass.
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..blockwise import Block, Task
from .arrays import edge_connectivity
from .graph import (
    Edges,
    Fragments,
    agreement,
    block_edges,
    block_fragments,
    neighbourhood,
    relabel,
    same_object,
)
from .kernels import KERNELS
from .maps import pair_scores
from .output import Target
from .params import SegmentParams
from .source import PredictionSource


@dataclass(frozen=True)
class Job:
    """One segmentation: what is read, how, in which blocks, and where the work goes."""

    prediction: PredictionSource
    params: SegmentParams
    block: tuple[int, int, int]
    work: str

    @property
    def ids_per_block(self) -> int:
        """The most fragments a block can hold: its voxels."""
        return math.prod(self.block)

    @property
    def fragments_path(self) -> str:
        return str(Path(self.work) / "fragments")

    def table(self, kind: str, number: int) -> Path:
        """The npz file of block ``number``'s fragment table or edges."""
        return Path(self.work) / kind / f"{number}.npz"

    def task(self, name: str, process, context: tuple[int, ...]) -> Task:
        return Task(name=name, shape=self.prediction.shape, block=self.block, process=process,
                    context=context, done=str(Path(self.work) / f"done-{name}"),
                    axes="xyz")  # fmt: skip


def save_npz(path: Path, **arrays: np.ndarray) -> None:
    """Write ``arrays`` so a reader never sees half a file (a killed block rewrites it)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(f"{path.stem}.{os.getpid()}.partial.npz")
    np.savez(partial, **arrays)
    os.replace(partial, path)


def open_fragments(job: Job, mode: str = "r+"):
    import zarr

    return zarr.open_array(job.fragments_path, mode=mode)


def create_fragments(job: Job) -> None:
    """The work array of fragment IDs (one chunk per block), unless a run made it already."""
    import zarr

    if not Path(job.fragments_path).exists():
        zarr.create_array(job.fragments_path, shape=job.prediction.shape, chunks=job.block,
                          dtype="uint64", fill_value=0, zarr_format=3)  # fmt: skip


@dataclass(frozen=True)
class FragmentsPass:
    """Pass 1 for one block: the kernel on the read box, cropped to the block."""

    job: Job
    halo: tuple[int, int, int]

    def __call__(self, block: Block) -> int:
        job = self.job
        prob = job.prediction.read(block.read)
        labels, anchors = KERNELS[job.params.method](prob, job.prediction.channels, job.params)
        fragments, table = block_fragments(labels, anchors, block.inner,
                                           block.number * job.ids_per_block + 1,
                                           tuple(s.start for s in block.read),
                                           job.prediction.shape, self.halo)  # fmt: skip
        open_fragments(job)[block.write] = fragments
        save_npz(job.table("fragments", block.number), ids=table.ids, counts=table.counts,
                 first=table.first, anchor=table.anchor,
                 **same_object(labels, block.inner))  # fmt: skip
        return block.voxels


@dataclass(frozen=True)
class EdgesPass:
    """Pass 2 for one block: touching pairs, read one voxel beyond the block."""

    job: Job

    def planes(self, number: int) -> dict[str, np.ndarray]:
        """A block's :func:`.graph.same_object` planes, from its fragment table."""
        with np.load(self.job.table("fragments", number)) as table:
            return {k: table[k] for k in table.files if k.startswith(("high", "low"))}

    def beyond(self, index: tuple[int, ...]) -> dict[int, dict[str, np.ndarray]]:
        """The planes of the blocks beyond this one's high faces, per axis."""
        grid = tuple(-(-n // b) for n, b in zip(self.job.prediction.shape, self.job.block))
        found = {}
        for axis in range(len(index)):
            if index[axis] + 1 < grid[axis]:
                step = tuple(i + (a == axis) for a, i in enumerate(index))
                found[axis] = self.planes(int(np.ravel_multi_index(step, grid)))
        return found

    def __call__(self, block: Block) -> int:
        job = self.job
        fragments = np.asarray(open_fragments(job, "r")[block.read])
        connectivity = edge_connectivity(job.params)
        scores = pair_scores(job.prediction.read(block.read), job.prediction.channels,
                             job.params, neighbourhood(connectivity))  # fmt: skip
        agree = None
        if connectivity == 6:
            agree = agreement(self.planes(block.number), self.beyond(block.index),
                              block.inner, fragments.shape)  # fmt: skip
        edges = block_edges(fragments, scores, block.inner, connectivity, agree)
        save_npz(job.table("edges", block.number), u=edges.u, v=edges.v, total=edges.total,
                 count=edges.count, agree=edges.agree)  # fmt: skip
        return block.voxels


@dataclass(frozen=True)
class LabelsPass:
    """Pass 4 for one block of the output's grid: the fragments it covers through the lookup
    table (0 outside the segmented region), written whole."""

    job: Job
    target: Target
    dtype: str

    def __call__(self, block: Block) -> int:
        place, region = self.target.placement, self.job.prediction.shape
        inside = tuple(slice(max(w.start - p, 0), min(w.stop - p, n))
                       for w, p, n in zip(block.write, place, region))  # fmt: skip
        ids = np.zeros([w.stop - w.start for w in block.write], self.dtype)
        if all(s.stop > s.start for s in inside):
            keys, values = lookup_table(self.job)
            fragments = np.asarray(open_fragments(self.job, "r")[inside])
            here = tuple(slice(s.start + p - w.start, s.stop + p - w.start)
                         for s, p, w in zip(inside, place, block.write))  # fmt: skip
            ids[here] = relabel(fragments, keys, values, np.dtype(self.dtype))
        self.target.write(block.write, ids)
        return block.voxels


_TABLES: dict[tuple[str, int, float], tuple[np.ndarray, np.ndarray]] = {}


def lookup_table(job: Job) -> tuple[np.ndarray, np.ndarray]:
    """The fragment -> segment table, read once per process (and per table written)."""
    path = Path(job.work) / "lookup.npz"
    key = (str(path), os.getpid(), path.stat().st_mtime)
    if key not in _TABLES:
        with np.load(path) as table:
            _TABLES[key] = (table["keys"], table["values"])
    return _TABLES[key]


def read_tables(job: Job, n_blocks: int) -> tuple[Fragments, Edges]:
    """Every block's fragment table and edges (far fewer than voxels)."""
    fragments, edges = [], []
    for number in range(n_blocks):
        with np.load(job.table("fragments", number)) as t:
            fragments.append(Fragments(t["ids"], t["counts"], t["first"], t["anchor"]))
        with np.load(job.table("edges", number)) as t:
            edges.append(Edges(t["u"], t["v"], t["total"], t["count"], t["agree"]))
    return Fragments.concatenate(fragments), Edges.concatenate(edges).summed()
