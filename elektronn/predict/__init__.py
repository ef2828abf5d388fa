"""Dense prediction of large volumes: exact tiling of valid convolutions, with MFP.

Public API: :func:`predict_dense`, :func:`dense_output_shape`, :class:`PredictionError`;
the command line is :mod:`elektronn.predict.cli` (``elektronn-predict``).
"""

from .dense import dense_output_shape, predict_dense
from .errors import PredictionError

__all__ = ["PredictionError", "dense_output_shape", "predict_dense"]
