"""The axis names stored arrays declare: zarr v3 ``dimension_names``, OME-Zarr axes.

Shared by training (``d_files`` / ``l_files``), ``elektronn-predict`` and ``elektronn-evaluate``,
so all read the same stores the same way (through :class:`elektronn.axes.AxesView`): h5
datasets and unnamed zarr arrays in user order, zarr v3 arrays in the order of their
``dimension_names``, OME-Zarr images in the order of their axes metadata.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from ..axes import OME_AXES


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


def level_transform(transforms: Sequence[Any], n_axes: int) -> tuple[list[float], list[float]]:
    """``scale`` and ``translation`` per axis of one level (identity where absent)."""
    scale, translation = [1.0] * n_axes, [0.0] * n_axes
    for t in transforms:
        if t.type == "scale" and getattr(t, "scale", None) is not None:
            scale = [float(v) for v in t.scale]
        elif t.type == "translation" and getattr(t, "translation", None) is not None:
            translation = [float(v) for v in t.translation]
    return scale, translation
