"""The architecture calculator: field of view, valid input sizes, offsets, strides, MFP geometry.

Pure numpy (no torch), and the single source of truth for sizes: the config checks, the data
pipeline, the network, previews and dense prediction all take them from here.

Each spatial axis is computed independently (reference §2.2). User values are in (x, y[, z])
order; everything returned is in the internal order (x, y) for 2D and (z, x, y) for 3D, which
is also PyTorch's layout. For a conv layer of filter f followed by pooling p on one axis:

* output of the convolution: ``out = in - f + 1`` (valid convolution);
* without MFP, pooling needs ``out % p == 0`` and gives ``out // p``;
* with max fragment pooling (MFP), each of the p window offsets gives a fragment of length
  ``(out - p + 1) // p``, which needs ``(out - p + 1) % p == 0`` so all fragments are equally
  long (the original demanded ``out % p == 1``, which is the same only for p = 2).

The field of view after layer k is ``S_k + sum_{i<=k} (f_i - 1) S_{i-1}`` with
``S_i = p_1 ... p_i``; valid inputs without MFP are ``FOV + (n - 1) S``.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

MAX_INPUT = 5000
PAD_MODES = ("mirror", "0-pad", "c-pad")


class ArchitectureError(ValueError):
    """An architecture that cannot work, explained in one paragraph naming the option."""


def axis_names(n_dim: int) -> tuple[str, ...]:
    return ("x", "y") if n_dim == 2 else ("z", "x", "y")


def to_internal_order(value: Any, n_dim: int, name: str = "value") -> tuple[int, ...]:
    """User order (x, y[, z]) → internal (x, y) / (z, x, y); a scalar applies to every axis."""
    if isinstance(value, (int,)) and not isinstance(value, bool):
        return (int(value),) * n_dim
    values = tuple(int(v) for v in value)
    if len(values) != n_dim:
        raise ArchitectureError(
            f"'{name}' entry {list(value)!r} has {len(values)} values, but n_dim={n_dim} needs "
            f"one int or {n_dim} values in (x, y{', z' if n_dim == 3 else ''}) order."
        )
    return values if n_dim == 2 else (values[2], values[0], values[1])


def _layer_out(size: int, f: int, p: int, mfp: bool) -> int | None:
    """Size after conv + pool (or MFP fragment) on one axis, None if the size is invalid."""
    out = size - f + 1
    if out <= 0:
        return None
    if p == 1:
        return out
    if mfp:
        frag = out - p + 1
        return frag // p if frag > 0 and frag % p == 0 else None
    return out // p if out % p == 0 else None


def axis_sizes(size: int, filters: list[int], pools: list[int], mfp: list[bool]) -> list | None:
    """Per layer (unpooled, pooled) sizes on one axis, or None if ``size`` is not valid."""
    sizes = []
    for f, p, m in zip(filters, pools, mfp, strict=True):
        pooled = _layer_out(size, f, p, m)
        if pooled is None:
            return None
        sizes.append((size - f + 1, pooled))
        size = pooled
    return sizes


def axis_fov(filters: list[int], pools: list[int]) -> int:
    fov, stride = 1, 1
    for f, p in zip(filters, pools, strict=True):
        fov += (f - 1) * stride
        stride *= p
    return fov + stride - 1


@dataclass(frozen=True)
class Architecture:
    """Geometry of a CNN, per axis in internal order. See the module docstring."""

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
    layer_shapes: tuple[tuple[tuple[int, int], ...], ...]
    messages: tuple[str, ...] = field(default=())

    @property
    def n_fragments(self) -> int:
        n = 1
        for s in self.mfp_stride:
            n *= s
        return n

    @property
    def n_output_voxels(self) -> int:
        n = 1
        for s in self.dense_output_shape:
            n *= s
        return n

    def label_patch_shape(self, strided: bool) -> tuple[int, ...]:
        """Label patch for one input patch: ``ps - 2·int_offset``, or n per axis if strided."""
        full = tuple(p - 2 * o for p, o in zip(self.input_shape, self.int_offset, strict=True))
        if not strided:
            return full
        return tuple((n - 1) // s + 1 for n, s in zip(full, self.stride, strict=True))

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def summary_lines(self, n_ch: int, nof_filters: list[int], mlp_layers: list[int],
                      n_lab: int, batch_size: int) -> list[str]:  # fmt: skip
        """The start-up summary: per-layer shapes, FOV, offset, stride and parameter count."""
        names = ",".join(axis_names(self.n_dim))
        lines = [
            f"Architecture ({self.n_dim}D, axes {names}): input {self.input_shape}, "
            f"batch {batch_size}, {n_ch} channel(s)"
        ]
        for i, (shapes, nof) in enumerate(zip(self.layer_shapes, nof_filters, strict=True)):
            unpooled = tuple(u for u, _ in shapes)
            pooled = tuple(p for _, p in shapes)
            mfp = " MFP" if self.mfp[i] else ""
            lines.append(
                f"  conv {i}: {nof} filters {self.filters[i]}, conv out {unpooled}, "
                f"pool {self.pool[i]}{mfp} -> {pooled}"
            )
        for i, n in enumerate(mlp_layers):
            lines.append(f"  MLP {i}: {n} neurons")
        head = "1x1 conv" if not mlp_layers else "linear"
        lines.append(f"  output: {head}, {n_lab} outputs, shape {self.output_shape}")
        lines.append(
            f"FOV {self.fov}, offset {self.offset}, output stride {self.stride}, "
            f"valid inputs e.g. {tuple(v[:4] for v in self.valid_inputs)}"
        )
        params = param_count(self, n_ch, nof_filters, mlp_layers, n_lab)
        lines.append(f"Parameters: {params:,}")
        return lines


def param_count(arch: Architecture, n_ch: int, nof_filters: list[int], mlp_layers: list[int],
                n_lab: int) -> int:  # fmt: skip
    """Weights + biases of the conv layers, the MLP and the automatic output layer."""
    total, n_in = 0, n_ch
    for f, nof in zip(arch.filters, nof_filters, strict=True):
        k = 1
        for v in f:
            k *= v
        total += nof * n_in * k + nof
        n_in = nof
    if mlp_layers:
        n_in *= int(_prod(arch.output_shape))
        for n in list(mlp_layers) + [n_lab]:
            total += n_in * n + n
            n_in = n
    else:
        total += n_in * n_lab + n_lab
    return total


def _prod(values) -> int:
    n = 1
    for v in values:
        n *= v
    return n


def ram_estimate_bytes(n_image_voxels: int, n_label_voxels: int) -> int:
    """The specification's RAM estimate: image voxels × 32 bit + label voxels × 16 bit."""
    return 4 * n_image_voxels + 2 * n_label_voxels


def _choose(valid: list[int], desired: int | None, axis: str, border_mode: str | None,
            messages: list[str]) -> int:  # fmt: skip
    """Pick the input size on one axis (reference §2.2 step 5, §2.2 border modes)."""
    if desired is None:
        return valid[-1]
    if desired in valid:
        return desired
    if border_mode == "reject":
        raise ArchitectureError(
            f"desired_input {desired} on axis {axis} is not a valid input size and "
            f"border_mode='reject'; valid sizes near it: {_near(valid, desired)}."
        )
    if desired < valid[0]:
        messages.append(
            f"Info: input ({axis}) changed from {desired} to {valid[0]} (size too small)"
        )
        return valid[0]
    below = max(v for v in valid if v <= desired)
    if border_mode in PAD_MODES:
        above = min((v for v in valid if v > desired), default=below)
        messages.append(f"Info: input ({axis}) changed from {desired} to {above} "
                        f"(size not possible; padded, border_mode={border_mode!r})")  # fmt: skip
        return above
    messages.append(f"Info: input ({axis}) changed from {desired} to {below} (size not possible)")
    return below


def _near(valid: list[int], desired: int) -> list[int]:
    below = [v for v in valid if v < desired][-2:]
    above = [v for v in valid if v > desired][:2]
    return below + above


def compute_architecture(
    filters: list,
    pool: list,
    desired_input: Any,
    n_dim: int,
    mfp: list | None = None,
    force_center: bool = False,
    border_mode: str | None = None,
) -> Architecture:
    """Compute the geometry of a CNN from the config values (user order).

    Parameters
    ----------
    filters, pool
        Per conv layer: an int (all axes) or an (x, y[, z]) tuple.
    desired_input
        Int, (x, y[, z]) tuple, or None for the largest valid size.
    n_dim
        2 or 3.
    mfp
        Per layer: use max fragment pooling (dense output in one pass).
    force_center
        img-img nets need an odd field of view so labels sit at the centre of each output
        neuron's receptive field; an even FOV is then an error (else a warning message).
    border_mode
        img-scalar only: ``'mirror'``, ``'0-pad'`` and ``'c-pad'`` round an invalid size up,
        ``'reject'`` refuses it, anything else rounds down.
    """
    if n_dim not in (2, 3):
        raise ArchitectureError(f"n_dim is {n_dim!r}, but must be 2 or 3.")
    if len(filters) != len(pool):
        raise ArchitectureError(
            f"'filters' has {len(filters)} entries but 'pool' has {len(pool)}: one per conv layer."
        )
    f_int = tuple(to_internal_order(f, n_dim, "filters") for f in filters)
    p_int = tuple(to_internal_order(p, n_dim, "pool") for p in pool)
    mfp_t = tuple(bool(m) for m in (mfp or [False] * len(filters)))
    if len(mfp_t) != len(filters):
        raise ArchitectureError(
            f"'MFP' has {len(mfp_t)} entries but there are {len(filters)} layers."
        )
    desired = (None,) * n_dim if desired_input is None else to_internal_order(
        desired_input, n_dim, "desired_input")  # fmt: skip
    names = axis_names(n_dim)
    messages: list[str] = []
    per_axis = []
    for ax in range(n_dim):
        fa = [f[ax] for f in f_int]
        pa = [p[ax] for p in p_int]
        fov = axis_fov(fa, pa)
        if fov % 2 == 0:
            text = (f"Receptive fields are not centered: even field of view ({fov}) on axis "
                    f"{names[ax]}")  # fmt: skip
            if force_center:
                raise ArchitectureError(
                    f"{text}. An img-img net needs an odd field of view so each label sits at "
                    f"the centre of its output neuron's receptive field; e.g. use an even "
                    f"first filter with pool 2 (filters {list(filters)}, pool {list(pool)})."
                )
            messages.append(f"WARNING: {text}")
        valid = [s for s in range(2, MAX_INPUT) if axis_sizes(s, fa, pa, list(mfp_t)) is not None]
        if not valid:
            raise ArchitectureError(
                f"No input size below {MAX_INPUT} is valid on axis {names[ax]} for filters "
                f"{fa} and pool {pa}."
            )
        size = _choose(valid, desired[ax], names[ax], border_mode, messages)
        shapes = axis_sizes(size, fa, pa, list(mfp_t))
        stride = _prod(pa)
        mfp_stride = _prod(p for p, m in zip(pa, mfp_t, strict=True) if m)
        per_axis.append((size, fov, stride, mfp_stride, shapes, valid))
    n_layers = len(filters)
    out = tuple(a[4][-1][1] if n_layers else a[0] for a in per_axis)
    return Architecture(
        n_dim=n_dim,
        input_shape=tuple(a[0] for a in per_axis),
        fov=tuple(a[1] for a in per_axis),
        offset=tuple(a[1] / 2 for a in per_axis),
        int_offset=tuple(a[1] // 2 for a in per_axis),
        stride=tuple(a[2] for a in per_axis),
        output_shape=out,
        mfp_stride=tuple(a[3] for a in per_axis),
        dense_output_shape=tuple(o * a[3] for o, a in zip(out, per_axis, strict=True)),
        valid_inputs=tuple(tuple(a[5]) for a in per_axis),
        filters=f_int,
        pool=p_int,
        mfp=mfp_t,
        layer_shapes=tuple(
            tuple((per_axis[ax][4][i][0], per_axis[ax][4][i][1]) for ax in range(n_dim))
            for i in range(n_layers)
        ),
        messages=tuple(messages),
    )


def valid_size_at_least(arch: Architecture, shape: tuple[int, ...]) -> tuple[int, ...]:
    """Smallest valid input ≥ ``shape`` per axis (largest valid if none is that big)."""
    return tuple(
        min((v for v in valid if v >= s), default=valid[-1])
        for valid, s in zip(arch.valid_inputs, shape, strict=True)
    )


def valid_size_at_most(arch: Architecture, shape: tuple[int, ...]) -> tuple[int, ...]:
    """Largest valid input ≤ ``shape`` per axis (smallest valid if none is that small)."""
    return tuple(
        max((v for v in valid if v <= s), default=valid[0])
        for valid, s in zip(arch.valid_inputs, shape, strict=True)
    )
