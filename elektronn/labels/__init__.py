"""Preparing training labels: ID labels to boundary maps, and 2D image files to h5 cubes.

One module per command: :mod:`.boundaries` and :mod:`.stack`; :mod:`.h5io` holds the h5
handling both share and :mod:`.cli` the command line.

Axis convention
---------------
Volumes are ``(x, y, z)`` (images with channels ``(ch, x, y, z)``), as everywhere in
elektronn. When 2D image files are stacked, an image's row index becomes x and its column
index y (see :mod:`.stack`).

Command line (``python -m elektronn.labels`` or ``elektronn-labels``)::

    elektronn-labels boundaries ids.h5:seg labels.h5:lab --2d --thickness 2 \\
        --extra mito.h5:mito --ignore-id 0
    elektronn-labels stack 'raw/*.png' raw.h5:raw
    elektronn-labels stack gt_folder/ ids.h5:seg --labels

Bad input (missing file or key, wrong shape or dtype) is reported as one paragraph on stderr
with exit code 2.
"""

from .boundaries import IGNORE, BoundarySpec, boundary_map, convert_boundaries
from .cli import main
from .errors import LabelError
from .h5io import H5Ref
from .stack import IMAGE_SUFFIXES, image_files, natural_key, read_image, stack_images

__all__ = [
    "IGNORE",
    "IMAGE_SUFFIXES",
    "BoundarySpec",
    "H5Ref",
    "LabelError",
    "boundary_map",
    "convert_boundaries",
    "image_files",
    "main",
    "natural_key",
    "read_image",
    "stack_images",
]
