"""The fragment graph: fragments of each block, the pairs that touch, one agglomeration.

IDs: the fragments of block ``number`` are ``number * ids_per_block + 1 ..``, so every block
writes IDs no other block writes without asking anyone (``ids_per_block`` = the voxels of a
block, the most fragments a block can hold). A pair of voxels that are neighbours is counted
exactly once: by the block that holds the first voxel, the second one stepping along a
neighbourhood offset into the block or across its faces. The global step joins the fragments
in memory (fragments are far fewer than voxels) and numbers the segments in the order of
their first voxel, so the IDs do not depend on the block shape.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass

import numpy as np
from scipy.sparse import coo_matrix
from scipy.sparse.csgraph import connected_components

#: Neighbourhood half-offsets: each neighbouring pair of voxels is seen from one side.
FACE_OFFSETS = ((1, 0, 0), (0, 1, 0), (0, 0, 1))
FULL_OFFSETS = tuple(
    o for o in itertools.product((-1, 0, 1), repeat=3) if o > (0, 0, 0)
)  # the 13 of 26 neighbours that come after the voxel in raster order


@dataclass(frozen=True)
class Fragments:
    """The fragments of one block (or of many, concatenated).

    ``first`` is the raster index (C order over the segmented region) of the fragment's first
    voxel, which orders segments the same whatever the blocks. ``anchor`` (one column per
    block face: x low, x high, y low, ...) names the object the block's kernel grew the
    fragment from, as seen in the slab of ``halo`` voxels on both sides of that face, which
    the blocks on either side both read: the raster index of the first voxel of its seed
    (watershed) or segment (mutex watershed) in the slab, -1 where it has none there. Two
    fragments that meet across a face with the same anchor were grown from the same object
    by both blocks, so they are one.
    """

    ids: np.ndarray
    counts: np.ndarray
    first: np.ndarray
    anchor: np.ndarray

    @staticmethod
    def concatenate(parts: list[Fragments]) -> Fragments:
        if not parts:
            empty = np.zeros(0, np.int64)
            return Fragments(np.zeros(0, np.uint64), empty, empty, np.zeros((0, 6), np.int64))
        return Fragments(*(np.concatenate([getattr(p, f) for p in parts])
                           for f in ("ids", "counts", "first", "anchor")))  # fmt: skip


@dataclass(frozen=True)
class Edges:
    """Pairs of touching fragments (``u < v``), the sum of the edge map over the pairs of
    voxels where they touch, how many such pairs, and (across a block face) on how many of
    them both blocks' kernels put the two voxels into one object (:func:`agreement`)."""

    u: np.ndarray
    v: np.ndarray
    total: np.ndarray
    count: np.ndarray
    agree: np.ndarray

    @staticmethod
    def concatenate(parts: list[Edges]) -> Edges:
        if not parts:
            empty = np.zeros(0)
            return Edges(np.zeros(0, np.uint64), np.zeros(0, np.uint64), empty, empty, empty)
        return Edges(*(np.concatenate([getattr(p, f) for p in parts])
                       for f in ("u", "v", "total", "count", "agree")))  # fmt: skip

    def summed(self) -> Edges:
        """One row per pair (a pair seen from two blocks is added up)."""
        if not len(self.u):
            return self
        pairs, inverse = np.unique(np.stack([self.u, self.v], 1), axis=0, return_inverse=True)
        inverse = inverse.ravel()
        return Edges(pairs[:, 0], pairs[:, 1],
                     np.bincount(inverse, self.total, len(pairs)),
                     np.bincount(inverse, self.count, len(pairs)),
                     np.bincount(inverse, self.agree, len(pairs)))  # fmt: skip


def first_voxels(labels: np.ndarray, origin: tuple[int, ...],
                 region: tuple[int, ...]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:  # fmt: skip
    """The labels of a box at ``origin`` in ``region``, each one's voxel count and the raster
    index of its first voxel in the region (the first in the box's raster order is the first
    in the region's, as a box keeps the order of its voxels)."""
    ids, index, counts = np.unique(labels.ravel(), return_index=True, return_counts=True)
    coords = np.unravel_index(index, labels.shape)
    first = np.ravel_multi_index(tuple(c + o for c, o in zip(coords, origin)), region)
    return ids, counts.astype(np.int64), np.asarray(first, np.int64)


def block_fragments(labels: np.ndarray, anchors: np.ndarray, inner: tuple[slice, ...],
                    first_id: int, read_origin: tuple[int, ...], region: tuple[int, ...],
                    halo: tuple[int, ...]) -> tuple[np.ndarray, Fragments]:  # fmt: skip
    """A block's fragments (``labels`` of its read box cropped to ``inner``) numbered
    ``first_id, first_id + 1, ...`` (0 stays background), and its fragment table.

    ``anchors`` (the read box, labels sharing the IDs of ``labels``) name the object each
    label grew from; ``read_origin`` is the read box's first voxel in ``region``, ``halo``
    the voxels read beyond each side of the block.
    """
    import fastremap

    local, mapping = fastremap.renumber(labels[inner], start=1, preserve_zero=True)
    write_origin = tuple(o + s.start for o, s in zip(read_origin, inner))
    ids, counts, first = first_voxels(local, write_origin, region)
    keep = ids > 0
    ids, counts, first = ids[keep], counts[keep], first[keep]
    original = {new: old for old, new in mapping.items()}
    labels_of = [original[i] for i in ids.tolist()]
    anchor = np.full((len(ids), 6), -1, np.int64)
    for column, slab in face_slabs(inner, anchors.shape, read_origin, region, halo):
        slab_ids, _, slab_first = first_voxels(anchors[slab], tuple(
            o + s.start for o, s in zip(read_origin, slab)), region)  # fmt: skip
        found = dict(zip(slab_ids.tolist(), slab_first.tolist()))
        anchor[:, column] = [found.get(label, -1) if label else -1 for label in labels_of]
    fragments = local.astype(np.uint64)
    fragments[fragments > 0] += np.uint64(first_id - 1)
    ids = ids.astype(np.uint64) + np.uint64(first_id - 1)
    return fragments, Fragments(ids, counts, first, anchor)


def face_slabs(inner: tuple[slice, ...], shape: tuple[int, ...], read_origin: tuple[int, ...],
               region: tuple[int, ...], halo: tuple[int, ...]):  # fmt: skip
    """``(column, box)`` of each face of a block that another block lies beyond: the slab
    ``halo`` voxels deep on both sides of it, across the whole read box (read-box
    coordinates). The blocks on both sides read exactly this slab."""
    for axis, (s, h) in enumerate(zip(inner, halo)):
        faces = ((0, s.start, read_origin[axis] + s.start > 0),
                 (1, s.stop, read_origin[axis] + s.stop < region[axis]))  # fmt: skip
        for side, at, inside in faces:
            if inside and h > 0:
                slab = [slice(0, n) for n in shape]
                slab[axis] = slice(max(0, at - h), min(shape[axis], at + h))
                yield 2 * axis + side, tuple(slab)


def neighbourhood(connectivity: int) -> tuple[tuple[int, int, int], ...]:
    """The half-offsets that make two voxels neighbours (6: faces, 26: also edges, corners)."""
    return FACE_OFFSETS if connectivity == 6 else FULL_OFFSETS


def same_object(labels: np.ndarray, inner: tuple[slice, ...]) -> dict[str, np.ndarray]:
    """Per face of a block, whether the kernel's labels (of the read box) put the last voxel
    inside the block and the first one beyond it into one object: ``high<axis>`` (the
    block's last plane and the next) and ``low<axis>`` (the plane before it and its first),
    across the block's lateral extent; faces the read box does not reach past are left out."""
    planes = {}
    for axis, s in enumerate(inner):
        lateral = [t for i, t in enumerate(inner) if i != axis]
        for name, first in (("high", s.stop - 1), ("low", s.start - 1)):
            if 0 <= first and first + 1 < labels.shape[axis]:
                a = np.take(labels, first, axis=axis)[tuple(lateral)]
                b = np.take(labels, first + 1, axis=axis)[tuple(lateral)]
                planes[f"{name}{axis}"] = (a == b) & (a > 0)
    return planes


def agreement(own: dict[str, np.ndarray], beyond: dict[int, dict[str, np.ndarray]],
              inner: tuple[slice, ...], shape: tuple[int, ...]) -> list[np.ndarray]:  # fmt: skip
    """Per face offset, at the block's last plane: both the block and the block beyond its
    high face (``beyond[axis]``, their :func:`same_object` planes) saw one object across the
    face. Stitching by this vote needs no threshold and no agreement on whole objects."""
    maps = []
    for axis, s in enumerate(inner):
        agree = np.zeros(shape, bool)
        mine, theirs = own.get(f"high{axis}"), beyond.get(axis, {}).get(f"low{axis}")
        if mine is not None and theirs is not None:
            box = list(inner)
            box[axis] = s.stop - 1
            agree[tuple(box)] = mine & theirs
        maps.append(agree)
    return maps


def block_edges(fragments: np.ndarray, scores: list[np.ndarray], inner: tuple[slice, ...],
                connectivity: int, agree: list[np.ndarray] | None = None) -> Edges:  # fmt: skip
    """The touching pairs seen from a block: ``fragments`` covers the block grown by one voxel
    (clipped), ``inner`` is the block inside it; ``scores[i]`` holds the boundary score of the
    voxel pair ``(v, v + offset_i)`` at ``v`` for each offset of :func:`neighbourhood`, and
    ``agree[i]`` (6-neighbourhood) whether both blocks' kernels joined it."""
    offsets = neighbourhood(connectivity)
    agree = agree or [np.zeros(fragments.shape, bool)] * len(offsets)
    parts = []
    for offset, score_map, agree_map in zip(offsets, scores, agree, strict=True):
        here, there = [], []
        for s, o, n in zip(inner, offset, fragments.shape):
            start, stop = max(s.start, -o), min(s.stop, n - o)
            here.append(slice(start, max(start, stop)))
            there.append(slice(start + o, max(start, stop) + o))
        a, b = fragments[tuple(here)], fragments[tuple(there)]
        touch = (a != b) & (a > 0) & (b > 0)
        if not touch.any():
            continue
        a, b = a[touch], b[touch]
        score = score_map[tuple(here)][touch]
        agreed = agree_map[tuple(here)][touch]
        parts.append(Edges(np.minimum(a, b), np.maximum(a, b), score.astype(np.float64),
                           np.ones(len(a)), agreed.astype(np.float64)))  # fmt: skip
    return Edges.concatenate(parts).summed()


def joined(edges: Edges, anchor_u: np.ndarray, anchor_v: np.ndarray, method: str,
           merge_threshold: float, ids_per_block: int,
           grid: tuple[int, ...]) -> np.ndarray:  # fmt: skip
    """Which pairs the agglomeration joins.

    ``components``: all touching foreground. Otherwise the pairs across a block face that
    were grown from the same anchor (both blocks saw the same seed or segment) or where both
    blocks' kernels joined most of their touching voxel pairs (:func:`agreement`), and for
    ``watershed`` the pairs whose mean boundary on their shared faces is below
    ``merge_threshold``. The mutex watershed's own decisions are not overruled by a mean:
    one misplaced voxel with a high affinity across a face would join two cells.
    """
    if method == "components":
        return np.ones(len(edges.u), bool)
    per_block = np.uint64(ids_per_block)
    block_u = np.unravel_index(((edges.u - np.uint64(1)) // per_block).astype(np.int64), grid)
    block_v = np.unravel_index(((edges.v - np.uint64(1)) // per_block).astype(np.int64), grid)
    step = np.stack(block_v, 1) - np.stack(block_u, 1)
    rows = np.arange(len(step))
    axis = np.abs(step).argmax(1)
    upward = step[rows, axis] > 0
    face_u = anchor_u[rows, 2 * axis + upward]
    face_v = anchor_v[rows, 2 * axis + ~upward]
    across = np.abs(step).sum(1) > 0
    same = across & (((face_u == face_v) & (face_u >= 0)) | (edges.agree > 0.5 * edges.count))
    if method == "mws":
        return same
    return same | (edges.total / np.maximum(edges.count, 1) < merge_threshold)


def agglomerate(fragments: Fragments, edges: Edges, method: str, merge_threshold: float,
                ids_per_block: int, grid: tuple[int, ...],
                min_size: int) -> tuple[np.ndarray, np.ndarray]:  # fmt: skip
    """The lookup table fragment ID -> segment ID (sorted keys, values; 0 = background).

    Segments are the connected components of the joined pairs (scipy.sparse.csgraph),
    numbered 1, 2, ... in the order of their first voxel; those under ``min_size`` voxels
    become 0.
    """
    order = np.argsort(fragments.ids)
    keys, counts, first = fragments.ids[order], fragments.counts[order], fragments.first[order]
    n = len(keys)
    if n == 0:
        return keys, np.zeros(0, np.uint64)
    u, v = np.searchsorted(keys, edges.u), np.searchsorted(keys, edges.v)
    anchor = fragments.anchor[order]
    take = joined(edges, anchor[u], anchor[v], method, merge_threshold, ids_per_block, grid)
    u, v = u[take], v[take]
    graph = coo_matrix((np.ones(len(u), np.int8), (u, v)), shape=(n, n))
    n_segments, segment = connected_components(graph, directed=False)
    sizes = np.bincount(segment, counts, n_segments)
    starts = np.full(n_segments, np.iinfo(np.int64).max)
    np.minimum.at(starts, segment, first)
    kept = sizes >= min_size
    rank = np.zeros(n_segments, np.uint64)
    kept_order = np.argsort(np.where(kept, starts, np.iinfo(np.int64).max), kind="stable")
    rank[kept_order[: kept.sum()]] = np.arange(1, kept.sum() + 1, dtype=np.uint64)
    return keys, rank[segment]


def relabel(fragments: np.ndarray, keys: np.ndarray, values: np.ndarray,
            dtype: np.dtype) -> np.ndarray:  # fmt: skip
    """A block's fragments through the lookup table (fastremap, with a table of the block's
    own IDs only)."""
    import fastremap

    present = fastremap.unique(fragments)
    present = present[present > 0]
    mapping = dict(zip(present.tolist(), values[np.searchsorted(keys, present)].tolist()))
    mapping[0] = 0
    return fastremap.remap(fragments, mapping, preserve_missing_labels=False).astype(dtype)


def segment_sizes(fragments: Fragments, keys: np.ndarray, values: np.ndarray) -> np.ndarray:
    """Voxels of each segment ``1..N`` (index 0: background fragments dropped by size)."""
    order = np.argsort(fragments.ids)
    segments = values[np.searchsorted(keys, fragments.ids[order])]
    return np.bincount(segments.astype(np.int64), fragments.counts[order],
                       int(values.max(initial=0)) + 1).astype(np.int64)  # fmt: skip
