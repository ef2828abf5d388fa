"""What a segmentation is asked to do: the method and its parameters, checked once.

The methods, and the structures they suit:

``components``
    Connected components of the voxels whose foreground probability exceeds ``threshold``,
    optionally without segments under ``min_size`` voxels: compact objects that boundaries
    seldom touch (mitochondria, nuclei, vesicle clouds).
``watershed``
    Seeds where the boundary probability is below ``threshold`` (``seeds="interior"``) or at
    the maxima of the distance to the boundaries (``seeds="distance"``), a seeded watershed
    of the boundary map into fragments, then fragments merged while the mean boundary on their
    shared faces is below ``merge_threshold``: densely packed cells (neurons) from a
    membrane or affinity map.
``mws``
    The mutex watershed on affinities: nearest-neighbour offsets attract, long-range offsets
    repel, no threshold to tune. Needs an affinity prediction whose metadata names its
    ``affinity_offsets``.
"""

from __future__ import annotations

from dataclasses import dataclass

from .errors import SegmentationError

METHODS = ("components", "watershed", "mws")
SEED_MODES = ("interior", "distance")

#: Voxels read beyond each side of a block (per axis x, y, z) unless ``halo`` is given:
#: components need none (blocks are joined exactly by their faces); a watershed's basins and
#: the mutex watershed's repulsions need to see across the block faces.
DEFAULT_HALO = {"components": 0, "watershed": 8, "mws": 8}


@dataclass(frozen=True)
class SegmentParams:
    """The method and its parameters (user order x, y, z for per-axis values).

    Attributes
    ----------
    method
        ``"components"``, ``"watershed"`` or ``"mws"`` (see the module's description).
    threshold
        components: a voxel is foreground where its foreground probability is above it;
        watershed: seeds grow where the boundary probability is below it.
    merge_threshold
        watershed: fragments are joined while the mean boundary probability (on affinities:
        one minus the affinity of each touching pair of voxels) on their shared faces is
        below it.
    foreground_class
        components on a class map: the channel of the objects (default 1, the foreground of a
        two-class map).
    boundary_class
        watershed on a class map: the channel of the boundaries (default 1, the membrane
        class of a two-class map). On affinities, the boundary map is one minus the mean of
        the nearest-neighbour affinities, and the foreground their mean.
    connectivity
        components: 6 (faces) or 26 (faces, edges and corners) neighbours connect voxels.
    seeds
        watershed: ``"interior"`` (components of the thresholded interior) or
        ``"distance"`` (maxima of the distance to the boundaries, at least
        ``seed_distance`` voxels apart: splits cells that touch through thin gaps).
    seed_distance
        watershed with ``seeds="distance"``: the radius of the maxima's neighbourhood.
    min_size
        Segments with fewer voxels become background (0), counted over the whole volume.
    halo
        Voxels read beyond each side of a block, per axis; None for the method's default
        (:data:`DEFAULT_HALO`, and for mws at least twice the longest affinity offset).
    """

    method: str = "watershed"
    threshold: float = 0.5
    merge_threshold: float = 0.5
    foreground_class: int = 1
    boundary_class: int = 1
    connectivity: int = 6
    seeds: str = "interior"
    seed_distance: int = 3
    min_size: int = 0
    halo: tuple[int, int, int] | None = None

    def __post_init__(self) -> None:
        if self.method not in METHODS:
            raise SegmentationError(
                f"--method {self.method!r}: choose one of {', '.join(METHODS)} (components for "
                f"compact organelles, watershed for cells from a boundary map, mws for "
                f"affinities)."
            )
        for name in ("threshold", "merge_threshold"):
            value = getattr(self, name)
            if not 0.0 <= value <= 1.0:
                raise SegmentationError(
                    f"--{name.replace('_', '-')} {value}: a probability between 0 and 1."
                )
        if self.connectivity not in (6, 26):
            raise SegmentationError(
                f"--connectivity {self.connectivity}: 6 (faces) or 26 (faces, edges, corners)."
            )
        if self.seeds not in SEED_MODES:
            raise SegmentationError(
                f"--seeds {self.seeds!r}: 'interior' (components of the thresholded interior) "
                f"or 'distance' (maxima of the distance to the boundaries)."
            )
        if self.min_size < 0 or self.seed_distance < 1:
            raise SegmentationError(
                f"--min-size {self.min_size} must be >= 0 and --seed-distance "
                f"{self.seed_distance} >= 1 voxels."
            )
        if self.halo is not None and (len(self.halo) != 3 or min(self.halo) < 0):
            raise SegmentationError(
                f"--halo {self.halo}: three voxel counts >= 0, X,Y,Z (user order)."
            )

    def context(self, offsets: list[tuple[int, ...]] | None) -> tuple[int, int, int]:
        """The voxels read beyond each side of a block, per axis (x, y, z)."""
        if self.halo is not None:
            return tuple(self.halo)
        halo = [DEFAULT_HALO[self.method]] * 3
        if self.method == "mws" and offsets:
            reach = [2 * max(abs(o[axis]) for o in offsets) for axis in range(3)]
            halo = [max(h, r) for h, r in zip(halo, reach)]
        return tuple(halo)

    def record(self) -> dict:
        """The parameters as JSON attributes (compared before a run resumes)."""
        return {
            "method": self.method, "threshold": self.threshold,
            "merge_threshold": self.merge_threshold, "foreground_class": self.foreground_class,
            "boundary_class": self.boundary_class, "connectivity": self.connectivity,
            "seeds": self.seeds, "seed_distance": self.seed_distance, "min_size": self.min_size,
            "halo": list(self.halo) if self.halo is not None else None,
        }  # fmt: skip
