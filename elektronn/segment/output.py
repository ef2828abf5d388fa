"""Where segment IDs go: an h5 dataset, or the ``labels/<name>`` image of an OME-Zarr image.

OME-Zarr labels follow the NGFF ``image-label`` spec (0.5): an integer array with the image's
spatial axes, scale and translation (level 0), ``source`` pointing at the image, and
``properties`` giving each segment's voxel count; viewers (napari-ome-zarr, neuroglancer)
list them under the image. The metadata is written only when the last pass has finished (and
the ``elektronn`` attribute ``complete`` set), so an interrupted run never looks finished.

An h5 OUTPUT ``FILE.h5[:KEY]`` (default key ``segments``) is ``(x, y, z)`` with the
prediction's ``offset`` attribute; its ``elektronn`` attribute (JSON) records the run and,
at the end, ``complete``.
"""

from __future__ import annotations

import json
import shutil
from dataclasses import dataclass
from pathlib import Path

import h5py
import numpy as np

from ..axes import AxesView, reorder
from ..data.stores import is_ome_group, is_zarr, ome_axes, ome_multiscale
from ..predict.stores import level_transform
from ..predict.volume import split_spec
from .errors import SegmentationError

DEFAULT_KEY = "segments"
#: Inside the image (h5: beside the file): fragments, tables, done records.
WORK = "elektronn-work"


@dataclass(frozen=True)
class LabelsTarget:
    """The labels image ``labels/<name>`` of the OME-Zarr image at ``image``.

    ``axes`` are the image's spatial axes as stored (e.g. ``"zyx"``), ``shape`` its spatial
    shape in user order, ``offset`` where the segmented region starts on it (x, y, z).
    The labels are written into ``<image>/elektronn-work-<name>/labels`` and moved to
    ``labels/<name>`` when complete: the image keeps validating (and viewers keep opening
    it) while a run is unfinished.
    """

    image: str
    name: str
    axes: str
    shape: tuple[int, ...]
    offset: tuple[int, ...]
    #: Blocks may be written by many processes at once.
    concurrent = True

    @property
    def group(self) -> Path:
        return Path(self.image) / "labels" / self.name

    @property
    def work(self) -> Path:
        return Path(self.image) / f"{WORK}-{self.name}"

    @property
    def staging(self) -> Path:
        """The labels group while it is being written."""
        return self.work / "labels"

    def describe(self) -> str:
        return f"the labels '{self.name}' of '{self.image}'"

    def existing(self) -> tuple[tuple[int, ...], dict] | None:
        """The shape (user order) and ``elektronn`` record of labels already there (finished,
        or being written)."""
        import zarr

        for where in (self.group, self.staging):
            if (where / "0" / "zarr.json").exists():
                group = zarr.open_group(str(where), mode="r")
                view = AxesView(group["0"], self.axes, "xyz")
                check_integer(view.dtype, self.describe())
                return view.shape, dict(group.attrs.get("elektronn", {}))
        return None

    @property
    def placement(self) -> tuple[int, ...]:
        """Where the segmented region lies on the image's grid."""
        return self.offset

    def create(self, dtype: np.dtype, record: dict, chunks: tuple[int, ...]) -> None:
        """The level-0 array (chunks: the blocks of the labels pass), no OME metadata yet."""
        import zarr

        group = zarr.open_group(str(self.staging), mode="a", zarr_format=3)
        group.create_array("0", shape=reorder(self.shape, "xyz", self.axes), dtype=dtype,
                           chunks=reorder(clipped(chunks, self.shape), "xyz", self.axes),
                           fill_value=0, dimension_names=list(self.axes),
                           overwrite=True)  # fmt: skip
        group.attrs["elektronn"] = {**record, "complete": False}

    def write(self, box: tuple[slice, ...], ids: np.ndarray) -> None:
        """Write ``ids`` (x, y, z) at ``box`` of the image's grid."""
        import zarr

        array = zarr.open_array(str(self.staging / "0"), mode="r+")
        AxesView(array, self.axes, "xyz")[box] = ids

    def finish(self, sizes: np.ndarray, record: dict) -> None:
        """The NGFF multiscales metadata, the move into ``labels/``, the image-label
        metadata and the labels list, then ``complete``."""
        import zarr
        from ome_zarr.format import FormatV05
        from ome_zarr.writer import write_label_metadata, write_multiscales_metadata

        transforms, axes = self.image_grid()
        write_multiscales_metadata(zarr.open_group(str(self.staging), mode="r+"),
                                   [{"path": "0", "coordinateTransformations": transforms}],
                                   fmt=FormatV05(), axes=axes, name=self.name)  # fmt: skip
        labels = zarr.open_group(str(self.group.parent), mode="a", zarr_format=3)
        listed = [n for n in labels.attrs.get("ome", {}).get("labels", []) if n != self.name]
        labels.attrs["ome"] = {"version": FormatV05().version, "labels": listed}
        shutil.rmtree(self.group, ignore_errors=True)
        self.staging.rename(self.group)
        properties = [{"label-value": int(i), "voxels": int(n)}
                      for i, n in enumerate(sizes) if i > 0 and n > 0]  # fmt: skip
        write_label_metadata(zarr.open_group(str(self.group.parent), mode="r+"), self.name,
                             properties=properties, fmt=FormatV05(),
                             source={"image": "../../"})  # fmt: skip
        # reopened: a handle from before holds attributes without the image-label metadata
        done = zarr.open_group(str(self.group), mode="r+")
        done.attrs["elektronn"] = {**record, "complete": True}

    def image_grid(self) -> tuple[list[dict], list[dict]]:
        """The image's level-0 scale and translation, and its axes, for the spatial axes."""
        import zarr

        image = zarr.open_group(self.image, mode="r")
        multiscale = ome_multiscale(image, f"The image '{self.image}'", SegmentationError)
        axes = ome_axes(multiscale)
        scale, translation = level_transform(multiscale.datasets[0].coordinateTransformations,
                                             len(axes))  # fmt: skip
        keep = [axes.index(a) for a in self.axes]
        transforms = [
            {"type": "scale", "scale": [scale[i] for i in keep]},
            {"type": "translation", "translation": [translation[i] for i in keep]},
        ]
        return transforms, [multiscale.axes[i].model_dump(exclude_none=True) for i in keep]

    def remove(self) -> None:
        """Remove the labels, their work and their place in the labels list."""
        import zarr

        shutil.rmtree(self.work, ignore_errors=True)
        if self.group.exists():
            shutil.rmtree(self.group)
            labels = zarr.open_group(str(self.group.parent), mode="r+")
            ome = dict(labels.attrs.get("ome", {}))
            ome["labels"] = [n for n in ome.get("labels", []) if n != self.name]
            labels.attrs["ome"] = ome


@dataclass(frozen=True)
class H5Target:
    """The dataset ``key`` of the h5 file ``path``: IDs ``(x, y, z)`` with an ``offset``."""

    path: str
    key: str
    shape: tuple[int, ...]
    offset: tuple[int, ...]
    #: One writer at a time (HDF5).
    concurrent = False

    @property
    def work(self) -> Path:
        return Path(f"{self.path}.{self.key.replace('/', '_')}.{WORK}")

    def describe(self) -> str:
        return f"'{self.path}:{self.key}'"

    def existing(self) -> tuple[tuple[int, ...], dict] | None:
        if not Path(self.path).exists():
            return None
        with h5py.File(self.path, "r") as f:
            if self.key not in f:
                return None
            check_integer(f[self.key].dtype, self.describe())
            return tuple(f[self.key].shape), json.loads(f[self.key].attrs.get("elektronn", "{}"))

    @property
    def placement(self) -> tuple[int, ...]:
        """The dataset is the segmented region."""
        return (0,) * len(self.shape)

    def create(self, dtype: np.dtype, record: dict, chunks: tuple[int, ...]) -> None:
        with h5py.File(self.path, "a") as f:
            if self.key in f:
                del f[self.key]
            data = f.create_dataset(self.key, shape=self.shape, dtype=dtype,
                                    chunks=clipped(chunks, self.shape),
                                    compression="gzip")  # fmt: skip
            data.attrs["offset"] = np.asarray(self.offset, np.int64)
            data.attrs["axis_order"] = "xyz"
            data.attrs["elektronn"] = json.dumps({**record, "complete": False})

    def write(self, box: tuple[slice, ...], ids: np.ndarray) -> None:
        with h5py.File(self.path, "r+") as f:
            f[self.key][box] = ids

    def finish(self, sizes: np.ndarray, record: dict) -> None:
        with h5py.File(self.path, "r+") as f:
            f[self.key].attrs["n_segments"] = int(np.count_nonzero(sizes[1:]))
            f[self.key].attrs["elektronn"] = json.dumps({**record, "complete": True})

    def remove(self) -> None:
        if Path(self.path).exists():
            with h5py.File(self.path, "a") as f:
                if self.key in f:
                    del f[self.key]
        shutil.rmtree(self.work, ignore_errors=True)


Target = LabelsTarget | H5Target


def clipped(chunks: tuple[int, ...], shape: tuple[int, ...]) -> tuple[int, ...]:
    """Storage chunks no larger than the array."""
    return tuple(min(c, n) for c, n in zip(chunks, shape))


def check_integer(dtype: np.dtype, where: str) -> None:
    """IDs are integers >= 0: a float or signed array is no segmentation of ours."""
    if np.dtype(dtype).kind != "u":
        raise SegmentationError(
            f"{where} exists with dtype {np.dtype(dtype)}, but segment IDs are unsigned "
            f"integers (0 = background); it is not a segmentation written by "
            f"elektronn-segment. Use --overwrite to replace it, or choose another OUTPUT."
        )


def describe_output(spec: str, name: str, shape: tuple[int, ...],
                    offset: tuple[int, ...]) -> Target:  # fmt: skip
    """OUTPUT: an existing OME-Zarr image (labels ``name`` go inside it), else an h5 file.

    ``shape`` and ``offset`` are the segmented region's size and its first voxel on the
    input's grid (x, y, z).
    """
    path, key = split_spec(spec, None)
    if is_zarr(path):
        return labels_target(path, name, shape, offset)
    return H5Target(str(path), key or DEFAULT_KEY, shape, offset)


def labels_target(path: Path, name: str, shape: tuple[int, ...],
                  offset: tuple[int, ...]) -> LabelsTarget:  # fmt: skip
    """The labels of the OME-Zarr image at ``path``, on its level-0 grid."""
    import zarr

    group = zarr.open_group(str(path), mode="r") if path.exists() else None
    if group is None or not is_ome_group(group):
        raise SegmentationError(
            f"OUTPUT '{path}' is not an OME-Zarr image. Labels go into an image, so give the "
            f"prediction's own OME-Zarr store (or the raw image it was predicted from); give "
            f"FILE.h5 for an h5 output."
        )
    multiscale = ome_multiscale(group, f"OUTPUT '{path}'", SegmentationError)
    axes = ome_axes(multiscale)
    spatial = "".join(a for a in axes if a in "xyz")
    array = group[multiscale.datasets[0].path]
    grid = AxesView(array, axes, "xyz").shape
    if len(spatial) != 3 or any(o < 0 or o + n > g for o, n, g in zip(offset, shape, grid)):
        raise SegmentationError(
            f"OUTPUT '{path}' is an image of shape {grid} (x, y, z), but the prediction's "
            f"region of shape {shape} lies at {offset} on the input's grid and does not fit "
            f"inside it. Give the image the prediction was made from, or its own store."
        )
    return LabelsTarget(str(path), name, spatial, grid, offset)
