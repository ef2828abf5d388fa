"""Segmenting a prediction of any size into a file: :func:`segment_volume`, the Python entry
point of ``elektronn-segment`` (the passes are in :mod:`.passes`)."""

from __future__ import annotations

import json
import math
import shutil
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..blockwise import Task, check_cluster_options, cluster_for, run_task
from .errors import SegmentationError
from .graph import agglomerate, segment_sizes
from .maps import check_channels
from .output import Target, describe_output
from .params import SegmentParams
from .passes import (
    EdgesPass,
    FragmentsPass,
    Job,
    LabelsPass,
    create_fragments,
    read_tables,
    save_npz,
)
from .source import describe_prediction

#: Voxels each block writes per axis (x, y, z) unless ``block`` is given: a few blocks of
#: float32 probabilities and uint64 fragments stay well under 1 GB per worker.
DEFAULT_BLOCK = (128, 128, 128)

#: What a finished output records beside its settings.
RESULTS = ("complete", "n_segments", "n_fragments")


@dataclass(frozen=True)
class SegmentResult:
    """What :func:`segment_volume` wrote.

    Attributes
    ----------
    output
        Where the IDs are (the h5 dataset or the labels group).
    n_segments, n_fragments
        Segments written (IDs ``1..n_segments``) and the fragments they were joined from.
    blocks
        Blocks per axis (x, y, z).
    computed
        Blocks computed by this call, per pass (fewer than all when a run resumed).
    seconds
        Wall time of this call.
    """

    output: str
    n_segments: int
    n_fragments: int
    blocks: tuple[int, ...]
    computed: dict[str, int]
    seconds: float


def segment_volume(prediction: str, output: str, *, method: str = "watershed",
                   block: tuple[int, int, int] | None = None, workers: int | None = None,
                   scheduler: str | None = None, name: str | None = None,
                   overwrite: bool = False, retries: int = 2, progress: bool = True,
                   **options) -> SegmentResult:  # fmt: skip
    """Segment PREDICTION into OUTPUT, block by block, resumable, here or on Dask.

    Parameters
    ----------
    prediction
        What ``elektronn-predict`` wrote: ``FILE.h5[:KEY]`` (``(c, x, y, z)`` with an
        ``offset`` attribute), a zarr array or an OME-Zarr image.
    output
        An OME-Zarr image (the labels go to its ``labels/<name>``; e.g. the prediction's own
        store or the raw image) or ``FILE.h5[:KEY]`` (default key ``segments``).
    method
        ``"components"``, ``"watershed"`` or ``"mws"``; ``options`` are the other fields of
        :class:`~.params.SegmentParams` (``threshold``, ``merge_threshold``, ...).
    block
        Voxels each block writes (x, y, z); the result does not depend on it (exactly for
        components, up to fragments joined differently at block faces otherwise).
    workers, scheduler
        A Dask LocalCluster of this many processes, or an existing scheduler's address;
        neither: one block after the other in this process.
    name
        The labels' name in an OME-Zarr image (default: the method).
    overwrite
        Remove an earlier segmentation at OUTPUT first (else it is resumed, or refused when
        made with other settings).
    retries
        Resubmissions of a failing block before it is named in the error.
    """
    started = time.perf_counter()
    params = SegmentParams(method=method, **options)
    check_cluster_options(workers, scheduler)
    source = describe_prediction(prediction)
    check_channels(source.channels, params, f"the prediction '{prediction}'")
    context = params.context(source.channels.offsets)
    block = checked_block(block or DEFAULT_BLOCK, context, source.shape)
    target = describe_output(output, name or method, source.shape, source.offset)
    record = {"prediction": str(Path(source.source.path).resolve()), "key": source.source.key,
              "block": list(block), **params.record()}  # fmt: skip
    if overwrite:
        target.remove()
    state, found = existing_state(target, record)
    if state == "complete":
        grid = tuple(math.ceil(n / b) for n, b in zip(source.shape, block))
        return SegmentResult(target.describe(), found["n_segments"], found["n_fragments"], grid,
                             {}, time.perf_counter() - started)  # fmt: skip
    job = Job(source, params, block, str(target.work))
    claim_work(job, record, target)
    with cluster_for(workers, scheduler) as address:
        run = dict(scheduler=address, retries=retries, progress=progress)
        computed, grid, counts = run_passes(job, target, state, record, context, run)
    shutil.rmtree(job.work, ignore_errors=True)
    return SegmentResult(target.describe(), counts["n_segments"], counts["n_fragments"], grid,
                         computed, time.perf_counter() - started)  # fmt: skip


def run_passes(job: Job, target: Target, state: str, record: dict, context: tuple[int, ...],
               run: dict) -> tuple[dict[str, int], tuple[int, ...], dict[str, int]]:  # fmt: skip
    """Fragments, edges, the agglomeration, labels, the finished output; returns the blocks
    computed per pass, the grid and the counts of segments and fragments."""
    create_fragments(job)
    fragments_task = job.task("fragments", FragmentsPass(job, context), context)
    computed = {"fragments": run_task(fragments_task, **run),
                "edges": run_task(job.task("edges", EdgesPass(job), (1, 1, 1)), **run)}  # fmt: skip
    fragments, edges = read_tables(job, fragments_task.n_blocks)
    params = job.params
    keys, values = agglomerate(fragments, edges, params.method, params.merge_threshold,
                               job.ids_per_block, fragments_task.grid, params.min_size)  # fmt: skip
    save_npz(Path(job.work) / "lookup.npz", keys=keys, values=values)
    sizes = segment_sizes(fragments, keys, values)
    dtype = "uint32" if len(sizes) < 2**32 else "uint64"
    # blocks of the output's grid, one chunk each, so no two processes write one chunk
    labels = Task(name="labels", shape=target.shape, block=job.block, axes="xyz",
                  process=LabelsPass(job, target, dtype),
                  done=str(Path(job.work) / "done-labels"))  # fmt: skip
    if state == "absent":
        target.create(np.dtype(dtype), record, job.block)
    if not target.concurrent:  # an h5 file takes one writer at a time: written here
        run = {**run, "scheduler": None}
    computed["labels"] = run_task(labels, **run)
    counts = {"n_segments": int(np.count_nonzero(sizes[1:])), "n_fragments": len(keys)}
    target.finish(sizes, {**record, **counts})
    return computed, fragments_task.grid, counts


def checked_block(block: tuple[int, ...], context: tuple[int, ...],
                  shape: tuple[int, ...]) -> tuple[int, int, int]:  # fmt: skip
    """``block`` (x, y, z), refused when smaller than the halo along an axis it splits."""
    if len(block) != 3 or min(block) < 1:
        raise SegmentationError(
            f"--block-shape {','.join(map(str, block))}: three positive voxel counts X,Y,Z."
        )
    small = [a for a, b, c, n in zip("xyz", block, context, shape) if b < n and b < c]
    if small:
        raise SegmentationError(
            f"--block-shape {','.join(map(str, block))} is smaller than the halo "
            f"{','.join(map(str, context))} (voxels read beyond each side of a block) along "
            f"{', '.join(small)}: a block would see less of its surroundings than around it. "
            f"Use blocks at least as large as the halo (larger blocks are faster), or a smaller "
            f"--halo."
        )
    return tuple(int(b) for b in block)


def existing_state(target: Target, record: dict) -> tuple[str, dict]:
    """``"absent"``, ``"partial"`` (a run to resume) or ``"complete"``, and the record found;
    refused when the output is of another shape or was made with other settings."""
    found = target.existing()
    if found is None:
        return "absent", {}
    found_shape, found_record = found
    wanted = target.shape
    if tuple(found_shape) != tuple(wanted):
        raise SegmentationError(
            f"OUTPUT {target.describe()} exists with shape {tuple(found_shape)} (x, y, z), but "
            f"this segmentation is {tuple(wanted)}. Use --overwrite to replace it, or choose "
            f"another OUTPUT or --name."
        )
    settings = {k: v for k, v in found_record.items() if k not in RESULTS}
    if settings != json.loads(json.dumps(record)):
        differ = sorted(k for k in record if settings.get(k) != json.loads(json.dumps(record[k])))
        raise SegmentationError(
            f"OUTPUT {target.describe()} exists from another segmentation (it differs in "
            f"{', '.join(differ) or 'its record'}). Use --overwrite to replace it, or choose "
            f"another OUTPUT or --name."
        )
    return ("complete" if found_record.get("complete") else "partial"), found_record


def claim_work(job: Job, record: dict, target: Target) -> None:
    """The work store of this run, refused when it holds the work of other settings."""
    settings = Path(job.work) / "settings.json"
    if settings.exists() and json.loads(settings.read_text()) != json.loads(json.dumps(record)):
        raise SegmentationError(
            f"The unfinished work of another segmentation is at '{job.work}' (for "
            f"{target.describe()}). Use --overwrite to start afresh, or choose another OUTPUT "
            f"or --name."
        )
    settings.parent.mkdir(parents=True, exist_ok=True)
    settings.write_text(json.dumps(record))
