"""Segmenting a prediction held in memory: the whole volume as one block.

The same steps as the blockwise run (:mod:`.passes`), so a score computed here (e.g. of a
training target, or by ``elektronn-evaluate``) is the score of what ``elektronn-segment``
writes.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from .graph import agglomerate, block_edges, block_fragments, neighbourhood, relabel
from .kernels import KERNELS
from .maps import channels_of, check_channels, pair_scores
from .params import SegmentParams


def edge_connectivity(params: SegmentParams) -> int:
    """Neighbours that make two fragments touch: the components' own connectivity, else 6."""
    return params.connectivity if params.method == "components" else 6


def segment_array(prediction: np.ndarray, params: SegmentParams | None = None,
                  offsets: Sequence[Sequence[int]] | None = None) -> np.ndarray:  # fmt: skip
    """Segment IDs ``(x, y, z)`` (uint32, 0 = background) of probabilities ``(c, x, y, z)``.

    Parameters
    ----------
    prediction
        Probabilities in user order, a class map or (with ``offsets``) affinities.
    params
        The method and its parameters (default: :class:`SegmentParams`, the watershed).
    offsets
        The affinity offsets (x, y, z) of the channels, for affinities.
    """
    params = params or SegmentParams()
    channels = channels_of(prediction.shape[0], offsets, 1.0, "The prediction")
    check_channels(channels, params, "the prediction")
    prob = np.asarray(prediction, dtype=np.float32)
    region = prob.shape[1:]
    labels, anchors = KERNELS[params.method](prob, channels, params)
    whole = tuple(slice(0, n) for n in region)
    fragments, table = block_fragments(labels, anchors, whole, 1, (0, 0, 0), region, (0, 0, 0))
    connectivity = edge_connectivity(params)
    scores = pair_scores(prob, channels, params, neighbourhood(connectivity))
    edges = block_edges(fragments, scores, whole, connectivity)
    keys, values = agglomerate(table, edges, params.method, params.merge_threshold,
                               int(np.prod(region)), (1, 1, 1), params.min_size)  # fmt: skip
    return relabel(fragments, keys, values, np.dtype(np.uint32))
