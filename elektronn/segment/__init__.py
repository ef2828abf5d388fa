"""From probabilities to objects: instance IDs from a prediction, block by block.

Public API: :func:`segment_volume` (a prediction file into an h5 file or the OME-Zarr labels
of an image, blockwise, resumable, on Dask), :func:`segment_array` (an array in memory, the
same steps as one block), :class:`SegmentParams` (the method and its parameters),
:class:`SegmentationError`; the command line is :mod:`elektronn.segment.cli`
(``elektronn-segment``).
"""

from .arrays import segment_array
from .errors import SegmentationError
from .params import METHODS, SegmentParams
from .volume import SegmentResult, segment_volume

__all__ = [
    "METHODS",
    "SegmentParams",
    "SegmentResult",
    "SegmentationError",
    "segment_array",
    "segment_volume",
]
