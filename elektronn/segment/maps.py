"""What a prediction's channels mean, and the maps the methods read from them.

A prediction is either a class map (one probability per class) or, when its metadata names
``affinity_offsets``, affinities: channel ``k`` at voxel ``v`` is the probability that ``v``
and ``v + offsets[k]`` belong to the same object, offsets in user order (x, y, z). Offsets
with one step along one axis are the nearest-neighbour affinities; the others are long-range.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from .errors import SegmentationError
from .params import SegmentParams

Offset = tuple[int, int, int]


@dataclass(frozen=True)
class Channels:
    """The channels of a prediction.

    Attributes
    ----------
    count
        Channels of the prediction.
    offsets
        One affinity offset (x, y, z) per channel, or None for a class map.
    scale
        Stored value of probability 1 (255 for a uint8 prediction, else 1).
    """

    count: int
    offsets: tuple[Offset, ...] | None = None
    scale: float = 1.0

    @property
    def nearest(self) -> list[int]:
        """The channels of the nearest-neighbour affinities."""
        return [k for k, o in enumerate(self.offsets or ()) if sum(map(abs, o)) == 1]


def channels_of(count: int, offsets: Sequence[Sequence[int]] | None, scale: float,
                where: str) -> Channels:  # fmt: skip
    """The channels a prediction's metadata describes, refused where they disagree."""
    if offsets is None:
        return Channels(count, None, scale)
    checked = tuple(tuple(int(v) for v in o) for o in offsets)
    if len(checked) != count or any(len(o) != 3 or not any(o) for o in checked):
        raise SegmentationError(
            f"{where} names {len(checked)} affinity offsets {list(map(list, checked))} in its "
            f"metadata ('affinity_offsets') but has {count} channels: each channel needs one "
            f"non-zero offset (x, y, z). The prediction and its metadata belong to different "
            f"nets; predict again."
        )
    return Channels(count, checked, scale)


def check_channels(channels: Channels, params: SegmentParams, where: str) -> None:
    """Refuse a method the prediction's channels cannot serve (e.g. mws on a class map)."""
    if channels.offsets is None:
        if params.method == "mws":
            raise SegmentationError(
                f"--method mws needs affinities, but {where} is a class map of "
                f"{channels.count} channel(s) without 'affinity_offsets' in its metadata. "
                f"Use --method watershed (a boundary map) or components (organelles), or "
                f"predict with a net trained on affinities."
            )
        wanted = params.foreground_class if params.method == "components" else params.boundary_class
        option = "--foreground-class" if params.method == "components" else "--boundary-class"
        if not 0 <= wanted < channels.count:
            raise SegmentationError(
                f"{option} {wanted}: {where} has the classes 0..{channels.count - 1}; name the "
                f"channel of the {'objects' if params.method == 'components' else 'boundaries'}."
            )
        return
    if not channels.nearest:
        raise SegmentationError(
            f"{where} has affinity offsets {list(map(list, channels.offsets))} but none to a "
            f"nearest neighbour (one step along one axis), which every method needs."
        )


def probabilities(values: np.ndarray, channels: Channels) -> np.ndarray:
    """Stored values as float32 probabilities."""
    return np.asarray(values, dtype=np.float32) / np.float32(channels.scale)


def foreground(prob: np.ndarray, channels: Channels, params: SegmentParams) -> np.ndarray:
    """The probability of being inside an object, ``(x, y, z)`` from ``(c, x, y, z)``."""
    if channels.offsets is None:
        return prob[params.foreground_class]
    return prob[channels.nearest].mean(axis=0)


def boundary(prob: np.ndarray, channels: Channels, params: SegmentParams) -> np.ndarray:
    """The probability of a boundary, ``(x, y, z)`` from ``(c, x, y, z)``."""
    if channels.offsets is None:
        return prob[params.boundary_class]
    return 1.0 - prob[channels.nearest].mean(axis=0)


def edge_map(prob: np.ndarray, channels: Channels, params: SegmentParams) -> np.ndarray:
    """The map whose mean over two fragments' shared faces scores their pair: the boundary
    probability (one minus the foreground for ``components``, whose class map may have no
    boundary class)."""
    if params.method == "components":
        return 1.0 - foreground(prob, channels, params)
    return boundary(prob, channels, params)


def shifted(values: np.ndarray, offset: Sequence[int]) -> np.ndarray:
    """``out[v] = values[v + offset]``, NaN where ``v + offset`` lies outside."""
    out = np.full(values.shape, np.nan, np.float32)
    src = tuple(slice(max(0, o), n + min(0, o)) for o, n in zip(offset, values.shape))
    dst = tuple(slice(max(0, -o), n + min(0, -o)) for o, n in zip(offset, values.shape))
    out[dst] = values[src]
    return out


def pair_scores(prob: np.ndarray, channels: Channels, params: SegmentParams,
                offsets: Sequence[Offset]) -> list[np.ndarray]:  # fmt: skip
    """Per neighbourhood offset ``o``, the boundary score of each voxel pair ``(v, v + o)``,
    stored at ``v``: one minus the affinity of the pair where a channel holds it (offset ``o``
    at ``v``, or ``-o`` at ``v + o``), else the mean of :func:`edge_map` over the two voxels.
    NaN where ``v + o`` lies outside the box."""
    base = edge_map(prob, channels, params)
    listed = list(channels.offsets or ())
    scores = []
    for offset in offsets:
        back = tuple(-o for o in offset)
        if tuple(offset) in listed:
            scores.append(1.0 - prob[listed.index(tuple(offset))])
        elif back in listed:
            scores.append(1.0 - shifted(prob[listed.index(back)], offset))
        else:
            scores.append((base + shifted(base, offset)) / 2)
    return scores
