"""The valid-convolution U-Net calculator (``architecture = 'unet'``).

Level l applies ``n_convs`` valid convolutions of filter f_l (each removes f_l - 1), then,
except on the last level, pools by p_l (the length must divide exactly). The decoder goes
back up: up-sampling by p_l, the skip of level l cropped symmetrically to the decoder's
length (the crop must be even), concatenation and again ``n_convs`` convolutions. The net's
output is dense (stride 1), but it is translation-equivariant only for shifts that are
multiples of the product S of the pools: valid inputs and exact tiles step by S.

Each axis is simulated on its own, as for CNNs (:mod:`.cnn`); the results are gathered into
one :class:`UNetLevel` record per level.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache
from math import prod
from typing import Any

from ..axes import to_user
from .common import (
    MAX_INPUT,
    ArchitectureError,
    DenseTiling,
    axes_text,
    axis_names,
    check_centred,
    check_dims,
    check_spatial_dims,
    choose_input_size,
    desired_internal,
    is_int,
    layers_internal,
    shape_text,
    valid_near,
)

UNET_UPSAMPLING = ("transposed", "nearest")

MFP_UNET_MESSAGE = (
    "Option 'MFP' is set, but architecture='unet' gives a dense output already: max fragment "
    "pooling is for CNNs only. Use MFP=[] with a U-Net."
)


@dataclass(frozen=True)
class LevelLengths:
    """One level on one axis: the length after its encoder convs and after its decoder convs.

    The bottom level has no decoder convs: its ``decoder`` is its encoder length, which is
    what goes up into the level above.
    """

    encoder: int
    decoder: int


@dataclass(frozen=True)
class AxisWalk:
    """One input length walked through the U-Net on one axis.

    Attributes
    ----------
    levels
        Per level, its lengths (empty if the walk failed).
    failed_level
        The level the length does not fit (None if it fits): it leaves less than 1 voxel,
        pools a length its factor does not divide, or needs an odd skip crop.
    failed_in
        ``'encoder'`` or ``'decoder'``: where that level failed.
    """

    levels: tuple[LevelLengths, ...] = ()
    failed_level: int | None = None
    failed_in: str = ""


def unet_axis_walk(
    size: int, filters: Sequence[int], pools: Sequence[int], n_convs: int
) -> AxisWalk:
    """Walk ``size`` down the encoder and up the decoder on one axis.

    The valid sizes and the error for an invalid one come from this one walk.
    """
    encoder = []
    bottom = len(filters) - 1
    for level, (f, p) in enumerate(zip(filters, pools)):
        size -= n_convs * (f - 1)
        if size < 1 or (level < bottom and size % p):
            return AxisWalk(failed_level=level, failed_in="encoder")
        encoder.append(size)
        size = size if level == bottom else size // p
    decoder = {bottom: encoder[bottom]}
    for level in range(bottom - 1, -1, -1):
        size *= pools[level]
        crop = encoder[level] - size
        size -= n_convs * (filters[level] - 1)
        if crop < 0 or crop % 2 or size < 1:
            return AxisWalk(failed_level=level, failed_in="decoder")
        decoder[level] = size
    return AxisWalk(tuple(LevelLengths(e, decoder[level]) for level, e in enumerate(encoder)))


@lru_cache(maxsize=256)
def unet_valid_sizes(
    filters: tuple[int, ...], pools: tuple[int, ...], n_convs: int
) -> tuple[int, ...]:
    """Every input length in ``range(2, MAX_INPUT)`` a U-Net takes on one axis (cached)."""
    return tuple(
        s
        for s in range(2, MAX_INPUT)
        if unet_axis_walk(s, filters, pools, n_convs).failed_level is None
    )


def _unet_misfit(
    size: int, filters: tuple[int, ...], pools: tuple[int, ...], n_convs: int, axis: int
) -> str:
    """Why ``size`` is no valid U-Net input on one axis, with the valid sizes near it."""
    walk = unet_axis_walk(size, filters, pools, n_convs)
    near = valid_near(unet_valid_sizes(filters, pools, n_convs), size)
    return (
        f"U-Net level {walk.failed_level} ({walk.failed_in}) gets no valid length on spatial "
        f"axis {axis} for the input {size}: every level's convolutions must leave at least 1 "
        f"voxel, every pooled length must divide by its pool factor and every skip crop must be "
        f"even. Valid inputs near it: {near}."
    )


@dataclass(frozen=True)
class UNetLevel:
    """One level of a U-Net, per axis in internal order.

    Attributes
    ----------
    filter
        Filter size of the level's convolutions.
    pool
        Pooling factor below the level (all 1 for the bottom level).
    encoder, decoder
        Lengths after the encoder convs and after the decoder convs (bottom: its encoder).
    """

    filter: tuple[int, ...]
    pool: tuple[int, ...]
    encoder: tuple[int, ...]
    decoder: tuple[int, ...]


@dataclass(frozen=True)
class _AxisChoice:
    """What :func:`unet_from_layers` derives for one axis."""

    input_size: int
    fov: int
    step: int
    levels: tuple[LevelLengths, ...]
    valid: tuple[int, ...]


@dataclass(frozen=True)
class UNetArchitecture:
    """Geometry of a valid-convolution U-Net; implements :class:`~.common.Architecture`.

    Every per-axis tuple is in internal order.

    Attributes
    ----------
    n_dim
        2 or 3.
    input_shape, output_shape
        The chosen patch size and the (dense) output of it.
    fov, offset, int_offset
        ``input - output + 1`` and the margin ``(input - output) / 2`` (the crop is
        symmetric, so ``offset`` equals ``int_offset``).
    step
        The product S of the pools: valid inputs, and the starts of exact prediction tiles,
        step by S.
    valid_inputs
        Per axis, every valid input length below :data:`MAX_INPUT`.
    levels
        Per level its filter, pool and lengths for ``input_shape``.
    n_convs, upsampling, batch_norm
        Convolutions per level, ``'transposed'`` or ``'nearest'``, batch norm after each conv.
    messages
        Info lines for the user (a changed input size).
    """

    n_dim: int
    input_shape: tuple[int, ...]
    output_shape: tuple[int, ...]
    fov: tuple[int, ...]
    offset: tuple[float, ...]
    int_offset: tuple[int, ...]
    step: tuple[int, ...]
    valid_inputs: tuple[tuple[int, ...], ...]
    levels: tuple[UNetLevel, ...]
    n_convs: int
    upsampling: str
    batch_norm: bool
    messages: tuple[str, ...] = ()

    @property
    def stride(self) -> tuple[int, ...]:
        """1 on every axis: the output is dense, so labels are not subsampled."""
        return (1,) * self.n_dim

    @property
    def filters(self) -> tuple[tuple[int, ...], ...]:
        """Filter size per level, per axis."""
        return tuple(level.filter for level in self.levels)

    @property
    def pool(self) -> tuple[tuple[int, ...], ...]:
        """Pooling factor per level, per axis (the bottom level's is 1)."""
        return tuple(level.pool for level in self.levels)

    def layer_shapes_for(self, input_shape: Sequence[int]) -> tuple[UNetLevel, ...]:
        """Per level its lengths for any input shape.

        Raises
        ------
        ArchitectureError
            Naming the level and axis where the input does not fit, and valid sizes near it.
        """
        check_spatial_dims(input_shape, self.n_dim)
        walks = [self._axis_levels(int(n), axis) for axis, n in enumerate(input_shape)]
        return _gather_levels(self.filters, self.pool, walks)

    def _axis_levels(self, size: int, axis: int) -> tuple[LevelLengths, ...]:
        """One axis of :meth:`layer_shapes_for`."""
        filters = tuple(f[axis] for f in self.filters)
        pools = tuple(p[axis] for p in self.pool)
        walk = unet_axis_walk(size, filters, pools, self.n_convs)
        if walk.failed_level is not None:
            raise ArchitectureError(_unet_misfit(size, filters, pools, self.n_convs, axis))
        return walk.levels

    def output_shape_for(self, input_shape: Sequence[int]) -> tuple[int, ...]:
        """The U-Net's (dense) output shape for any valid input shape."""
        return self.layer_shapes_for(input_shape)[0].decoder

    def dense_tiling(self) -> tuple[DenseTiling, ...]:
        """Per axis ``(fov, step, smallest output, lattice)`` of exact tiled prediction.

        Outputs grow by S with the input; tiles must start on multiples of S (the lattice),
        so the smallest tile output is the smallest valid one of at least S.
        """
        rows = []
        for f, s, valid in zip(self.fov, self.step, self.valid_inputs):
            smallest = next(n - (f - 1) for n in valid if n - (f - 1) >= s)
            rows.append(DenseTiling(f, s, smallest, s))
        return tuple(rows)

    def summary_lines(
        self,
        n_ch: int,
        nof_filters: Sequence[int],
        mlp_layers: Sequence[int],
        n_lab: int,
        batch_size: int,
    ) -> list[str]:
        """The start-up summary: per level encoder / decoder sizes and parameters, FOV, offset.

        ``mlp_layers`` is part of the common signature; a U-Net has none.
        """
        norm = ", batch norm" if self.batch_norm else ""
        lines = [
            f"U-Net ({self.n_dim}D, axes ({axes_text(self.n_dim)}), "
            f"{self.n_convs} valid convs per level, {self.upsampling} up-sampling{norm}): "
            f"input {shape_text(self.input_shape)}, {n_ch} channel(s), batch size {batch_size}"
        ]
        counts = unet_param_counts(self, n_ch, nof_filters, n_lab)
        for index, (level, nof) in enumerate(zip(self.levels, nof_filters)):
            text = (
                f"  level {index}: {nof} filters {shape_text(level.filter)} -> "
                f"{shape_text(level.encoder)}"
            )
            if index == len(self.levels) - 1:
                text += " (bottom)"
            else:
                text += f", pool {shape_text(level.pool)}; up -> {shape_text(level.decoder)}"
            lines.append(f"{text}; {counts[index][1]:,} params")
        lines.append(
            f"  output: {n_lab} outputs {shape_text(self.output_shape)} (1x1 conv); "
            f"{counts[-1][1]:,} params"
        )
        lines.append(
            f"FOV {shape_text(self.fov)}, offset {to_user(self.offset)}, output stride 1, "
            f"tiles on the lattice {shape_text(self.step)}"
        )
        lines.append(f"Parameters: {sum(c for _, c in counts):,}")
        return lines


def _gather_levels(
    filters: tuple[tuple[int, ...], ...],
    pool: tuple[tuple[int, ...], ...],
    per_axis: Sequence[tuple[LevelLengths, ...]],
) -> tuple[UNetLevel, ...]:
    """Per-axis walks regrouped into one :class:`UNetLevel` per level."""
    return tuple(
        UNetLevel(
            filter=filters[i],
            pool=pool[i],
            encoder=tuple(axis[i].encoder for axis in per_axis),
            decoder=tuple(axis[i].decoder for axis in per_axis),
        )
        for i in range(len(filters))
    )


def unet_param_counts(
    arch: UNetArchitecture, n_ch: int, nof_filters: Sequence[int], n_lab: int
) -> list[tuple[str, int]]:
    """Weights + biases (+ batch-norm scales and shifts) per level, then the output layer.

    A level has ``n_convs`` convolutions, and below the top level's decoder one up-sampling
    (a transposed convolution of kernel = pool, or a 1x1 convolution after nearest
    up-sampling) from the level below into this level's width; its first decoder conv sees
    the skip and the up-sampled maps concatenated.
    """
    bn = 2 if arch.batch_norm else 0
    counts, n_in = [], n_ch
    last = len(nof_filters) - 1

    def convs(n_first: int, nof: int, f: Sequence[int]) -> int:
        return sum((n * prod(f) + 1 + bn) * nof for n in [n_first] + [nof] * (arch.n_convs - 1))

    for index, (level, nof) in enumerate(zip(arch.levels, nof_filters)):
        total = convs(n_in, nof, level.filter)
        if index < last:
            up = prod(level.pool) if arch.upsampling == "transposed" else 1
            total += nof_filters[index + 1] * nof * up + nof + convs(2 * nof, nof, level.filter)
        counts.append((f"level {index}", total))
        n_in = nof
    counts.append(("output", nof_filters[0] * n_lab + n_lab))
    return counts


def compute_unet_architecture(
    filters: Sequence,
    pool: Sequence,
    desired_input: Any,
    n_dim: int,
    n_convs: int = 2,
    upsampling: str = "transposed",
    batch_norm: bool = False,
    force_center: bool = False,
) -> UNetArchitecture:
    """Compute the geometry of a valid-convolution U-Net from the config values (user order).

    Parameters
    ----------
    filters, pool
        Per level: an int or an (x, y[, z]) list; the last level's pool must be 1.
    desired_input
        As for CNNs: the valid input closest below (the smallest if below all).
    n_convs, upsampling, batch_norm
        Convolutions per level, ``'transposed'`` or ``'nearest'``, batch norm after each conv.
    force_center
        img-img: an even field of view is an error.

    Raises
    ------
    ArchitectureError
        For malformed options, a last pool other than 1, or no valid input size.
    """
    check_dims(filters, pool, n_dim)
    f_int = layers_internal(filters, n_dim, "filters")
    p_int = layers_internal(pool, n_dim, "pool")
    if not f_int:
        raise ArchitectureError("architecture='unet' needs at least one level in 'filters'.")
    if any(p != 1 for p in p_int[-1]):
        raise ArchitectureError(
            f"Option 'pool' is {list(pool)!r}, but the last U-Net level is the bottom of the U "
            f"and is not pooled: its entry must be 1 (e.g. pool=[2, 2, 2, 2, 1])."
        )
    if not is_int(n_convs) or n_convs < 1:
        raise ArchitectureError(f"Option 'unet_n_convs' is {n_convs!r}; it must be an int >= 1.")
    if upsampling not in UNET_UPSAMPLING:
        raise ArchitectureError(
            f"Option 'unet_upsampling' is {upsampling!r}; use one of {', '.join(UNET_UPSAMPLING)}."
        )
    desired = desired_internal(desired_input, n_dim)
    return unet_from_layers(
        n_dim, f_int, p_int, int(n_convs), upsampling, bool(batch_norm), desired, force_center
    )


def unet_from_layers(
    n_dim: int,
    filters: tuple[tuple[int, ...], ...],
    pool: tuple[tuple[int, ...], ...],
    n_convs: int,
    upsampling: str,
    batch_norm: bool,
    desired: Sequence[int | None] | None,
    force_center: bool = False,
) -> UNetArchitecture:
    """The U-Net geometry from internal-order levels (what a built net computes itself)."""
    desired = (None,) * n_dim if desired is None else tuple(desired)
    messages: list[str] = []
    axes = [
        _choose_axis(filters, pool, n_convs, axis, name, desired[axis], force_center, messages)
        for axis, name in enumerate(axis_names(n_dim))
    ]
    levels = _gather_levels(filters, pool, [a.levels for a in axes])
    return UNetArchitecture(
        n_dim=n_dim,
        input_shape=tuple(a.input_size for a in axes),
        output_shape=levels[0].decoder,
        fov=tuple(a.fov for a in axes),
        offset=tuple((a.fov - 1) / 2 for a in axes),
        int_offset=tuple(a.fov // 2 for a in axes),
        step=tuple(a.step for a in axes),
        valid_inputs=tuple(a.valid for a in axes),
        levels=levels,
        n_convs=n_convs,
        upsampling=upsampling,
        batch_norm=batch_norm,
        messages=tuple(messages),
    )


def _choose_axis(
    filters: tuple[tuple[int, ...], ...],
    pool: tuple[tuple[int, ...], ...],
    n_convs: int,
    axis: int,
    name: str,
    desired: int | None,
    force_center: bool,
    messages: list[str],
) -> _AxisChoice:
    """The input size and the geometry of one axis.

    Raises
    ------
    ArchitectureError
        If no input size fits the axis, or (``force_center``) its field of view is even.
    """
    fa, pa = tuple(f[axis] for f in filters), tuple(p[axis] for p in pool)
    valid = unet_valid_sizes(fa, pa, n_convs)
    if not valid:
        probe = desired or MAX_INPUT - 1
        level = unet_axis_walk(probe, fa, pa, n_convs).failed_level
        raise ArchitectureError(
            f"No input size below {MAX_INPUT} fits the U-Net on axis {name} (filters "
            f"{list(fa)}, pool {list(pa)}, {n_convs} convs per level): for the input "
            f"{probe}, level {level} fails; some level always ends below 1 voxel, pools a "
            f"length its factor does not divide, or needs an odd skip crop. Change "
            f"'filters', 'pool' or 'unet_n_convs'."
        )
    size = choose_input_size(valid, desired, name, None, messages)
    levels = unet_axis_walk(size, fa, pa, n_convs).levels
    fov = size - levels[0].decoder + 1
    check_centred(fov, name, force_center, list(filters), list(pool))
    return _AxisChoice(size, fov, prod(pa), levels, valid)
