"""The data checks of ``elektronn-train --dry-run``: what training would refuse, found first.

A dry run reads no voxels of the image volumes: each file is opened by the readers training
uses (h5, zarr/N5, OME-Zarr; :func:`.volumes.open_file`) and each cube as for
``data_in_memory=False`` (shapes, registration, down-sampling, border treatment), so the input
patch is checked against every cube exactly as training checks it, and the architecture is
printed with the images' channel count. A plug-in data class is
imported and its ``data_load_kwargs`` are checked against its constructor, and the paths
among them (arguments named ``*path*``, ``*file*``, ``*dir*``) must exist.
"""

from __future__ import annotations

import contextlib
import os
import re
from collections.abc import Iterator, Sequence
from typing import Any

import numpy as np

from ..arch import ram_estimate_bytes
from .errors import DataError
from .geometry import PatchGeometry
from .loading import Volume
from .ondisk import open_disk_cube
from .plugins import PluginError, check_load_kwargs, load_data_class
from .registration import summarised_label_cuts
from .sampling import fitting_orientations
from .volumes import close_file, dataset_of, image_to_internal, open_file, shape_only

PATH_ARGUMENT = re.compile(r"path|file|dir|folder", re.IGNORECASE)


@contextlib.contextmanager
def opened_dataset(folder: str, entry: Sequence, what: str, zchxy_order: bool) -> Iterator[Any]:
    """One ``d_files``/``l_files`` entry opened as training opens it (h5, zarr/N5, OME-Zarr
    level 0), for its shape and dtype; no voxels are read."""
    path = os.path.join(folder, entry[0])
    handle = open_file(path, what)
    try:
        yield dataset_of(handle, path, entry[1], what, zchxy_order)
    finally:
        close_file(handle)


def stored_dataset(
    folder: str, entry: Sequence, what: str, zchxy_order: bool
) -> tuple[tuple[int, ...], np.dtype]:
    """Shape (user order) and dtype of one ``d_files``/``l_files`` entry."""
    with opened_dataset(folder, entry, what, zchxy_order) as dataset:
        return tuple(dataset.shape), np.dtype(dataset.dtype)


def entry_voxels(shape: tuple[int, ...], entry: Sequence, zchxy_order: bool) -> int:
    """Voxels a d_files/l_files entry uses: the whole dataset or its z-range."""
    n = int(np.prod(shape))
    if len(entry) == 3 and shape:
        z_size = shape[0] if zchxy_order else shape[-1]
        n = n // z_size * (entry[2][1] - entry[2][0])
    return n


def z_range_text(entry: Sequence) -> str:
    """`` z(0, 22)`` for an entry with a z-range, else nothing."""
    return f" z{tuple(entry[2])}" if len(entry) == 3 else ""


def describe_data_files(config: Any) -> list[str]:
    """Lines with every image/label file's shape and the RAM estimate of the specification
    (what the data would take in memory, also when ``data_in_memory = False`` keeps it on disk)."""
    lines, n_img, n_lab = [], 0, 0
    for d_entry, l_entry in zip(config.d_files, config.l_files, strict=False):
        d_shape, d_dtype = stored_dataset(config.data_path, d_entry, "image", config.zchxy_order)
        l_shape, l_dtype = stored_dataset(config.label_path, l_entry, "label", config.zchxy_order)
        n_img += entry_voxels(d_shape, d_entry, config.zchxy_order)
        n_lab += entry_voxels(l_shape, l_entry, config.zchxy_order)
        lines.append(
            f"  {d_entry[0]}:{d_entry[1]}{z_range_text(d_entry)} {d_shape} {d_dtype}  |  "
            f"{l_entry[0]}:{l_entry[1]}{z_range_text(l_entry)} {l_shape} {l_dtype}"
        )
    ram = ram_estimate_bytes(n_img, n_lab)
    if config.data_in_memory:
        lines.append(f"Training data needs about {ram / 2**20:.2f} MiB of RAM.")
    else:
        lines.append(
            f"Training data stays on disk (data_in_memory = False); read into memory "
            f"it would need about {ram / 2**20:.2f} MiB of RAM."
        )
    return lines


def image_channels(config: Any) -> int:
    """The channel count of the images of ``d_files`` (``(ch, x, y, z)`` data has ``ch``), as
    the net will be built for it; training refuses images whose counts differ."""
    d_file = config.d_files[0]
    with opened_dataset(config.data_path, d_file, "image", config.zchxy_order) as dataset:
        image = image_to_internal(shape_only(dataset), config.zchxy_order, d_file[0], d_file[1])
    return image.shape[0]


def cube_orientations(
    cube: Volume, geometry: PatchGeometry, patch_shape: Sequence[int], all_orientations: bool
) -> tuple[tuple[int, int, int], ...]:
    """The slicing orientations in which the patch fits ``cube``; an error if there is none."""
    found = fitting_orientations(cube.shape, geometry, all_orientations)
    if not found:
        raise DataError(
            f"{cube.name}: the image (z, x, y) = {cube.shape} after registration "
            f"is smaller than the net's input patch {tuple(patch_shape)}; use larger images "
            f"or a smaller desired_input."
        )
    return found


def check_cubes(config: Any) -> None:
    """Open every cube of ``d_files``/``l_files`` by its shapes and check the patch fits it."""
    arch = config.arch
    geometry = PatchGeometry.from_net(config.n_dim, arch.input_shape, arch.int_offset, arch.stride)
    if config.mode == "img-scalar":
        geometry = PatchGeometry(config.n_dim, geometry.patch, (0, 0, 0), (1, 1, 1))
    all_orientations = (
        config.n_dim == 2 and config.mode == "img-img" and not config.anisotropic_data
    )
    with summarised_label_cuts(len(config.d_files)):
        for d_file, l_file in zip(config.d_files, config.l_files, strict=True):
            cube = open_disk_cube(
                d_file,
                l_file,
                config.data_path,
                config.label_path,
                mode=config.mode,
                target=config.target,
                geometry=geometry,
                zchxy_order=config.zchxy_order,
                downsample_xy=config.downsample_xy,
                border_mode=config.border_mode,
            )
            cube_orientations(cube, geometry, arch.input_shape, all_orientations)


def check_plugin(config: Any) -> None:
    """Import the data class, bind ``data_load_kwargs`` and check the paths among them."""
    cls = load_data_class(config.data_class_name)
    bound = check_load_kwargs(cls, dict(config.data_load_kwargs))
    bound.apply_defaults()
    for name, value in bound.arguments.items():
        if not isinstance(value, (str, os.PathLike)) or not PATH_ARGUMENT.search(name):
            continue
        path = os.path.expanduser(os.fspath(value))
        if not os.path.exists(path):
            raise PluginError(
                f"The data class {cls.__name__} would get {name}={os.fspath(value)!r} "
                f"(option 'data_load_kwargs' or the class's default), but {path} does not "
                f"exist (relative paths are taken from {os.getcwd()})."
            )
    print(f"Data class {cls.__name__}: data_load_kwargs and the paths among them checked.")
