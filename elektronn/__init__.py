"""elektronn: the ELEKTRONN CNN training pipeline for 2D/3D microscopy images, on PyTorch."""

__version__ = "0.1.0"
