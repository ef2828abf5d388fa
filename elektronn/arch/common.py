"""What every architecture shares: the :class:`Architecture` protocol, axis order, input choice.

The net, the data pipeline, the config checks and prediction talk to an architecture only
through :class:`Architecture`, so they work alike for a CNN (:mod:`.cnn`) and a valid U-Net
(:mod:`.unet`). The helpers here (user / internal axis order, the choice of a valid input
size, the centred-FOV check, the label patch) are the rules both calculators apply.

Per-axis values are in the internal order (x, y) for 2D and (z, x, y) for 3D, which is also
PyTorch's layout; users write (x, y[, z]).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from numbers import Integral
from typing import Any, NamedTuple, Protocol

from ..axes import to_internal, to_user
from ..errors import UserError

#: Input sizes tried per axis are ``range(2, MAX_INPUT)``, as in the original.
MAX_INPUT = 5000
#: img-scalar border modes that pad an image up to the next larger valid size.
PAD_BORDER_MODES = ("mirror", "0-pad", "c-pad")


class ArchitectureError(UserError):
    """An architecture that cannot work, explained in one paragraph naming the option."""


class DenseTiling(NamedTuple):
    """How exact tiled (dense) prediction may cut one axis (see ``predict.geometry``).

    Attributes
    ----------
    fov
        Field of view: a tile's output is its input less ``fov - 1``.
    step
        Valid tile inputs (and outputs) grow in steps of it.
    min_output
        The smallest tile output.
    lattice
        Tiles must start on multiples of it (1: anywhere).
    """

    fov: int
    step: int
    min_output: int
    lattice: int


class Architecture(Protocol):
    """The geometry of a net, as the net, the data pipeline and prediction use it.

    :class:`~.cnn.CNNArchitecture` and :class:`~.unet.UNetArchitecture` implement it; every
    per-axis tuple is in internal order.
    """

    @property
    def n_dim(self) -> int:
        """2 or 3."""

    @property
    def input_shape(self) -> tuple[int, ...]:
        """The chosen patch (input) size."""

    @property
    def output_shape(self) -> tuple[int, ...]:
        """The net's spatial output for :attr:`input_shape` (CNN with MFP: per fragment)."""

    @property
    def fov(self) -> tuple[int, ...]:
        """Field of view of one output voxel."""

    @property
    def int_offset(self) -> tuple[int, ...]:
        """Margin between an input patch and the labels its outputs predict."""

    @property
    def stride(self) -> tuple[int, ...]:
        """Stride of the net's ordinary output: labels of a patch are subsampled by it."""

    @property
    def valid_inputs(self) -> tuple[tuple[int, ...], ...]:
        """Per axis, every valid input length below :data:`MAX_INPUT`."""

    @property
    def filters(self) -> tuple[tuple[int, ...], ...]:
        """Filter size per conv layer (U-Net: per level), per axis."""

    @property
    def pool(self) -> tuple[tuple[int, ...], ...]:
        """Pooling factor per conv layer (U-Net: per level), per axis."""

    @property
    def messages(self) -> tuple[str, ...]:
        """Info and warning lines for the user (e.g. a changed input size)."""

    def layer_shapes_for(self, input_shape: Sequence[int]) -> tuple[Any, ...]:
        """Per layer (U-Net: per level) sizes of any input; refuses an input that does not fit.

        Raises
        ------
        ArchitectureError
            Naming the layer and axis where the input does not fit, and valid sizes near it.
        """

    def output_shape_for(self, input_shape: Sequence[int]) -> tuple[int, ...]:
        """The spatial output of any valid input shape (raises as :meth:`layer_shapes_for`)."""

    def dense_tiling(self) -> tuple[DenseTiling, ...]:
        """Per axis, how exact tiled prediction may cut the volume."""

    def summary_lines(
        self,
        n_ch: int,
        nof_filters: Sequence[int],
        mlp_layers: Sequence[int],
        n_lab: int,
        batch_size: int,
    ) -> list[str]:
        """The architecture summary printed at start-up, one string per line."""


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
    if is_int(value):
        return (int(value),) * n_dim
    user_order = ", ".join(("x", "y", "z")[:n_dim])
    expected = f"one int or {n_dim} ints in ({user_order}) order"
    if isinstance(value, str) or not isinstance(value, Iterable):
        raise ArchitectureError(
            f"Option '{name}' is {value!r}, but n_dim={n_dim} needs {expected}."
        )
    entries = list(value)
    if len(entries) != n_dim or not all(is_int(v) for v in entries):
        raise ArchitectureError(
            f"Option '{name}' has the entry {entries!r}, but n_dim={n_dim} needs {expected}."
        )
    return to_internal(tuple(int(v) for v in entries))


def is_int(value: Any) -> bool:
    """True for Python and numpy integers; False for bools, which are flags, not sizes."""
    return isinstance(value, Integral) and not isinstance(value, bool)


def shape_text(values: Sequence[int]) -> str:
    """``127x127x7``: compact per-axis sizes for the summary, in the user's (x, y, z) order."""
    return "x".join(str(v) for v in to_user(values))


def axes_text(n_dim: int) -> str:
    """The axis names the summary's sizes are in: the user's order."""
    return ",".join(("x", "y", "z")[:n_dim])


def check_dims(filters: Sequence, pool: Sequence, n_dim: int) -> None:
    """n_dim is 2 or 3 and 'filters' and 'pool' have one entry per layer (or level) each."""
    if n_dim not in (2, 3):
        raise ArchitectureError(f"Option 'n_dim' is {n_dim!r}, but must be 2 or 3.")
    if len(filters) != len(pool):
        raise ArchitectureError(
            f"Option 'filters' has {len(filters)} entries but 'pool' has {len(pool)}: give one "
            f"entry per conv layer (U-Net: per level) in each."
        )


def check_spatial_dims(input_shape: Sequence[int], n_dim: int) -> None:
    """An input given to a net must have the net's number of spatial axes."""
    if len(input_shape) != n_dim:
        raise ArchitectureError(
            f"The input has the spatial shape {tuple(input_shape)}, but this is a "
            f"{n_dim}D net: it needs {n_dim} spatial axes."
        )


def layers_internal(values: Sequence, n_dim: int, name: str) -> tuple[tuple[int, ...], ...]:
    """Per-layer entries of ``filters``/``pool`` in internal order, each at least 1."""
    layers = tuple(to_internal_order(v, n_dim, name) for v in values)
    for entry in layers:
        if min(entry) < 1:
            raise ArchitectureError(
                f"Option '{name}' has an entry with a size below 1 ({list(values)!r}); filter "
                f"sizes and pooling factors must be positive ints."
            )
    return layers


def desired_internal(desired_input: Any, n_dim: int) -> tuple[int | None, ...]:
    """Option 'desired_input' in internal order; None (the largest valid size) on every axis."""
    if desired_input is None:
        return (None,) * n_dim
    return to_internal_order(desired_input, n_dim, "desired_input")


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
            f"size (near it: {valid_near(valid, desired)}) or another 'border_mode'."
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


def valid_near(valid: Sequence[int], desired: int) -> list[int]:
    """Up to two valid sizes on each side of ``desired``, to suggest in an error."""
    return [v for v in valid if v < desired][-2:] + [v for v in valid if v > desired][:2]


def check_centred(fov: int, axis: str, force_center: bool, filters: list, pool: list) -> None:
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
