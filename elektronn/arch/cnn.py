"""The CNN calculator: field of view, valid input sizes, offsets, strides, MFP geometry.

Plain Python (no torch, not even numpy), and the single source of truth for a CNN's sizes:
the config checks, the data pipeline, the network builder, previews and dense prediction all
take them from here, so that patches, labels and network outputs can never disagree.

Each spatial axis is computed independently (reference §2.2). For a conv layer of filter f
followed by pooling p on one axis:

* the valid convolution gives ``out = in - f + 1``, which must be positive;
* plain pooling needs ``out % p == 0`` and gives ``out // p``;
* max fragment pooling (MFP) crops the conv output to ``[o : out - p + o + 1]`` for each of
  the p window offsets o and pools each crop, so every fragment has length
  ``(out - p + 1) // p``. All fragments are only equally long if ``(out - p + 1) % p == 0``,
  i.e. ``(out + 1) % p == 0``. The original demanded ``out % p == 1``, which is the same rule
  for p = 2 but lets unequal fragments through for p = 3 (reference §2.7).

The field of view after layer k is ``S_k + sum_{i<=k} (f_i - 1) S_{i-1}`` with
``S_i = p_1 ... p_i``. Without MFP the valid inputs are ``FOV + (n - 1) S`` for n outputs.
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
    layers_internal,
    shape_text,
    valid_near,
)

LayerSizes = tuple[tuple[int, int], ...]


# --- one axis -------------------------------------------------------------------------------


def field_of_view(filters: Sequence[int], pools: Sequence[int]) -> int:
    """Receptive field of the last layer on one axis, from the closed form of reference §2.2.

    The 1x1 output layer added after the user's layers does not widen it.
    """
    fov, stride = 1, 1
    for f, p in zip(filters, pools):
        fov += (f - 1) * stride
        stride *= p
    return fov + stride - 1


def pooled_size(size: int, f: int, p: int, mfp: bool) -> int | None:
    """Length after one conv layer and its pooling on one axis, or None if ``size`` is invalid.

    With MFP the length is that of one fragment; the fragments must all be equally long, or
    they could not be stacked into one batch (see the module docstring).
    """
    out = size - f + 1
    if out <= 0:
        return None
    if p == 1:
        return out
    if mfp:
        fragment = out - p + 1
        return fragment // p if fragment > 0 and fragment % p == 0 else None
    return out // p if out % p == 0 else None


def _walk_layers(
    size: int, filters: Sequence[int], pools: Sequence[int], mfp: Sequence[bool]
) -> tuple[list[tuple[int, int]], int]:
    """Per layer ``(unpooled, pooled)`` lengths up to the first layer ``size`` does not fit.

    Returns the lengths and the index of that layer (``len(filters)`` when all fit), so that
    both the list of valid sizes and the error for an invalid one come from the same walk.
    """
    sizes: list[tuple[int, int]] = []
    for layer, (f, p, m) in enumerate(zip(filters, pools, mfp)):
        pooled = pooled_size(size, f, p, m)
        if pooled is None:
            return sizes, layer
        sizes.append((size - f + 1, pooled))
        size = pooled
    return sizes, len(sizes)


def layer_sizes(
    size: int, filters: Sequence[int], pools: Sequence[int], mfp: Sequence[bool]
) -> LayerSizes | None:
    """Per layer ``(unpooled, pooled)`` lengths on one axis, or None if ``size`` is invalid."""
    sizes, failed = _walk_layers(size, filters, pools, mfp)
    return tuple(sizes) if failed == len(filters) else None


def _misfit_message(
    size: int, filters: tuple[int, ...], pools: tuple[int, ...], mfp: tuple[bool, ...], axis: int
) -> str:
    """Why ``size`` is no valid input on one axis: the failing layer and the nearest valid sizes."""
    sizes, layer = _walk_layers(size, filters, pools, mfp)
    length = sizes[-1][1] if sizes else size
    f, p = filters[layer], pools[layer]
    near = valid_near(valid_input_sizes(filters, pools, mfp), size)
    if length - f + 1 < 1:
        return (
            f"conv layer {layer}: input length {length} along spatial axis {axis} is smaller "
            f"than the filter ({f}); the input ({size}) is too small for this net (valid input "
            f"sizes near it: {near})."
        )
    out = length - f + 1
    if mfp[layer]:
        return (
            f"MFP: conv layer {layer} outputs length {out} along spatial axis {axis}, but max "
            f"fragment pooling by {p} needs (length + 1) divisible by {p}. The input ({size}) is "
            f"not an MFP-valid size: use fov - 1 + k*stride per axis (k >= 1), e.g. {near}."
        )
    return (
        f"conv layer {layer}: the conv output has length {out} along spatial axis {axis}, which "
        f"is not divisible by the pooling factor {p}. The input ({size}) is not a valid input of "
        f"this net; use one that the architecture calculator lists (near it: {near})."
    )


@lru_cache(maxsize=256)
def valid_input_sizes(
    filters: tuple[int, ...], pools: tuple[int, ...], mfp: tuple[bool, ...]
) -> tuple[int, ...]:
    """Every input length in ``range(2, MAX_INPUT)`` that passes all layers on one axis.

    Found by simulating the layers rather than by a closed form, because partial MFP and
    anisotropic pools make the closed forms piecewise. Cached: isotropic axes and repeated
    config checks ask for the same lists.
    """
    return tuple(s for s in range(2, MAX_INPUT) if layer_sizes(s, filters, pools, mfp) is not None)


@dataclass(frozen=True)
class _AxisGeometry:
    """Everything :func:`compute_architecture` derives for one axis."""

    input_size: int
    fov: int
    stride: int
    mfp_stride: int
    layers: LayerSizes
    valid: tuple[int, ...]

    @property
    def output_size(self) -> int:
        """Net output length (per fragment); the input itself for a net without conv layers."""
        return self.layers[-1][1] if self.layers else self.input_size


def _compute_axis(
    filters: tuple[int, ...],
    pools: tuple[int, ...],
    mfp: tuple[bool, ...],
    desired: int | None,
    axis: str,
    border_mode: str | None,
    messages: list[str],
) -> _AxisGeometry:
    """The independent 1-D calculation of reference §2.2 for one axis."""
    valid = valid_input_sizes(filters, pools, mfp)
    if not valid:
        raise ArchitectureError(
            f"No input size below {MAX_INPUT} fits the layers on axis {axis} (filters "
            f"{list(filters)}, pool {list(pools)}, MFP {list(mfp)}): every size leaves a "
            f"pooling layer with a length its factor does not divide. Change 'filters' or 'pool'."
        )
    size = choose_input_size(valid, desired, axis, border_mode, messages)
    return _AxisGeometry(
        input_size=size,
        fov=field_of_view(filters, pools),
        stride=prod(pools),
        mfp_stride=prod(p for p, m in zip(pools, mfp) if m),
        layers=layer_sizes(size, filters, pools, mfp),
        valid=valid,
    )


# --- the whole net --------------------------------------------------------------------------


@dataclass(frozen=True)
class CNNArchitecture:
    """Geometry of a CNN; every per-axis tuple is in internal order ((x, y) or (z, x, y)).

    Implements :class:`~.common.Architecture`.

    Attributes
    ----------
    n_dim
        2 or 3.
    input_shape
        The chosen patch size.
    fov, offset, int_offset
        Field of view, ``fov / 2`` and its floor: the margin between an input patch and the
        labels its outputs predict.
    stride
        Total output stride S of the net without MFP (product of the pools).
    output_shape
        Net output per MFP fragment (the whole output without MFP).
    mfp_stride
        Product of the pools of the MFP layers: the reassembled output is that much denser.
    dense_output_shape
        ``output_shape * mfp_stride``: the output after reassembling the fragments.
    valid_inputs
        Per axis, every valid input length below :data:`MAX_INPUT` (tuples, so the
        architecture stays immutable and hashable).
    filters, pool
        Per conv layer, per axis.
    mfp
        Per conv layer: whether it uses max fragment pooling.
    layer_shapes
        Per conv layer, per axis: ``(unpooled, pooled)`` lengths (pooled = per fragment).
    messages
        Info and warning lines for the user (changed input sizes, uncentred FOV).
    """

    n_dim: int
    input_shape: tuple[int, ...]
    fov: tuple[int, ...]
    offset: tuple[float, ...]
    int_offset: tuple[int, ...]
    stride: tuple[int, ...]
    output_shape: tuple[int, ...]
    mfp_stride: tuple[int, ...]
    dense_output_shape: tuple[int, ...]
    valid_inputs: tuple[tuple[int, ...], ...]
    filters: tuple[tuple[int, ...], ...]
    pool: tuple[tuple[int, ...], ...]
    mfp: tuple[bool, ...]
    layer_shapes: tuple[LayerSizes, ...]
    messages: tuple[str, ...] = ()

    @property
    def n_fragments(self) -> int:
        """Number of MFP fragments one input patch yields (1 without MFP)."""
        return prod(self.mfp_stride)

    @property
    def n_output_voxels(self) -> int:
        """Voxels predicted by one forward pass, after reassembling MFP fragments."""
        return prod(self.dense_output_shape)

    def layer_shapes_for(
        self, input_shape: Sequence[int], mfp: bool | None = None
    ) -> tuple[LayerSizes, ...]:
        """Per conv layer, per axis ``(unpooled, pooled)`` lengths of any input shape.

        The net checks every input here, so that a size the layers cannot take is refused with
        the failing layer named instead of being cropped silently by torch's pooling (which
        would misalign outputs and labels).

        Parameters
        ----------
        input_shape
            Spatial input shape in internal order.
        mfp
            None: the layers' own MFP flags; True / False: MFP in every pooling layer or none
            (dense prediction runs MFP on a net trained without it).

        Raises
        ------
        ArchitectureError
            Naming the layer and axis where the input does not fit, and valid sizes near it.
        """
        flags = self.mfp if mfp is None else (bool(mfp),) * len(self.mfp)
        check_spatial_dims(input_shape, self.n_dim)
        per_axis = [self._axis_sizes(int(n), axis, flags) for axis, n in enumerate(input_shape)]
        return tuple(tuple(a[i] for a in per_axis) for i in range(len(self.filters)))

    def _axis_values(self, axis: int) -> tuple[tuple[int, ...], tuple[int, ...]]:
        """Filters and pools of every layer on one axis."""
        return tuple(f[axis] for f in self.filters), tuple(p[axis] for p in self.pool)

    def _axis_sizes(self, size: int, axis: int, flags: tuple[bool, ...]) -> LayerSizes:
        """One axis of :meth:`layer_shapes_for`."""
        fa, pa = self._axis_values(axis)
        sizes = layer_sizes(size, fa, pa, flags)
        if sizes is None:
            raise ArchitectureError(_misfit_message(size, fa, pa, flags, axis))
        return sizes

    def output_shape_for(self, input_shape: Sequence[int], mfp: bool | None = None) -> tuple:
        """Spatial output of the conv layers (per MFP fragment) for any valid input shape.

        Raises
        ------
        ArchitectureError
            As :meth:`layer_shapes_for`.
        """
        layers = self.layer_shapes_for(input_shape, mfp)
        return tuple(p for _, p in layers[-1]) if layers else tuple(int(n) for n in input_shape)

    def dense_tiling(self) -> tuple[DenseTiling, ...]:
        """Per axis ``(fov, step, smallest output, lattice)`` of exact tiled prediction.

        With MFP a CNN's dense output of the input ``fov - 1 + k*S`` is ``k*S`` and every
        output voxel is computed alike, so tiles may start anywhere (lattice 1).
        """
        return tuple(DenseTiling(f, s, s, 1) for f, s in zip(self.fov, self.stride))

    def summary_lines(
        self,
        n_ch: int,
        nof_filters: Sequence[int],
        mlp_layers: Sequence[int],
        n_lab: int,
        batch_size: int,
    ) -> list[str]:
        """The architecture summary printed at start-up, one string per line.

        Per layer: filter, conv output, pooling, pooled output and parameter count; then FOV,
        offset, stride, MFP geometry and the total parameter count.
        """
        lines = [
            f"Architecture ({self.n_dim}D, axes ({axes_text(self.n_dim)})): "
            f"input {shape_text(self.input_shape)}, "
            f"{n_ch} channel(s), batch size {batch_size}"
        ]
        counts = layer_param_counts(self, n_ch, nof_filters, mlp_layers, n_lab)
        for i, nof in enumerate(nof_filters):
            unpooled, pooled = zip(*self.layer_shapes[i])
            mfp = " (MFP)" if self.mfp[i] else ""
            lines.append(
                f"  conv {i}: {nof} filters {shape_text(self.filters[i])} -> "
                f"{shape_text(unpooled)}, pool {shape_text(self.pool[i])}{mfp} -> "
                f"{shape_text(pooled)}; {counts[i][1]:,} params"
            )
        for i, n in enumerate(mlp_layers):
            lines.append(f"  MLP {i}: {n} neurons; {counts[len(nof_filters) + i][1]:,} params")
        head = "(fully connected)" if mlp_layers else f"{shape_text(self.output_shape)} (1x1 conv)"
        lines.append(f"  output: {n_lab} outputs {head}; {counts[-1][1]:,} params")
        lines.append(
            f"FOV {shape_text(self.fov)}, offset {to_user(self.offset)}, "
            f"output stride {shape_text(self.stride)}"
        )
        if any(self.mfp):
            dense = shape_text(self.dense_output_shape)
            lines.append(f"MFP: {self.n_fragments} fragments, dense output {dense}")
        lines.append(f"Parameters: {sum(c for _, c in counts):,}")
        return lines


def layer_param_counts(
    arch: CNNArchitecture,
    n_ch: int,
    nof_filters: Sequence[int],
    mlp_layers: Sequence[int],
    n_lab: int,
) -> list[tuple[str, int]]:
    """Weights + biases per layer: conv layers, MLP layers, then the automatic output layer.

    A conv layer has ``nof * (n_in * prod(f)) + nof``, a fully connected one
    ``n_in * n_out + n_out``. The output layer is fully connected after MLP layers and a 1x1
    conv otherwise, which counts the same with ``n_in`` = channels of the last conv layer.
    The first MLP layer sees the flattened last conv output (per MFP fragment).
    """
    counts, n_in = [], n_ch
    for i, (f, nof) in enumerate(zip(arch.filters, nof_filters)):
        counts.append((f"conv {i}", nof * n_in * prod(f) + nof))
        n_in = nof
    if mlp_layers:
        n_in *= prod(arch.output_shape)
    for i, n in enumerate(mlp_layers):
        counts.append((f"MLP {i}", n_in * n + n))
        n_in = n
    counts.append(("output", n_in * n_lab + n_lab))
    return counts


def _mfp_flags(mfp: Sequence | None, n_layers: int) -> tuple[bool, ...]:
    """MFP per layer; None or an empty list means no MFP (the training default)."""
    if not mfp:
        return (False,) * n_layers
    if len(mfp) != n_layers:
        raise ArchitectureError(
            f"Option 'MFP' has {len(mfp)} entries but there are {n_layers} conv layers: give one "
            f"bool per conv layer, or [] for no max fragment pooling."
        )
    return tuple(bool(m) for m in mfp)


def compute_architecture(
    filters: Sequence,
    pool: Sequence,
    desired_input: Any,
    n_dim: int,
    mfp: Sequence | None = None,
    force_center: bool = False,
    border_mode: str | None = None,
) -> CNNArchitecture:
    """Compute the geometry of a CNN from the config values (user order).

    Parameters
    ----------
    filters, pool
        Per conv layer: an int (all axes) or an (x, y[, z]) list.
    desired_input
        An int, an (x, y[, z]) list, or None for the largest valid size.
    n_dim
        2 or 3.
    mfp
        Per conv layer: use max fragment pooling. None or [] means none.
    force_center
        Set for img-img: labels must sit at the centre of each output neuron's receptive
        field, so an even FOV is an error (otherwise a warning in ``messages``).
    border_mode
        img-scalar only: ``'mirror'``, ``'0-pad'`` and ``'c-pad'`` round an invalid size up
        to the next valid one, ``'reject'`` refuses it, anything else rounds it down.

    Returns
    -------
    CNNArchitecture
        Everything in internal order ((x, y) or (z, x, y)).

    Raises
    ------
    ArchitectureError
        For malformed options, an even FOV with ``force_center``, a rejected input size or a
        net that no input size fits.
    """
    check_dims(filters, pool, n_dim)
    f_int = layers_internal(filters, n_dim, "filters")
    p_int = layers_internal(pool, n_dim, "pool")
    mfp_t = _mfp_flags(mfp, len(filters))
    return _architecture(
        n_dim,
        f_int,
        p_int,
        mfp_t,
        desired_internal(desired_input, n_dim),
        force_center,
        border_mode,
        (filters, pool),
    )


def arch_from_layers(
    n_dim: int,
    filters: tuple[tuple[int, ...], ...],
    pool: tuple[tuple[int, ...], ...],
    mfp: bool,
    input_shape: Sequence[int] | None,
) -> CNNArchitecture:
    """The geometry of a built net from its per-layer values, already in internal order.

    The net (``ElektronnNet.arch``) and dense prediction use this, so that they size their
    inputs, outputs and MFP fragments with the same rule as the config checks.
    ``input_shape`` None chooses the largest valid input, as ``desired_input=None`` does.
    """
    desired = (None,) * n_dim if input_shape is None else tuple(int(n) for n in input_shape)
    return _architecture(n_dim, filters, pool, (bool(mfp),) * len(filters), desired)


def _architecture(
    n_dim: int,
    filters: tuple[tuple[int, ...], ...],
    pool: tuple[tuple[int, ...], ...],
    mfp: tuple[bool, ...],
    desired: tuple[int | None, ...],
    force_center: bool = False,
    border_mode: str | None = None,
    user_values: tuple[Sequence, Sequence] | None = None,
) -> CNNArchitecture:
    """Run the per-axis calculation on internal-order layers and assemble the result.

    ``user_values`` are the options 'filters' and 'pool' as the user wrote them, for messages.
    """
    messages: list[str] = []
    axes = []
    named = user_values or (filters, pool)
    for ax, name in enumerate(axis_names(n_dim)):
        fa, pa = tuple(f[ax] for f in filters), tuple(p[ax] for p in pool)
        check_centred(field_of_view(fa, pa), name, force_center, *named)
        axes.append(_compute_axis(fa, pa, mfp, desired[ax], name, border_mode, messages))
    return CNNArchitecture(
        n_dim=n_dim,
        input_shape=tuple(a.input_size for a in axes),
        fov=tuple(a.fov for a in axes),
        offset=tuple(a.fov / 2 for a in axes),
        int_offset=tuple(a.fov // 2 for a in axes),
        stride=tuple(a.stride for a in axes),
        output_shape=tuple(a.output_size for a in axes),
        mfp_stride=tuple(a.mfp_stride for a in axes),
        dense_output_shape=tuple(a.output_size * a.mfp_stride for a in axes),
        valid_inputs=tuple(a.valid for a in axes),
        filters=filters,
        pool=pool,
        mfp=mfp,
        layer_shapes=tuple(tuple(a.layers[i] for a in axes) for i in range(len(filters))),
        messages=tuple(messages),
    )
