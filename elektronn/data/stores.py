"""Axis names of stored arrays, and views of them in the order the pipeline expects.

Shared by training (``d_files`` / ``l_files``) and ``elektronn-predict``, so both read the same
stores the same way: h5 datasets and unnamed zarr arrays in user order, zarr v3 arrays in the
order of their ``dimension_names``, OME-Zarr images in the order of their axes metadata.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

#: The NGFF axis names a stored image may have (a channel axis and z are optional).
OME_AXES = frozenset("czyx")


class AxesView:
    """An array whose axes are named (``"czyx"``, ``"zyx"``, ``"xyz"``, ...) seen in the order
    ``names`` (default ``c, x, y[, z]``); an axis it lacks reads as one of length 1.

    Boxes are read and written with the storage's own axis order, so only the box moves.
    """

    def __init__(self, array: Any, axes: str, names: str | None = None) -> None:
        self.array, self.axes = array, axes
        self.names = names or "c" + "".join(a for a in "xyz" if a in axes)

    @property
    def shape(self) -> tuple[int, ...]:
        return tuple(
            1 if n not in self.axes else int(self.array.shape[self.axes.index(n)])
            for n in self.names
        )

    @property
    def dtype(self) -> np.dtype:
        return np.dtype(self.array.dtype)

    @property
    def ndim(self) -> int:
        return len(self.names)

    def _stored_index(self, index: Any) -> tuple:
        index = (slice(None),) * self.ndim if index is Ellipsis else index
        return tuple(index[self.names.index(a)] for a in self.axes)

    def _kept(self) -> list[str]:
        return [n for n in self.names if n in self.axes]

    def _missing(self) -> tuple[int, ...]:
        return tuple(i for i, n in enumerate(self.names) if n not in self.axes)

    def __getitem__(self, index: Any) -> np.ndarray:
        block = np.asarray(self.array[self._stored_index(index)])
        block = np.transpose(block, [self.axes.index(n) for n in self._kept()])
        return np.expand_dims(block, self._missing())

    def __setitem__(self, index: tuple, value: np.ndarray) -> None:
        kept = self._kept()
        value = np.squeeze(value, self._missing())
        self.array[self._stored_index(index)] = np.transpose(
            value, [kept.index(a) for a in self.axes]
        )


def is_zarr(path: Path) -> bool:
    return path.suffix in (".zarr", ".n5") or path.is_dir()


def is_ome_group(node: Any) -> bool:
    attrs = dict(getattr(node, "attrs", {}))
    return "multiscales" in attrs or "multiscales" in attrs.get("ome", {})


def ome_multiscale(group: Any, where: str, error: type[Exception]) -> Any:
    """The first multiscale of an OME-Zarr image, validated by ome-zarr-models (NGFF 0.4/0.5)."""
    from ome_zarr_models import open_ome_zarr

    try:
        attributes = open_ome_zarr(group).attributes
        return getattr(attributes, "ome", attributes).multiscales[0]  # 0.5 / 0.4
    except (ValueError, TypeError, AttributeError) as exc:
        raise error(
            f"{where} has OME-Zarr multiscales metadata that does not validate as an NGFF "
            f"0.4/0.5 image: {str(exc).splitlines()[0]}"
        ) from None


def ome_axes(multiscale: Any) -> str:
    return "".join(a.name.lower() for a in multiscale.axes)


def dimension_names(array: Any) -> list[str] | None:
    """A zarr v3 array's ``dimension_names`` in lower case, if every axis has one."""
    names = getattr(getattr(array, "metadata", None), "dimension_names", None)
    return [n.lower() for n in names] if names and all(names) else None


def dimension_axes(array: Any) -> str | None:
    """A zarr v3 array's ``dimension_names`` as axis names, if all are NGFF names (else None)."""
    names = dimension_names(array)
    return "".join(names) if names and set("".join(names)) <= OME_AXES else None


def image_axes_ok(axes: str) -> bool:
    """x and y, optionally z and c, each once: what a net reads (no t or other axes)."""
    return set(axes) <= OME_AXES and {"x", "y"} <= set(axes) and len(set(axes)) == len(axes)
