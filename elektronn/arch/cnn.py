"""The architecture calculator: field of view, valid input sizes, offsets, strides, MFP geometry.

Plain Python (no torch, not even numpy), and the single source of truth for sizes: the config
checks, the data pipeline, the network builder, previews and dense prediction all take them
from here, so that patches, labels and network outputs can never disagree about a shape.

Each spatial axis is computed independently (reference §2.2). User values are in (x, y[, z])
order; everything returned is in the internal order (x, y) for 2D and (z, x, y) for 3D, which
is also PyTorch's layout. For a conv layer of filter f followed by pooling p on one axis:

* the valid convolution gives ``out = in - f + 1``, which must be positive;
* plain pooling needs ``out % p == 0`` and gives ``out // p``;
* max fragment pooling (MFP) crops the conv output to ``[o : out - p + o + 1]`` for each of
  the p window offsets o and pools each crop, so every fragment has length
  ``(out - p + 1) // p``. All fragments are only equally long if ``(out - p + 1) % p == 0``,
  i.e. ``(out + 1) % p == 0``. The original demanded ``out % p == 1``, which is the same rule
  for p = 2 but lets unequal fragments through for p = 3 (reference §2.7).

The field of view after layer k is ``S_k + sum_{i<=k} (f_i - 1) S_{i-1}`` with
``S_i = p_1 ... p_i``. Without MFP the valid inputs are ``FOV + (n - 1) S`` for n outputs.

The valid-convolution U-Net (``architecture = 'unet'``) is computed by the same per-axis
simulation, per level instead of per layer (see the U-Net section below).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass
from functools import lru_cache
from math import prod
from numbers import Integral
from typing import Any

from .errors import UserError

#: Input sizes tried per axis are ``range(2, MAX_INPUT)``, as in the original.
MAX_INPUT = 5000
#: img-scalar border modes that pad an image up to the next larger valid size.
PAD_BORDER_MODES = ("mirror", "0-pad", "c-pad")

LayerSizes = tuple[tuple[int, int], ...]


class ArchitectureError(UserError):
    """An architecture that cannot work, explained in one paragraph naming the option."""


def axis_names(n_dim: int) -> tuple[str, ...]:
    """Names of the internal axes, for messages: ``('x', 'y')`` or ``('z', 'x', 'y')``."""
    return ("x", "y") if n_dim == 2 else ("z", "x", "y")


def to_internal_order(value: Any, n_dim: int, name: str = "value") -> tuple[int, ...]:
    """Reorder an int or a per-axis sequence from user order to internal order.

    Users write anisotropic values as (x, y, z) because their h5 files are stored that way;
    the network works in (z, x, y) so that z, the axis with different resolution, leads.

    Parameters
    ----------
    value
        An int (used on every axis) or ``n_dim`` ints in user order (x, y[, z]).
    n_dim
        2 or 3.
    name
        The option the value comes from, for the error message.

    Returns
    -------
    tuple of int
        (x, y) for 2D, (z, x, y) for 3D.

    Raises
    ------
    ArchitectureError
        If ``value`` is neither an int nor a sequence of ``n_dim`` ints.
    """
    if _is_int(value):
        return (int(value),) * n_dim
    user_order = ", ".join(("x", "y", "z")[:n_dim])
    expected = f"one int or {n_dim} ints in ({user_order}) order"
    if isinstance(value, str) or not isinstance(value, Iterable):
        raise ArchitectureError(
            f"Option '{name}' is {value!r}, but n_dim={n_dim} needs {expected}."
        )
    entries = list(value)
    if len(entries) != n_dim or not all(_is_int(v) for v in entries):
        raise ArchitectureError(
            f"Option '{name}' has the entry {entries!r}, but n_dim={n_dim} needs {expected}."
        )
    values = tuple(int(v) for v in entries)
    return values if n_dim == 2 else (values[2], values[0], values[1])


def _is_int(value: Any) -> bool:
    """True for Python and numpy integers; False for bools, which are flags, not sizes."""
    return isinstance(value, Integral) and not isinstance(value, bool)


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
    near = _valid_near(valid_input_sizes(filters, pools, mfp), size)
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


def choose_input_size(
    valid: Sequence[int],
    desired: int | None,
    axis: str,
    border_mode: str | None,
    messages: list[str],
) -> int:
    """Pick the input length on one axis (reference §2.2 step 5 and the img-scalar border modes).

    The original rounds an invalid size down, so the patch never exceeds what the user asked
    for (the images must contain it). img-scalar images that are padded to the patch size
    instead round up, so that no image content is lost; ``'reject'`` refuses to change it.
    A changed size is reported in ``messages``.

    Raises
    ------
    ArchitectureError
        With ``border_mode='reject'`` when ``desired`` is not valid.
    """
    if desired is None:
        return valid[-1]
    if desired in valid:
        return desired
    if border_mode == "reject":
        raise ArchitectureError(
            f"Option 'desired_input' asks for {desired} on axis {axis}, which is not a valid "
            f"input size of this net, and border_mode='reject' forbids changing it. Use a valid "
            f"size (near it: {_valid_near(valid, desired)}) or another 'border_mode'."
        )
    if desired < valid[0]:
        chosen, reason = valid[0], "size too small"
    elif border_mode in PAD_BORDER_MODES and desired < valid[-1]:
        chosen = next(v for v in valid if v > desired)
        reason = f"size not possible; border_mode '{border_mode}' pads up"
    else:
        chosen, reason = max(v for v in valid if v <= desired), "size not possible"
    messages.append(f"Info: input {desired} changed to {chosen} on axis {axis} ({reason})")
    return chosen


def _valid_near(valid: Sequence[int], desired: int) -> list[int]:
    """Up to two valid sizes on each side of ``desired``, to suggest in an error."""
    return [v for v in valid if v < desired][-2:] + [v for v in valid if v > desired][:2]


def _check_centred(fov: int, axis: str, force_center: bool, filters: list, pool: list) -> None:
    """img-img needs an odd FOV: an even one puts no output neuron at a pixel centre.

    Other modes predict one label per patch, where the centre does not matter, so they are
    not warned (the original warned, e.g. for the MNIST example).

    Raises
    ------
    ArchitectureError
        If the FOV is even and ``force_center`` is set.
    """
    if fov % 2 == 0 and force_center:
        raise ArchitectureError(
            f"Receptive fields are not centred: even field of view ({fov}) on axis {axis}. mode "
            f"'img-img' needs an odd field of view, so that each label sits at the centre of its "
            f"output neuron's receptive field. Change 'filters' {filters} or 'pool' {pool}: e.g. "
            f"an even filter before a pool of 2 makes the field of view odd."
        )


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
class Architecture:
    """Geometry of a CNN; every per-axis tuple is in internal order ((x, y) or (z, x, y)).

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
        if len(input_shape) != self.n_dim:
            raise ArchitectureError(
                f"The input has the spatial shape {tuple(input_shape)}, but this is a "
                f"{self.n_dim}D net: it needs {self.n_dim} spatial axes."
            )
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

    def dense_tiling(self) -> tuple[tuple[int, int, int, int], ...]:
        """Per axis ``(fov, step, smallest output, lattice)`` of exact tiled prediction.

        With MFP a CNN's dense output of the input ``fov - 1 + k*S`` is ``k*S`` and every
        output voxel is computed alike, so tiles may start anywhere (lattice 1).
        """
        return tuple((f, s, s, 1) for f, s in zip(self.fov, self.stride))

    def to_dict(self) -> dict[str, Any]:
        """Plain values, for storing in parameter files."""
        return asdict(self)

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
            f"Architecture ({self.n_dim}D, axes ({_axes(self.n_dim)})): "
            f"input {_shape(self.input_shape)}, "
            f"{n_ch} channel(s), batch size {batch_size}"
        ]
        counts = layer_param_counts(self, n_ch, nof_filters, mlp_layers, n_lab)
        for i, nof in enumerate(nof_filters):
            unpooled, pooled = zip(*self.layer_shapes[i])
            mfp = " (MFP)" if self.mfp[i] else ""
            lines.append(
                f"  conv {i}: {nof} filters {_shape(self.filters[i])} -> {_shape(unpooled)}, "
                f"pool {_shape(self.pool[i])}{mfp} -> {_shape(pooled)}; {counts[i][1]:,} params"
            )
        for i, n in enumerate(mlp_layers):
            lines.append(f"  MLP {i}: {n} neurons; {counts[len(nof_filters) + i][1]:,} params")
        head = f"{_shape(self.output_shape)} (1x1 conv)" if not mlp_layers else "(fully connected)"
        lines.append(f"  output: {n_lab} outputs {head}; {counts[-1][1]:,} params")
        lines.append(
            f"FOV {_shape(self.fov)}, offset {to_user_order(self.offset)}, "
            f"output stride {_shape(self.stride)}"
        )
        if any(self.mfp):
            lines.append(
                f"MFP: {self.n_fragments} fragments, dense output {_shape(self.dense_output_shape)}"
            )
        lines.append(f"Parameters: {sum(c for _, c in counts):,}")
        return lines


def to_user_order(values: Sequence) -> tuple:
    """Internal (x, y) / (z, x, y) values back in the user's (x, y[, z]) order, for printing."""
    values = tuple(values)
    return values if len(values) != 3 else (values[1], values[2], values[0])


def _shape(values: Sequence[int]) -> str:
    """``127x127x7``: compact per-axis sizes for the summary, in the user's (x, y, z) order."""
    return "x".join(str(v) for v in to_user_order(values))


def _axes(n_dim: int) -> str:
    """The axis names the summary's sizes are in: the user's order."""
    return ",".join(("x", "y", "z")[:n_dim])


def layer_param_counts(
    arch: Architecture,
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


def label_patch_shape(
    input_shape: Sequence[int], int_offset: Sequence[int], stride: Sequence[int] | None = None
) -> tuple[int, ...]:
    """Shape of the labels cut for one input patch in img-img training (reference §2.3).

    ``input_shape - 2 * int_offset`` per axis. With ``stride`` (training without MFP: the
    output has stride S) the labels are subsampled ``[::S]``, giving ``ceil(n / S)``; the
    patch ``(n - 1) * S + 1`` then gives exactly n labels.
    """
    full = tuple(int(p) - 2 * int(o) for p, o in zip(input_shape, int_offset, strict=True))
    if stride is None:
        return full
    return tuple((n - 1) // int(s) + 1 for n, s in zip(full, stride, strict=True))


def ram_estimate_bytes(n_image_voxels: int, n_label_voxels: int) -> int:
    """The specification's RAM estimate for the training data.

    Image voxels are held as float32 (32 bit) and labels as int16 (16 bit), so this is what
    reading the data into memory costs.
    """
    return 4 * n_image_voxels + 2 * n_label_voxels


def _layers_internal(values: Sequence, n_dim: int, name: str) -> tuple[tuple[int, ...], ...]:
    """Per-layer entries of ``filters``/``pool`` in internal order, each at least 1."""
    layers = tuple(to_internal_order(v, n_dim, name) for v in values)
    for entry in layers:
        if min(entry) < 1:
            raise ArchitectureError(
                f"Option '{name}' has an entry with a size below 1 ({list(values)!r}); filter "
                f"sizes and pooling factors must be positive ints."
            )
    return layers


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


def _check_dims(filters: Sequence, pool: Sequence, n_dim: int) -> None:
    """n_dim is 2 or 3 and 'filters' and 'pool' have one entry per layer (or level) each."""
    if n_dim not in (2, 3):
        raise ArchitectureError(f"Option 'n_dim' is {n_dim!r}, but must be 2 or 3.")
    if len(filters) != len(pool):
        raise ArchitectureError(
            f"Option 'filters' has {len(filters)} entries but 'pool' has {len(pool)}: give one "
            f"entry per conv layer (U-Net: per level) in each."
        )


def compute_architecture(
    filters: Sequence,
    pool: Sequence,
    desired_input: Any,
    n_dim: int,
    mfp: Sequence | None = None,
    force_center: bool = False,
    border_mode: str | None = None,
) -> Architecture:
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
    Architecture
        Everything in internal order ((x, y) or (z, x, y)).

    Raises
    ------
    ArchitectureError
        For malformed options, an even FOV with ``force_center``, a rejected input size or a
        net that no input size fits.
    """
    _check_dims(filters, pool, n_dim)
    f_int = _layers_internal(filters, n_dim, "filters")
    p_int = _layers_internal(pool, n_dim, "pool")
    mfp_t = _mfp_flags(mfp, len(filters))
    desired = (
        (None,) * n_dim
        if desired_input is None
        else to_internal_order(desired_input, n_dim, "desired_input")
    )
    return _architecture(
        n_dim, f_int, p_int, mfp_t, desired, force_center, border_mode, (filters, pool)
    )


def arch_from_layers(
    n_dim: int,
    filters: tuple[tuple[int, ...], ...],
    pool: tuple[tuple[int, ...], ...],
    mfp: bool,
    input_shape: Sequence[int] | None,
) -> Architecture:
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
) -> Architecture:
    """Run the per-axis calculation on internal-order layers and assemble the result.

    ``user_values`` are the options 'filters' and 'pool' as the user wrote them, for messages.
    """
    messages: list[str] = []
    axes = []
    named = user_values or (filters, pool)
    for ax, name in enumerate(axis_names(n_dim)):
        fa, pa = tuple(f[ax] for f in filters), tuple(p[ax] for p in pool)
        _check_centred(field_of_view(fa, pa), name, force_center, *named)
        axes.append(_compute_axis(fa, pa, mfp, desired[ax], name, border_mode, messages))
    return Architecture(
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


# --- U-Net with valid convolutions ----------------------------------------------------------
#
# Level l applies ``n_convs`` valid convolutions of filter f_l (each removes f_l - 1), then,
# except on the last level, pools by p_l (the length must divide exactly). The decoder goes
# back up: up-sampling by p_l, the skip of level l cropped symmetrically to the decoder's
# length (the crop must be even), concatenation and again ``n_convs`` convolutions. The net's
# output is dense (stride 1), but it is translation-equivariant only for shifts that are
# multiples of the product S of the pools: valid inputs and exact tiles step by S.

UNET_UPSAMPLING = ("transposed", "nearest")


def unet_axis_sizes(
    size: int, filters: Sequence[int], pools: Sequence[int], n_convs: int
) -> tuple[tuple[tuple[int, int], ...], int | None]:
    """Per level ``(encoder, decoder)`` lengths on one axis (decoder of the last level: its own).

    Returns the lengths and None, or the lengths up to the failing level and that level's
    index (where the failure comes from: a too small length, a pool that does not divide, or
    an odd crop), so the valid sizes and the error for an invalid one come from one walk.
    """
    encoder = []
    for level, (f, p) in enumerate(zip(filters, pools)):
        size -= n_convs * (f - 1)
        if size < 1 or (level < len(filters) - 1 and size % p):
            return tuple((e, 0) for e in encoder), level
        encoder.append(size)
        size = size if level == len(filters) - 1 else size // p
    decoder = [0] * len(filters)
    decoder[-1] = encoder[-1]
    for level in range(len(filters) - 2, -1, -1):
        size *= pools[level]
        crop = encoder[level] - size
        size -= n_convs * (filters[level] - 1)
        if crop < 0 or crop % 2 or size < 1:
            return tuple(zip(encoder, decoder)), level
        decoder[level] = size
    return tuple(zip(encoder, decoder)), None


@lru_cache(maxsize=256)
def unet_valid_sizes(
    filters: tuple[int, ...], pools: tuple[int, ...], n_convs: int
) -> tuple[int, ...]:
    """Every input length in ``range(2, MAX_INPUT)`` a U-Net takes on one axis (cached)."""
    return tuple(
        s for s in range(2, MAX_INPUT) if unet_axis_sizes(s, filters, pools, n_convs)[1] is None
    )


def _unet_misfit(
    size: int, filters: tuple[int, ...], pools: tuple[int, ...], n_convs: int, axis: int
) -> str:
    """Why ``size`` is no valid U-Net input on one axis, with the valid sizes near it."""
    sizes, level = unet_axis_sizes(size, filters, pools, n_convs)
    near = _valid_near(unet_valid_sizes(filters, pools, n_convs), size)
    where = "encoder" if len(sizes) < len(filters) else "decoder"
    return (
        f"U-Net level {level} ({where}) gets no valid length on spatial axis {axis} for the "
        f"input {size}: every level's convolutions must leave at least 1 voxel, every pooled "
        f"length must divide by its pool factor and every skip crop must be even. Valid "
        f"inputs near it: {near}."
    )


@dataclass(frozen=True)
class UNetArchitecture(Architecture):
    """Geometry of a valid-convolution U-Net (same fields as :class:`Architecture`).

    Per level (``filters``, ``pool``, ``layer_shapes`` = per axis ``(encoder, decoder)``
    lengths); ``stride`` and ``mfp_stride`` are 1 (the output is dense), ``fov`` is
    ``input - output + 1``, ``offset`` the margin ``(input - output) / 2`` (= ``int_offset``;
    the crop is symmetric) and ``step`` the product S of the pools: valid inputs, and the
    starts of exact prediction tiles, step by S.
    """

    n_convs: int = 2
    upsampling: str = "transposed"
    batch_norm: bool = False
    step: tuple[int, ...] = ()

    def layer_shapes_for(self, input_shape: Sequence[int], mfp: bool | None = None) -> tuple:
        """Per level, per axis ``(encoder, decoder)`` lengths of any input shape.

        Raises
        ------
        ArchitectureError
            Naming the level and axis where the input does not fit (and with ``mfp``: max
            fragment pooling is for CNNs only).
        """
        if mfp:
            raise ArchitectureError(MFP_UNET_MESSAGE)
        return super().layer_shapes_for(input_shape, False)

    def _axis_sizes(self, size: int, axis: int, flags: tuple[bool, ...]) -> LayerSizes:
        """One axis of :meth:`layer_shapes_for` (``flags`` unused: a U-Net has no MFP)."""
        fa, pa = self._axis_values(axis)
        sizes, failed = unet_axis_sizes(size, fa, pa, self.n_convs)
        if failed is not None:
            raise ArchitectureError(_unet_misfit(size, fa, pa, self.n_convs, axis))
        return sizes

    def output_shape_for(self, input_shape: Sequence[int], mfp: bool | None = None) -> tuple:
        """The U-Net's (dense) output shape for any valid input shape."""
        return tuple(dec for _, dec in self.layer_shapes_for(input_shape, mfp)[0])

    def dense_tiling(self) -> tuple[tuple[int, int, int, int], ...]:
        """Per axis ``(fov, step, smallest output, lattice)`` of exact tiled prediction.

        Outputs grow by S with the input; tiles must start on multiples of S (the lattice),
        so the smallest tile output is the smallest valid one of at least S.
        """
        rows = []
        for f, s, valid in zip(self.fov, self.step, self.valid_inputs):
            smallest = next(n - (f - 1) for n in valid if n - (f - 1) >= s)
            rows.append((f, s, smallest, s))
        return tuple(rows)

    def summary_lines(
        self,
        n_ch: int,
        nof_filters: Sequence[int],
        mlp_layers: Sequence[int],
        n_lab: int,
        batch_size: int,
    ) -> list[str]:
        """The start-up summary: per level encoder / decoder sizes and parameters, FOV, offset."""
        lines = [
            f"U-Net ({self.n_dim}D, axes ({_axes(self.n_dim)}), "
            f"{self.n_convs} valid convs per level, "
            f"{self.upsampling} up-sampling{', batch norm' if self.batch_norm else ''}): input "
            f"{_shape(self.input_shape)}, {n_ch} channel(s), batch size {batch_size}"
        ]
        counts = unet_param_counts(self, n_ch, nof_filters, n_lab)
        for level, nof in enumerate(nof_filters):
            enc, dec = zip(*self.layer_shapes[level])
            last = level == len(nof_filters) - 1
            text = f"  level {level}: {nof} filters {_shape(self.filters[level])} -> {_shape(enc)}"
            text += (
                " (bottom)" if last else f", pool {_shape(self.pool[level])}; up -> {_shape(dec)}"
            )
            lines.append(f"{text}; {counts[level][1]:,} params")
        lines.append(f"  output: {n_lab} outputs {_shape(self.output_shape)} (1x1 conv); "
                     f"{counts[-1][1]:,} params")  # fmt: skip
        lines.append(
            f"FOV {_shape(self.fov)}, offset {to_user_order(self.offset)}, output stride 1, tiles "
            f"on the "
            f"lattice {_shape(self.step)}"
        )
        lines.append(f"Parameters: {sum(c for _, c in counts):,}")
        return lines


MFP_UNET_MESSAGE = (
    "Option 'MFP' is set, but architecture='unet' gives a dense output already: max fragment "
    "pooling is for CNNs only. Use MFP=[] with a U-Net."
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

    for level, nof in enumerate(nof_filters):
        f = arch.filters[level]
        total = convs(n_in, nof, f)
        if level < last:
            up = prod(arch.pool[level]) if arch.upsampling == "transposed" else 1
            total += nof_filters[level + 1] * nof * up + nof + convs(2 * nof, nof, f)
        counts.append((f"level {level}", total))
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
    _check_dims(filters, pool, n_dim)
    f_int = _layers_internal(filters, n_dim, "filters")
    p_int = _layers_internal(pool, n_dim, "pool")
    if not f_int:
        raise ArchitectureError("architecture='unet' needs at least one level in 'filters'.")
    if any(p != 1 for p in p_int[-1]):
        raise ArchitectureError(
            f"Option 'pool' is {list(pool)!r}, but the last U-Net level is the bottom of the U "
            f"and is not pooled: its entry must be 1 (e.g. pool=[2, 2, 2, 2, 1])."
        )
    if not _is_int(n_convs) or n_convs < 1:
        raise ArchitectureError(f"Option 'unet_n_convs' is {n_convs!r}; it must be an int >= 1.")
    if upsampling not in UNET_UPSAMPLING:
        raise ArchitectureError(
            f"Option 'unet_upsampling' is {upsampling!r}; use one of {', '.join(UNET_UPSAMPLING)}."
        )
    desired = (
        (None,) * n_dim
        if desired_input is None
        else to_internal_order(desired_input, n_dim, "desired_input")
    )
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
    per_axis = []
    for ax, name in enumerate(axis_names(n_dim)):
        fa, pa = tuple(f[ax] for f in filters), tuple(p[ax] for p in pool)
        valid = unet_valid_sizes(fa, pa, n_convs)
        if not valid:
            probe = desired[ax] or MAX_INPUT - 1
            level = unet_axis_sizes(probe, fa, pa, n_convs)[1]
            raise ArchitectureError(
                f"No input size below {MAX_INPUT} fits the U-Net on axis {name} (filters "
                f"{list(fa)}, pool {list(pa)}, {n_convs} convs per level): for the input "
                f"{probe}, level {level} fails; some level always ends below 1 voxel, pools a "
                f"length its factor does not divide, or needs an odd skip crop. Change "
                f"'filters', 'pool' or 'unet_n_convs'."
            )
        size = choose_input_size(valid, desired[ax], name, None, messages)
        sizes, _ = unet_axis_sizes(size, fa, pa, n_convs)
        fov = size - sizes[0][1] + 1
        _check_centred(fov, name, force_center, list(filters), list(pool))
        per_axis.append((size, fov, prod(pa), sizes, valid))
    ones = (1,) * n_dim
    return UNetArchitecture(
        n_dim=n_dim,
        input_shape=tuple(a[0] for a in per_axis),
        fov=tuple(a[1] for a in per_axis),
        offset=tuple((a[1] - 1) / 2 for a in per_axis),
        int_offset=tuple(a[1] // 2 for a in per_axis),
        stride=ones,
        output_shape=tuple(a[3][0][1] for a in per_axis),
        mfp_stride=ones,
        dense_output_shape=tuple(a[3][0][1] for a in per_axis),
        valid_inputs=tuple(a[4] for a in per_axis),
        filters=filters,
        pool=pool,
        mfp=(False,) * len(filters),
        layer_shapes=tuple(tuple(a[3][i] for a in per_axis) for i in range(len(filters))),
        messages=tuple(messages),
        n_convs=n_convs,
        upsampling=upsampling,
        batch_norm=batch_norm,
        step=tuple(a[2] for a in per_axis),
    )
