"""Dense prediction of large volumes: exact tiling of valid convolutions, with MFP.

Public API: :func:`predict_volume` (a file into a file, h5 or OME-Zarr, blockwise on Dask),
:class:`TrainedNet` (a net read once from its parameter file), :func:`predict_dense` (an
array), :func:`dense_output_shape`, :class:`PredictionError`; the command line is
:mod:`elektronn.predict.cli` (``elektronn-predict``).
"""

from .dense import dense_output_shape, predict_dense
from .errors import PredictionError
from .settings import TrainedNet
from .volume import predict_volume

__all__ = ["PredictionError", "TrainedNet", "dense_output_shape", "predict_dense", "predict_volume"]
