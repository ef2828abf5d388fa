"""Random flips, mirrors and 90° rotations of a patch and its labels (``flip_data``).

They are exact symmetries of the voxel grid, so they need no interpolation and keep the
registration of labels and image: the label patch is the centre of the image patch, and the
labels are flipped *before* striding, so the strided labels still sit at the centres of the
output neurons' fields of view even when ``(patch - 2*offset - 1)`` is not a multiple of the
stride.
"""

from __future__ import annotations

import numpy as np

from .errors import DataError
from .geometry import PatchGeometry


def check_flippable(geometry: PatchGeometry, upright_x: bool) -> None:
    """Swapping x and y needs identical x and y geometry (the original's square-patch rule)."""
    if not upright_x and not geometry.xy_symmetric:
        raise DataError(
            f"flip_data swaps x and y, which needs a square x-y patch with equal x/y offsets and "
            f"strides, but the patch is {geometry.patch[1:]} (offset {geometry.offset[1:]}, "
            f"stride {geometry.stride[1:]}). Use a square desired_input, flip_data=False, or "
            f"upright_x=True (then only y is mirrored)."
        )


def random_flip(
    rng: np.random.Generator,
    data: np.ndarray,
    labels: np.ndarray | None,
    geometry: PatchGeometry,
    anisotropic: bool,
    upright_x: bool,
) -> tuple[np.ndarray, np.ndarray | None]:
    """Apply one random symmetry to ``data`` ``(ch, z, x, y)`` and ``labels`` ``(z, x, y)``.

    * 2D: swap x and y (p=1/2), then mirror x and y (p=1/2 each): all 8 symmetries of the square.
    * 3D: the same plus mirroring z; with ``anisotropic=False`` and identical z/x/y geometry,
      a random permutation of all three axes instead of the x-y swap.
    * ``upright_x``: x keeps its direction (no swap, no x mirror); y (and z in 3D) are mirrored.

    ``labels`` is None for img-scalar (scalar labels are not flipped). Returns views.
    """
    spatial = [1, 2, 3]
    if not upright_x:
        if geometry.n_dim == 3 and not anisotropic and geometry.cubic:
            spatial = list(1 + rng.permutation(3))
        elif rng.random() < 0.5:
            spatial = [1, 3, 2]
    data = data.transpose(0, *spatial)
    if labels is not None:
        labels = labels.transpose(*(a - 1 for a in spatial))
    mirror = tuple(
        slice(None, None, -1) if may and rng.random() < 0.5 else slice(None)
        for may in (geometry.n_dim == 3, not upright_x, True)
    )
    data = data[(slice(None), *mirror)]
    if labels is not None:
        labels = labels[mirror]
    return data, labels
