"""Patch geometry: where the labels of a patch lie and how they are strided.

Sampling, flipping and warping all work on three spatial axes. A 2D net's patch ``(x, y)`` is
treated as a slab of depth 1, ``(1, x, y)``, with z offset 0 and z stride 1, so the same code
cuts 2D and 3D examples; :meth:`PatchGeometry.squeeze` drops the z axis again for 2D batches.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from ..arch import label_patch_shape
from .errors import DataError


def _as_zxy(values: Sequence[int], n_dim: int, name: str, z_for_2d: int) -> tuple[int, ...]:
    """Internal-order values ((x,y) or (z,x,y)) on three axes; 2D nets get ``z_for_2d``."""
    values = tuple(int(v) for v in values)
    if len(values) != n_dim:
        raise DataError(
            f"'{name}' is {values}, but a {n_dim}D net needs {n_dim} entries in internal order "
            f"({'(z, x, y)' if n_dim == 3 else '(x, y)'})."
        )
    return values if n_dim == 3 else (z_for_2d, *values)


@dataclass(frozen=True)
class PatchGeometry:
    """Patch size, label offset and output stride of a net, on three axes ``(z, x, y)``.

    Parameters
    ----------
    n_dim
        2 or 3, the net's spatial dimensionality.
    patch
        Input patch size (z, x, y); z is 1 for 2D nets.
    offset
        Integer offset (floor of FOV/2) between the patch border and the first label.
    stride
        Total output stride of the net; strided label batches take every ``stride``-th label.
    """

    n_dim: int
    patch: tuple[int, int, int]
    offset: tuple[int, int, int]
    stride: tuple[int, int, int]

    @classmethod
    def from_net(
        cls,
        n_dim: int,
        patch_shape: Sequence[int],
        int_offset: Sequence[int] | None = None,
        stride: Sequence[int] | None = None,
    ) -> PatchGeometry:
        """Build it from the architecture's values in internal order ((x,y) or (z,x,y))."""
        if n_dim not in (2, 3):
            raise DataError(f"n_dim is {n_dim!r}, but it must be 2 or 3.")
        patch = _as_zxy(patch_shape, n_dim, "patch_shape", 1)
        offset = _as_zxy((0,) * n_dim if int_offset is None else int_offset, n_dim, "int_offset", 0)
        steps = _as_zxy((1,) * n_dim if stride is None else stride, n_dim, "stride", 1)
        if any(p < 1 for p in patch) or any(s < 1 for s in steps) or any(o < 0 for o in offset):
            raise DataError(
                f"Patch shape {tuple(patch_shape)}, offset {int_offset} and stride {stride} "
                f"must be positive (offset non-negative)."
            )
        if any(p <= 2 * o for p, o in zip(patch, offset, strict=True)):
            raise DataError(
                f"The patch {tuple(patch_shape)} is not larger than twice the offset "
                f"{tuple(int_offset or ())}: no label would lie inside it."
            )
        return cls(n_dim, patch, offset, steps)

    @property
    def label_region(self) -> tuple[slice, slice, slice]:
        """Where the labels of a patch lie, in patch coordinates."""
        return tuple(slice(o, p - o) for p, o in zip(self.patch, self.offset, strict=True))

    @property
    def stride_slices(self) -> tuple[slice, slice, slice]:
        """Slices that take the labels at the centres of the output neurons' fields of view."""
        return tuple(slice(None, None, s) for s in self.stride)

    def label_shape(self, strided: bool) -> tuple[int, ...]:
        """Shape of one example's label patch as it appears in the batch."""
        return self.squeeze(
            label_patch_shape(self.patch, self.offset, self.stride if strided else None)
        )

    def squeeze(self, shape: tuple[int, ...]) -> tuple[int, ...]:
        """Drop the depth-1 z axis of a 2D net from a ``(..., z, x, y)`` shape."""
        return shape if self.n_dim == 3 else shape[:-3] + shape[-2:]

    @property
    def xy_symmetric(self) -> bool:
        """Whether x and y may be swapped (same size, offset and stride)."""
        return (
            self.patch[1] == self.patch[2]
            and self.offset[1] == self.offset[2]
            and self.stride[1] == self.stride[2]
        )

    @property
    def cubic(self) -> bool:
        """Whether all three axes may be permuted (3D nets with identical axes)."""
        return (
            self.n_dim == 3
            and self.xy_symmetric
            and (
                self.patch[0] == self.patch[1]
                and self.offset[0] == self.offset[1]
                and self.stride[0] == self.stride[1]
            )
        )
