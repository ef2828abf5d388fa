"""``ImageData``: training batches of image patches (img-img and img-scalar modes).

It composes the small pieces of this package: :mod:`.loading` (read, register, convert) or
:mod:`.ondisk` (the same, box by box, for data larger than memory), :mod:`.sampling` (cube,
orientation, position), :mod:`.warping`, :mod:`.flips` and :mod:`.grey`. Batches follow
``docs/internals.md``: data ``(bs, ch, x, y)`` / ``(bs, ch, z, x, y)`` float32; labels
``(bs, x', y')`` / ``(bs, z', x', y')`` (img-img) or ``(bs,)`` (img-scalar); negative labels
mean "ignore". ``target='affinity'`` reads object IDs and turns the augmented ID patch into
float32 targets ``(bs, n_lab, x', y')`` / ``(bs, n_lab, z', x', y')``: one channel per affinity
offset (:mod:`.affinities`), then the local shape descriptors (:mod:`.lsd`), -1 where masked.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Iterator, Sequence
from typing import Any

import numpy as np

from ..axes import to_internal, to_user
from ..config.options import MODES, PRE_PROCESSES, TARGETS
from ..config.targets import affinity_channels, checked_offsets
from .affinities import affinity_target
from .errors import DataError
from .flips import check_flippable, random_flip
from .geometry import PatchGeometry
from .grey import grey_augment
from .loading import (
    Volume,
    check_intensity_scales,
    check_n_lab,
    detect_n_lab,
    load_cube,
    standardise,
)
from .lsd import local_shape_descriptors
from .ondisk import open_disk_cube
from .preflight import cube_orientations
from .registration import summarised_label_cuts
from .sampling import (
    ORIENTATIONS,
    choose,
    cut_boxes,
    cut_ranges,
    random_start,
    sampling_probabilities,
)
from .source import DataSource
from .warping import (
    IDENTITY_WARP,
    ElasticSettings,
    elastic_displacement,
    elastic_settings,
    sample_warp_params,
    source_box,
    source_coordinates,
    start_range,
    warp_patch,
)

MAX_ATTEMPTS = 10
"""Patches drawn per example at most under ``ignore_thresh``; the last one is kept."""

IMAGE_MODES = tuple(mode for mode in MODES if mode.startswith("img-"))
"""The modes :class:`ImageData` serves (vect-scalar data comes from a data class)."""


class ImageData(DataSource):
    """Image volumes with labels, cut into randomly augmented training patches.

    Parameters
    ----------
    d_files, l_files
        ``(h5 file name, dataset key)`` pairs of images and labels, in the same order.
    data_path, label_path
        Folders of the image and label files (joined with ``os.path.join``).
    n_dim
        2 or 3: a 2D net trains on slices of the volumes.
    patch_shape, int_offset, stride
        The net's input size, integer offset (floor of FOV/2) and output stride in internal
        order ((x, y) or (z, x, y)), e.g. from the architecture calculator.
    mode
        ``'img-img'`` (label images) or ``'img-scalar'`` (one label per 2D slice / 3D cube).
    target
        ``'nll'`` (int16 class labels), ``'regression'`` (float32 labels) or ``'affinity'``
        (integer object IDs; batches carry their affinities and descriptors).
    affinity_offsets
        ``target='affinity'``: one offset per affinity channel in user order ((x, y) or
        (x, y, z)); None: the nearest neighbours.
    unlabelled_id
        ``target='affinity'``: the object ID of unlabelled voxels (negative IDs are too).
    lsd_sigma
        ``target='affinity'``: window of the local shape descriptors in voxels, one value or
        one per axis in user order; None: no descriptors.
    n_lab
        Number of classes; None detects it as the largest label + 1.
    valid_cubes
        Indices into ``d_files`` of cubes used only for validation.
    cube_prios
        One relative sampling priority per entry of ``d_files`` (validation cubes' entries are
        not used); None samples cubes proportional to their size.
    zchxy_order
        The h5 data is stored as ``(z, (ch,) x, y)`` instead of ``((ch,) x, y, z)``.
    pre_process
        None or ``'standardise'`` (zero mean, unit std over all voxels; see ``mean``/``std``).
    downsample_xy
        Down-sample x and y by this integer factor at load (False or 1: off).
    anisotropic_data
        2D nets cut slices only across z when True, else across all three axes; 3D nets
        permute z with x and y in flips only when False.
    upright_x
        Flips keep the direction of x (only y, and z in 3D, are mirrored).
    border_mode
        img-scalar only: how images of another size than the patch are treated.
    seed
        Seed of this instance's random stream (None: fresh entropy). Background workers get
        independent streams through :meth:`reseed`.
    data_in_memory
        False keeps the volumes on disk and reads only each patch's box (:mod:`.ondisk`, which
        lists the options that then work differently or raise); the patches are the same.

    Attributes
    ----------
    n_ch, n_lab, example_shape
        Channels, classes, and the shape of one example in a data batch (``(ch, *patch)``).
    n_successful_warp, n_failed_warp
        Warps done, and warps that needed more than the cube had (an unwarped patch was cut).
    """

    def __init__(
        self,
        d_files: Sequence[tuple[str, str]],
        l_files: Sequence[tuple[str, str]],
        *,
        data_path: str = "",
        label_path: str = "",
        n_dim: int,
        patch_shape: Sequence[int],
        int_offset: Sequence[int] | None = None,
        stride: Sequence[int] | None = None,
        mode: str = "img-img",
        target: str = "nll",
        n_lab: int | None = None,
        valid_cubes: Sequence[int] = (),
        cube_prios: Sequence[float] | None = None,
        zchxy_order: bool = False,
        pre_process: str | None = None,
        downsample_xy: bool | int = False,
        anisotropic_data: bool = True,
        upright_x: bool = False,
        border_mode: str = "crop",
        seed: int | np.random.SeedSequence | None = None,
        data_in_memory: bool = True,
        affinity_offsets: Sequence[Sequence[int]] | None = None,
        unlabelled_id: int = 0,
        lsd_sigma: float | Sequence[float] | None = None,
    ) -> None:
        _check_choice("mode", mode, IMAGE_MODES)
        _check_choice("target", target, TARGETS)
        _check_choice("pre_process", pre_process, PRE_PROCESSES)
        if len(d_files) != len(l_files):
            raise DataError(
                f"d_files has {len(d_files)} entries but l_files has {len(l_files)}; they must "
                f"list images and their labels pairwise, in the same order."
            )
        if not d_files:
            raise DataError("d_files is empty: give at least one (file, key) pair of images.")
        if mode == "img-scalar" and target == "regression":
            raise DataError("img-scalar mode trains classes: use target='nll'.")
        self.valid_cubes = _check_valid_cubes(valid_cubes, len(d_files))
        self.train_cubes = [k for k in range(len(d_files)) if k not in self.valid_cubes]
        if not self.train_cubes:
            raise DataError(
                f"valid_cubes {list(valid_cubes)} takes every cube, so none is left for "
                f"training; keep at least one entry of d_files out of valid_cubes."
            )
        _check_prios(cube_prios, len(d_files), self.train_cubes)
        self.mode, self.target = mode, target
        self.n_dim = n_dim
        self.geometry = PatchGeometry.from_net(n_dim, patch_shape, int_offset, stride)
        if mode == "img-scalar":
            self.geometry = PatchGeometry(n_dim, self.geometry.patch, (0, 0, 0), (1, 1, 1))
        # the net's labels; ``geometry`` cuts a label patch grown by ``margin`` for affinities
        self.output_geometry = self.geometry
        self.margin = (0, 0, 0)
        self.patch_shape = tuple(int(p) for p in patch_shape)
        self.offsets: list[tuple[int, ...]] = []
        self.lsd_sigma: tuple[float, ...] | None = None
        if target == "affinity":
            self._set_affinity_targets(affinity_offsets, lsd_sigma)
        self.anisotropic_data = bool(anisotropic_data)
        self.upright_x = bool(upright_x)
        self.rng = np.random.default_rng(seed)
        self.n_successful_warp = 0
        self.n_failed_warp = 0

        load = load_cube if data_in_memory else open_disk_cube
        with summarised_label_cuts(len(d_files)):
            self.cubes: list[Volume] = [
                load(
                    d,
                    l,
                    data_path,
                    label_path,
                    mode=mode,
                    target=target,
                    geometry=self.geometry,
                    zchxy_order=zchxy_order,
                    downsample_xy=downsample_xy,
                    border_mode=border_mode,
                    unlabelled_id=unlabelled_id,
                )
                for d, l in zip(d_files, l_files, strict=True)
            ]
        self.n_ch = self.cubes[0].n_ch
        for cube in self.cubes:
            if cube.n_ch != self.n_ch:
                raise DataError(
                    f"{cube.name} has {cube.n_ch} channels, but {self.cubes[0].name} "
                    f"has {self.n_ch}; all images must have the same channels."
                )
        check_intensity_scales(self.cubes)
        if target == "affinity" and n_lab is None:
            n_lab = affinity_channels(len(self.offsets), n_dim, lsd_sigma)
        self.n_lab = detect_n_lab(self.cubes, target) if n_lab is None else int(n_lab)
        check_n_lab(self.cubes, self.n_lab, target, l_files)
        self.pre_process = pre_process
        self.mean, self.std = standardise(self.cubes) if pre_process else (0.0, 1.0)
        for cube in self.cubes:
            self._orientations_of(cube)
        self._probabilities = {
            "train": self._cube_probabilities(self.train_cubes, cube_prios),
            "valid": self._cube_probabilities(self.valid_cubes, None),
        }

    @classmethod
    def from_config(cls, config: Any) -> ImageData:
        """Build it from a loaded config (option names of the specification).

        ``config.arch`` supplies patch size, offset and stride; paths are already absolute.
        """
        if config.pre_process == "standardise" and config.grey_augment_channels:
            warnings.warn(
                "pre_process='standardise' and grey_augment_channels are both set: grey "
                "augmentation clips to [0, 1], which cuts standardised data; consider "
                "grey_augment_channels=[].",
                stacklevel=2,
            )
        arch = config.arch
        return cls(
            config.d_files,
            config.l_files,
            data_path=config.data_path,
            label_path=config.label_path,
            n_dim=config.n_dim,
            patch_shape=arch.input_shape,
            int_offset=arch.int_offset,
            stride=arch.stride,
            mode=config.mode,
            target=config.target,
            n_lab=config.n_lab,
            valid_cubes=config.valid_cubes,
            cube_prios=config.cube_prios,
            zchxy_order=config.zchxy_order,
            pre_process=config.pre_process,
            downsample_xy=config.downsample_xy,
            anisotropic_data=config.anisotropic_data,
            upright_x=config.upright_x,
            border_mode=config.border_mode,
            data_in_memory=config.data_in_memory,
            affinity_offsets=config.affinity_offsets,
            unlabelled_id=config.unlabelled_id,
            lsd_sigma=config.lsd_sigma,
        )

    # -- set-up helpers ------------------------------------------------------------------

    def _set_affinity_targets(
        self,
        offsets: Sequence[Sequence[int]] | None,
        lsd_sigma: float | Sequence[float] | None,
    ) -> None:
        """Offsets and descriptor window in the label patch's axes (2D: (x, y)); an offset
        that reaches across the whole label patch would have no pair to train."""
        if self.mode != "img-img":
            raise DataError(f"target='affinity' needs mode 'img-img', not {self.mode!r}.")
        region = self.output_geometry.label_shape(strided=False)
        for offset in checked_offsets(offsets, self.n_dim):
            internal = to_internal(offset)
            if any(abs(o) >= n for o, n in zip(internal, region, strict=True)):
                raise DataError(
                    f"The affinity offset {list(offset)} (x, y{', z' if self.n_dim == 3 else ''})"
                    f" is as long as the label patch {list(to_user(region))} or longer, so "
                    f"no voxel pair of it lies in a patch; use shorter offsets or a larger "
                    f"desired_input."
                )
            self.offsets.append(internal)
        if lsd_sigma is not None:
            sigmas = lsd_sigma if isinstance(lsd_sigma, (list, tuple)) else [lsd_sigma] * self.n_dim
            self.lsd_sigma = to_internal([float(s) for s in sigmas])
        self._grow_label_patch()

    def _grow_label_patch(self) -> None:
        """Cut ID patches larger than the net's labels by the offsets' (and the descriptor
        window's) reach, as far as the input patch allows, so that pairs at the label patch's
        edge are trained rather than masked; :meth:`_object_targets` crops the margin again.

        The margin is equal on axes that flips may swap, so the patch stays flippable.
        """
        reach = [max(abs(o[a]) for o in self.offsets) for a in range(self.n_dim)]
        if self.lsd_sigma is not None:
            reach = [max(r, math.ceil(3 * s)) for r, s in zip(reach, self.lsd_sigma, strict=True)]
        zxy = reach if self.n_dim == 3 else [0, *reach]
        net = self.output_geometry
        if net.cubic:
            zxy = [max(zxy)] * 3
        elif net.xy_symmetric:
            zxy = [zxy[0], max(zxy[1:]), max(zxy[1:])]
        self.margin = tuple(min(r, o) for r, o in zip(zxy, net.offset, strict=True))
        offset = tuple(o - m for o, m in zip(net.offset, self.margin, strict=True))
        self.geometry = PatchGeometry(self.n_dim, net.patch, offset, net.stride)

    def _orientations_of(self, cube: Volume) -> tuple[tuple[int, int, int], ...]:
        """The slicing orientations in which the patch fits this cube, under the settings."""
        return cube_orientations(
            cube,
            self.geometry,
            self.patch_shape,
            self.n_dim == 2 and self.mode == "img-img" and not self.anisotropic_data,
        )

    def _cube_probabilities(
        self, indices: list[int], prios: Sequence[float] | None
    ) -> np.ndarray | None:
        """Sampling probabilities of these cubes: by priority, else by size."""
        if not indices:
            return None
        if prios is None:
            return sampling_probabilities([self.cubes[k].size for k in indices])
        return sampling_probabilities([float(prios[k]) for k in indices])

    # -- properties ----------------------------------------------------------------------

    @property
    def example_shape(self) -> tuple[int, ...]:
        """Shape of one example in a data batch: ``(ch, x, y)`` or ``(ch, z, x, y)``."""
        return (self.n_ch, *self.geometry.squeeze(self.geometry.patch))

    def has_source(self, source: str) -> bool:
        """Whether batches from ``source`` exist ('valid' needs validation cubes)."""
        return source == "train" or (source == "valid" and bool(self.valid_cubes))

    def input_standardisation(self) -> tuple[float, float] | None:
        """The ``(mean, std)`` of ``pre_process='standardise'`` (None without it)."""
        return (float(self.mean), float(self.std)) if self.pre_process else None

    def training_labels(self) -> Iterator[np.ndarray]:
        """The label slabs of the training cubes (one at a time, also for on-disk cubes)."""
        return (slab for k in self.train_cubes for slab in self.cubes[k].label_slabs())

    # -- batches -------------------------------------------------------------------------

    def getbatch(
        self,
        batch_size: int = 1,
        source: str = "train",
        strided: bool = True,
        flip: bool = True,
        grey_augment_channels: Sequence[int] = (),
        warp_on: bool | float = False,
        ignore_thresh: float = 0.0,
        ret_info: bool = False,
        ret_example_weights: bool = False,
        elastic: ElasticSettings | None = None,
    ) -> tuple[np.ndarray, ...]:
        """A batch of random patches.

        Parameters
        ----------
        batch_size
            Number of examples.
        source
            ``'train'`` or ``'valid'`` cubes. Warping and grey augmentation apply to training
            batches only.
        strided
            Take every ``stride``-th label (nets without MFP output one value per stride).
        flip
            Random flips / 90° rotations / mirrors (needs a square x-y patch unless
            ``upright_x``).
        grey_augment_channels
            Channels to grey-augment.
        warp_on
            True, or the fraction of examples to warp.
        elastic
            Elastic deformation of training examples, composed with the warp (see
            :mod:`.warping`); None (the default) draws nothing, so batches are as without it.
        ignore_thresh
            Redraw a patch (at most ``MAX_ATTEMPTS`` times) whose fraction of negative labels
            exceeds this; 0 disables. Cubes with classes flagged "not present" are exempt.
        ret_info
            Append the lazy-label flags ``info1, info2`` (``(bs, n_lab)`` int16).
        ret_example_weights
            Append example weights from the last channel (a previous prediction), img-img only.

        Returns
        -------
        ``(data, labels[, info1, info2][, example_weights])``.
        """
        probabilities = self._check_batch_args(
            batch_size, source, flip, grey_augment_channels, ret_example_weights
        )
        geometry, train = self.output_geometry, source == "train"
        warp = (1.0 if warp_on is True else float(warp_on or 0.0)) if train else 0.0
        elastic = elastic if train else None
        data = np.empty((batch_size, *self.example_shape), np.float32)
        scalar = self.mode == "img-scalar"
        label_shape = () if scalar else geometry.label_shape(strided)
        if self.target == "affinity":
            labels = np.empty((batch_size, self.n_lab, *label_shape), np.float32)
        else:
            labels = np.empty((batch_size, *label_shape), self.cubes[0].label_dtype)
        info = np.empty((2, batch_size, self.n_lab), np.int16)
        weights = np.empty((batch_size, *label_shape), np.float32)
        steps = geometry.stride_slices if strided else (slice(None),) * 3
        for i in range(batch_size):
            cube, patch, lab = self._draw(
                self.train_cubes if train else self.valid_cubes,
                probabilities,
                warp,
                flip,
                ignore_thresh,
                steps,
                elastic,
            )
            data[i] = patch.reshape(self.example_shape)
            if scalar:
                labels[i] = lab
            elif self.target == "affinity":
                labels[i] = self._object_targets(lab)[(slice(None), *geometry.squeeze(steps))]
            else:
                labels[i] = lab[steps].reshape(label_shape)
                if ret_example_weights:
                    weights[i] = _example_weights(lab, patch[-1][geometry.label_region])[
                        steps
                    ].reshape(label_shape)
            info[:, i] = cube.info
            if train and grey_augment_channels:
                grey_augment(self.rng, data[i], grey_augment_channels)
        batch: tuple[np.ndarray, ...] = (data, labels)
        if ret_info:
            batch += (info[0], info[1])
        if ret_example_weights:
            batch += (weights,)
        return batch

    def _check_batch_args(
        self,
        batch_size: int,
        source: str,
        flip: bool,
        grey_augment_channels: Sequence[int],
        ret_example_weights: bool,
    ) -> np.ndarray:
        if batch_size < 1:
            raise DataError(f"batch_size is {batch_size}; it must be at least 1.")
        if source not in ("train", "valid"):
            raise DataError(f"source is {source!r}; use 'train' or 'valid'.")
        if self._probabilities[source] is None:
            raise DataError(
                "A validation batch was requested, but valid_cubes is empty; check "
                "data.has_source('valid') first."
            )
        if flip:
            check_flippable(self.geometry, self.upright_x)
        bad = [c for c in grey_augment_channels if not 0 <= c < self.n_ch]
        if bad:
            raise DataError(
                f"grey_augment_channels {list(grey_augment_channels)} names channels {bad}, but "
                f"the images have channels 0..{self.n_ch - 1}."
            )
        if ret_example_weights and self.mode != "img-img":
            raise DataError("use_example_weights needs mode 'img-img'.")
        if ret_example_weights and self.target == "affinity":
            raise DataError(
                "use_example_weights weighs voxels by a previous class prediction; it does not "
                "apply to target='affinity'. Set use_example_weights = False."
            )
        return self._probabilities[source]

    def _draw(
        self,
        indices: list[int],
        probabilities: np.ndarray,
        warp: float,
        flip: bool,
        ignore_thresh: float,
        steps: tuple[slice, ...],
        elastic: ElasticSettings | None = None,
    ) -> tuple[Volume, np.ndarray, np.ndarray]:
        """One flipped example and its cube; redrawn while it is too unlabelled (bounded)."""
        scalar = self.mode == "img-scalar"
        for _attempt in range(MAX_ATTEMPTS):
            cube = self.cubes[indices[choose(self.rng, probabilities)]]
            patch, lab = self._example(cube, warp, elastic)
            if flip:
                patch, flipped = random_flip(
                    self.rng,
                    patch,
                    None if scalar else lab,
                    self.geometry,
                    self.anisotropic_data,
                    self.upright_x,
                )
                lab = lab if scalar else flipped
            negative = lab < 0 if scalar else lab[steps] < 0
            if not ignore_thresh or cube.info[1].any() or negative.mean() <= ignore_thresh:
                break
        return cube, patch, lab

    def _example(
        self, cube: Volume, warp: float, elastic: ElasticSettings | None = None
    ) -> tuple[np.ndarray, np.ndarray]:
        """One unflipped example: data ``(ch, dz, dx, dy)`` and its unstrided labels.

        Only the patch's box is read from the cube (the warp's source box when warped), which
        is all an on-disk cube reads from its file. For img-scalar the label is the scalar of
        the slice (2D) or of the cube (3D).
        """
        scalar = self.mode == "img-scalar"
        if scalar:
            order = ORIENTATIONS[0]
        else:
            orientations = self._orientations_of(cube)  # anisotropic_data may change at runtime
            order = orientations[int(self.rng.integers(len(orientations)))]
        shape = tuple(cube.shape[a] for a in order)
        warped = bool(warp) and self.rng.random() < warp
        deformed = elastic is not None and self.rng.random() < elastic.rate
        if warped or deformed:
            params = sample_warp_params(self.rng, self.n_dim) if warped else IDENTITY_WARP
            patch_shape = self.geometry.patch
            field = elastic_displacement(self.rng, patch_shape, elastic) if deformed else None
            coords = source_coordinates(params, patch_shape, field)
            ranges = start_range(coords, shape)
            if ranges is not None:
                self.n_successful_warp += 1
                start = random_start(self.rng, ranges)
                box = source_box(coords, start, shape)
                image = cube.read_image(order, box)
                labels = None if scalar else cube.read_labels(order, box)
                origin = tuple(s.start for s in box)
                patch, lab = warp_patch(image, labels, coords, start, self.geometry, origin)
                return patch, self._scalar_label(cube, start) if scalar else lab
            self.n_failed_warp += 1
        start = random_start(self.rng, cut_ranges(shape, self.geometry.patch))
        window, region = cut_boxes(start, self.geometry)
        patch = cube.read_image(order, window)
        return patch, self._scalar_label(cube, start) if scalar else cube.read_labels(order, region)

    def _object_targets(self, ids: np.ndarray) -> np.ndarray:
        """Affinities (and descriptors) of one augmented, unstrided ID label patch.

        They are computed at full resolution and strided afterwards, so an output voxel's
        affinity pairs it with the voxel ``offset`` input voxels away, whatever the stride.
        """
        ids = ids.reshape(self.geometry.squeeze(ids.shape))
        parts = [affinity_target(ids, self.offsets)]
        if self.lsd_sigma is not None:
            parts.append(local_shape_descriptors(ids, self.lsd_sigma))
        margin = self.geometry.squeeze(self.margin)
        crop = tuple(slice(m, n - m) for m, n in zip(margin, ids.shape, strict=True))
        return np.concatenate(parts)[(slice(None), *crop)]

    def _scalar_label(self, cube: Volume, start: tuple[int, int, int]) -> np.ndarray:
        return cube.labels[start[0] if self.n_dim == 2 else 0]


def _example_weights(labels: np.ndarray, prediction: np.ndarray) -> np.ndarray:
    """Boosting-like weights (reference §3.6) from the labels and a previous prediction.

    With ``d = label - prediction``: ``w = 1 + 2(-d - 0.1)[d < -0.1] + 2(d - 0.05)[d > 0.05]``,
    i.e. examples the previous net got wrong weigh more.
    """
    d = labels.astype(np.float32) - prediction
    return (1.0 + 2.0 * (-d - 0.1) * (d < -0.1) + 2.0 * (d - 0.05) * (d > 0.05)).astype(np.float32)


def _check_choice(name: str, value: object, choices: tuple) -> None:
    if value not in choices:
        raise DataError(f"{name} is {value!r}; use one of {', '.join(map(repr, choices))}.")


def _check_prios(prios: Sequence[float] | None, n_files: int, train_cubes: list[int]) -> None:
    if prios is None:
        return
    if len(prios) != n_files:
        raise DataError(
            f"cube_prios has {len(prios)} entries but d_files has {n_files}; give one "
            f"priority per entry of d_files (those of validation cubes are ignored)."
        )
    weights = [float(prios[k]) for k in train_cubes]
    if not all(np.isfinite(w) and w >= 0 for w in weights) or sum(weights) <= 0:
        raise DataError(
            f"cube_prios {list(prios)} must be non-negative numbers, and the training cubes "
            f"{train_cubes} need a positive total."
        )


def _check_valid_cubes(valid_cubes: Sequence[int], n_cubes: int) -> list[int]:
    bad = [k for k in valid_cubes if not (isinstance(k, (int, np.integer)) and 0 <= k < n_cubes)]
    if bad:
        raise DataError(
            f"valid_cubes {list(valid_cubes)} contains {bad}, but there are {n_cubes} cubes in "
            f"d_files (indices 0..{n_cubes - 1})."
        )
    return sorted(set(int(k) for k in valid_cubes))


def batch_kwargs_from_config(config: Any) -> dict[str, Any]:
    """The ``getbatch`` keyword arguments of training batches for a loaded config.

    ``batch_size`` is not included: the trainer passes it (as for ``data_batch_kwargs``).
    Labels are strided unless the net uses max fragment pooling (then its output is dense).
    """
    return {
        "source": "train",
        "strided": not any(config.MFP),
        "flip": config.flip_data,
        "grey_augment_channels": list(config.grey_augment_channels),
        "warp_on": config.warp_on,
        "elastic": elastic_settings(
            config.elastic_deform, config.elastic_spacing, config.elastic_strength, config.n_dim
        ),
        "ignore_thresh": config.example_ignore_threshold,
        "ret_info": config.lazy_labels,
        "ret_example_weights": config.use_example_weights,
    }
