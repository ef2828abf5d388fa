"""From h5 volumes to augmented training batches, optionally made by background workers.

Public API: :class:`ImageData` (img-img, img-scalar), :func:`batch_kwargs_from_config`,
:class:`BackgroundBatches`, :class:`DataError`.
"""

from .background import BackgroundBatches
from .errors import DataError
from .image_data import ImageData, batch_kwargs_from_config

__all__ = ["BackgroundBatches", "DataError", "ImageData", "batch_kwargs_from_config"]
