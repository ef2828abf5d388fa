"""The architecture calculator: field of view, valid input sizes, offsets, strides, MFP, U-Net.

Plain Python (no torch, not even numpy), and the single source of truth for sizes: the config
checks, the data pipeline, the network builder, previews and dense prediction all take them
from here, so that patches, labels and network outputs can never disagree about a shape.

:class:`Architecture` (:mod:`.common`) is what they use; :mod:`.cnn` computes it for CNNs
(:class:`CNNArchitecture`, with max fragment pooling) and :mod:`.unet` for valid-convolution
U-Nets (:class:`UNetArchitecture`). User values are in (x, y[, z]) order; everything returned
is in the internal order (x, y) for 2D and (z, x, y) for 3D, which is also PyTorch's layout.
"""

from .cnn import (
    CNNArchitecture,
    arch_from_layers,
    compute_architecture,
    field_of_view,
    layer_param_counts,
    valid_input_sizes,
)
from .common import (
    MAX_INPUT,
    Architecture,
    ArchitectureError,
    DenseTiling,
    label_patch_shape,
    ram_estimate_bytes,
    to_internal_order,
)
from .unet import (
    MFP_UNET_MESSAGE,
    UNET_UPSAMPLING,
    UNetArchitecture,
    UNetLevel,
    compute_unet_architecture,
    unet_from_layers,
    unet_param_counts,
)

__all__ = [
    "MAX_INPUT",
    "MFP_UNET_MESSAGE",
    "UNET_UPSAMPLING",
    "Architecture",
    "ArchitectureError",
    "CNNArchitecture",
    "DenseTiling",
    "UNetArchitecture",
    "UNetLevel",
    "arch_from_layers",
    "compute_architecture",
    "compute_unet_architecture",
    "field_of_view",
    "label_patch_shape",
    "layer_param_counts",
    "ram_estimate_bytes",
    "to_internal_order",
    "unet_from_layers",
    "unet_param_counts",
    "valid_input_sizes",
]
