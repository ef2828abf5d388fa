"""The data checks of ``elektronn-train --dry-run``: what training would refuse, found first.

A dry run reads no voxels of the image volumes: each cube is opened as for
``data_in_memory=False`` (shapes, registration, down-sampling, border treatment), so the input
patch is checked against every cube exactly as training checks it. A plug-in data class is
imported and its ``data_load_kwargs`` are checked against its constructor, and the paths
among them (arguments named ``*path*``, ``*file*``, ``*dir*``) must exist.
"""

from __future__ import annotations

import os
import re
from collections.abc import Sequence
from typing import Any

from .errors import DataError
from .geometry import PatchGeometry
from .loading import Volume
from .ondisk import open_disk_cube
from .plugins import PluginError, check_load_kwargs, load_data_class
from .registration import summarised_label_cuts
from .sampling import fitting_orientations

PATH_ARGUMENT = re.compile(r"path|file|dir|folder", re.IGNORECASE)


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
    geometry = PatchGeometry.from_net(config.n_dim, arch.input_shape, arch.int_offset,
                                      arch.stride)  # fmt: skip
    if config.mode == "img-scalar":
        geometry = PatchGeometry(config.n_dim, geometry.patch, (0, 0, 0), (1, 1, 1))
    all_orientations = (config.n_dim == 2 and config.mode == "img-img"
                        and not config.anisotropic_data)  # fmt: skip
    with summarised_label_cuts(len(config.d_files)):
        for d_file, l_file in zip(config.d_files, config.l_files, strict=True):
            cube = open_disk_cube(d_file, l_file, config.data_path, config.label_path,
                                  mode=config.mode, target=config.target, geometry=geometry,
                                  zchxy_order=config.zchxy_order,
                                  downsample_xy=config.downsample_xy,
                                  border_mode=config.border_mode)  # fmt: skip
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
