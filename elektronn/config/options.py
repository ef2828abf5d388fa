"""The options table: every configuration option, its default, type, mode and one-line doc.

This is the single source of truth for option names. The config chain accepts exactly these
names, the checks use the declared types, and both the user-defaults template
(``examples/config_template.py``) and the option reference (``docs/options.md``) are generated
from this table (``python -m elektronn.config.reference --write``).

Modes follow the specification: ``"!"`` the user should set it for every training,
``"$"`` only needed in special cases, ``""`` can be left at its default initially.
Types are names understood by :func:`elektronn.config.checks.matches_type`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from ..arch import UNET_UPSAMPLING


@dataclass(frozen=True)
class Option:
    """One configuration option."""

    name: str
    default: Any
    types: tuple[str, ...]
    mode: str
    group: str
    doc: str
    choices: tuple = ()
    """The allowed values (of each entry, for per-layer options); empty: any of the types."""


GENERAL = "General Setup"
PATHS = "Paths and General"
NETWORK = "Network Architecture"
MLP = "Multi Layer Perceptron (MLP) and Others"
DATA = "Data Options"
IMAGES = "Data Options for Images (ignored for vect-scalar)"
PREVIEW = "Preview Predictions"
ALTERNATIVE = "Alternative / vect-scalar Data Options"
OPTIMISATION = "Optimisation Options"
HYPER = "Optimiser Hyperparameters"

GROUPS = (GENERAL, PATHS, NETWORK, MLP, DATA, IMAGES, PREVIEW, ALTERNATIVE, OPTIMISATION, HYPER)

_O = Option

# Allowed values, declared once: the checks, the console, the optimiser factory and the
# generated docs all read them from the options that reference them.
MODES = ("img-img", "img-scalar", "vect-scalar")
TARGETS = ("nll", "regression", "affinity")
OPTIMIZERS = ("SGD", "CG", "RPROP", "LBFGS", "Adam")
ACTIVATIONS = ("tanh", "abs", "linear", "sig", "relu")
POOLING_MODES = ("max", "maxabs")
PRECISIONS = ("fp32", "bf16")
COMPILE_MODES = (
    True,
    False,
    "default",
    "reduce-overhead",
    "max-autotune",
    "max-autotune-no-cudagraphs",
)
BORDER_MODES = ("crop", "keep", "0-pad", "c-pad", "mirror", "reject")
PRE_PROCESSES = (None, "standardise")
ARCHITECTURES = ("cnn", "unet")
LOGGERS = ("tensorboard", "mlflow")


OPTIONS: tuple[Option, ...] = (
    # General Setup
    _O("save_path", "~/CNN_Training/", ("str",), "", GENERAL,
       "Folder in which the save directory <save_path>/<save_name>/ is created."),
    _O("plot_on", True, ("bool",), "$", GENERAL,
       "Make plots of the training progress in the save directory (in a separate process)."),
    _O("print_status", True, ("bool",), "$", GENERAL,
       "Print a status line (loss, errors, LR, speed) every history_freq steps."),
    _O("loggers", list(LOGGERS), ("list",), "$", GENERAL,
       "Log the status-line values and previews also here, each where its package is "
       "installed: tensorboard/ and mlruns/ (with the config) in the save dir; [] = none.",
       choices=LOGGERS),
    _O("device", False, ("bool", "int", "str"), "", GENERAL,
       "Default device if --gpu is not given: False = CPU, an int = that CUDA device, 'auto'."),
    _O("precision", "fp32", ("str",), "$", GENERAL,
       "Arithmetic of the training forward passes: bf16 is autocast, fast on GPUs.",
       choices=PRECISIONS),
    _O("channels_last", False, ("bool",), "$", GENERAL,
       "Store conv weights and batches channels-last (NHWC/NDHWC), faster with cuDNN on GPUs."),
    _O("torch_compile", False, ("bool", "str"), "$", GENERAL,
       "torch.compile the training step: True or a torch.compile mode (slow first steps).",
       choices=COMPILE_MODES),
    _O("random_seed", None, ("int", "None"), "$", GENERAL,
       "Seed of all random numbers (weights, patches, augmentation); None = a fresh one, printed."),
    _O("param_save_h", 1.0, ("float",), "", GENERAL,
       "Hours of training between persistent parameter snapshots."),
    _O("initial_prev_h", 1.0, ("float",), "", GENERAL,
       "Hours of training until the first preview prediction."),
    _O("prev_save_h", 3.0, ("float",), "", GENERAL,
       "Hours of training between preview predictions."),
    # Paths and General
    _O("save_name", "Test", ("str",), "!", PATHS,
       "Name of the save directory and prefix of every file written there."),
    _O("overwrite", True, ("bool",), "", PATHS,
       "If False, refuse to start when the save directory exists (nothing is touched)."),
    _O("param_file", None, ("str", "None"), "$", PATHS,
       "Parameter file to initialise the network from (shape changes are tolerated)."),
    # Network Architecture
    _O("activation_func", "relu", ("str", "list"), "", NETWORK,
       "Activation, global or one per layer (conv + MLP).", choices=ACTIVATIONS),
    _O("batch_size", 1, ("int",), "!", NETWORK,
       "Number of patches per update step."),
    _O("dropout_rates", [], ("list", "float", "None"), "", NETWORK,
       "Fail rates per layer (conv + MLP) or global; [] disables; never on the last layer."),
    _O("n_dim", 2, ("int",), "!", NETWORK,
       "Spatial dimensionality of the CNN: 2 or 3 (channels are not a dimension)."),
    _O("desired_input", 200, ("int", "list"), "!", NETWORK,
       "Desired input size, scalar or (x,y[,z]); the largest valid size <= it is used."),
    _O("filters", [], ("list",), "!", NETWORK,
       "Filter size per conv layer: ints or (x,y[,z]) tuples for anisotropic filters."),
    _O("pool", [], ("list",), "!", NETWORK,
       "Max-pooling factor per conv layer: ints or (x,y[,z]) tuples."),
    _O("nof_filters", [], ("list",), "!", NETWORK,
       "Number of filters (feature maps) per conv layer."),
    _O("pooling_mode", "max", ("str", "list"), "$", NETWORK,
       "maxabs = max of absolute values, sign kept; global or per conv layer.",
       choices=POOLING_MODES),
    _O("MFP", [], ("list", "bool", "int"), "!", NETWORK,
       "Max fragment pooling per conv layer (a bool each): training then has dense outputs and "
       "unstrided labels (on in every pooling layer, or in none); [] = off. Prediction uses "
       "MFP whatever it is."),
    _O("architecture", "cnn", ("str",), "$", NETWORK,
       "cnn: conv layers + pooling; unet: valid U-Net (filters/pool/nof_filters per level, "
       "last pool 1).", choices=ARCHITECTURES),
    _O("unet_n_convs", 2, ("int",), "$", NETWORK,
       "U-Net: valid convolutions per level (encoder and decoder)."),
    _O("unet_upsampling", "transposed", ("str",), "$", NETWORK,
       "U-Net up-sampling: transposed convolution, or nearest + 1x1 convolution.",
       choices=UNET_UPSAMPLING),
    _O("unet_batch_norm", False, ("bool",), "$", NETWORK,
       "U-Net: batch norm after each conv (running statistics in eval: tiles stay exact)."),
    # MLP and others
    _O("rnn_layer_kwargs", None, ("dict", "None"), "$", MLP,
       "dict(n_hid=..., activation_func='tanh') adds a recurrent layer before the MLP "
       "(vect-scalar only)."),
    _O("MLP_layers", [], ("list",), "!", MLP,
       "Neurons per fully connected layer after the conv layers; [] for img-img."),
    _O("target", "nll", ("str",), "", MLP,
       "Loss function: nll (classification), regression (mean squared error) or affinity "
       "(labels are object IDs; sigmoid cross-entropy per offset).",
       choices=TARGETS),
    _O("affinity_offsets", None, ("list", "None"), "$", MLP,
       "target='affinity': one offset (x,y[,z]) per output channel, the pair (v, v + offset); "
       "long-range ones allowed; None = nearest neighbours (-1 along each axis)."),
    _O("unlabelled_id", 0, ("int",), "$", MLP,
       "target='affinity': the object ID of unlabelled voxels (negative IDs are too); pairs "
       "touching one are not trained."),
    _O("affinity_dice", False, ("bool",), "$", MLP,
       "target='affinity': add the soft Dice loss of each affinity channel to the cross-entropy."),
    _O("lsd_sigma", None, ("int", "float", "list", "None"), "$", MLP,
       "target='affinity': also train local shape descriptors (10 in 3D, 6 in 2D; mean "
       "squared error) with this Gaussian window in voxels, scalar or (x,y[,z]); None = off."),
    # Data Options
    _O("mode", "img-img", ("str",), "!", DATA,
       "Kind of data and labels.", choices=MODES),
    _O("background_processes", False, ("bool", "int"), "!", DATA,
       "Prepare batches in background processes: True (= 2) or the number of processes."),
    _O("data_in_memory", True, ("bool",), "$", DATA,
       "False keeps h5 volumes on disk and reads only each patch's region (data larger than RAM)."),
    _O("n_lab", None, ("int", "None"), "!", DATA,
       "Number of classes; None detects it from the labels (slow)."),
    # Data Options for images
    _O("data_path", "", ("str",), "!", IMAGES,
       "Folder of the image files (relative paths resolve against the config file's folder)."),
    _O("label_path", "", ("str",), "!", IMAGES,
       "Folder of the label files (relative paths resolve against the config file's folder)."),
    _O("d_files", [], ("list",), "!", IMAGES,
       "Image files: list of (file, dataset key), or (file, key, (z0, z1)) for z0 <= z < z1 of "
       "it (e.g. one volume split into training and validation cubes)."),
    _O("l_files", [], ("list",), "!", IMAGES,
       "Label files: (file, key) or (file, key, (z0, z1)), in the same order as d_files."),
    _O("cube_prios", None, ("list", "None"), "", IMAGES,
       "Relative sampling priority per cube (order of d_files); None = proportional to size."),
    _O("valid_cubes", [], ("list",), "", IMAGES,
       "Indices of the cubes (order of d_files) used for validation only."),
    _O("example_ignore_threshold", 0.0, ("float", "None"), "$", IMAGES,
       "Discard a patch whose fraction of unlabelled (negative) labels exceeds this."),
    _O("grey_augment_channels", [0], ("list",), "!", IMAGES,
       "Channels with random grey-value augmentation; [] disables it."),
    _O("use_example_weights", False, ("bool",), "$", IMAGES,
       "Weight examples by a previous prediction in the last input channel (boosting-like)."),
    _O("flip_data", True, ("bool",), "", IMAGES,
       "Randomly flip, rotate by 90 degrees and mirror the patches."),
    _O("anisotropic_data", True, ("bool",), "!", IMAGES,
       "2D nets cut slices only across z; False uses all three orientations."),
    _O("lazy_labels", False, ("bool",), "$", IMAGES,
       "Training with lazy annotations (per-cube 'info' dataset in the label files)."),
    _O("warp_on", False, ("bool", "float"), "!", IMAGES,
       "Random warping of training patches: True, or the fraction of patches to warp."),
    _O("elastic_deform", False, ("bool", "float"), "$", IMAGES,
       "Elastic deformation of training patches (composed with the warp): True or a fraction."),
    _O("elastic_spacing", [32, 32, 4], ("int", "float", "list"), "$", IMAGES,
       "Elastic control-grid spacing in voxels, scalar or (x,y[,z]); z-aware for anisotropy."),
    _O("elastic_strength", 3.0, ("int", "float", "list"), "$", IMAGES,
       "Elastic in-plane displacement (standard deviation per control point) in voxels, "
       "scalar or (x,y)."),
    _O("border_mode", "crop", ("str",), "!", IMAGES,
       "What img-scalar does with images of invalid size.", choices=BORDER_MODES),
    _O("pre_process", None, ("str", "None"), "$", IMAGES,
       "'standardise' gives the images zero mean and unit standard deviation.",
       choices=PRE_PROCESSES),
    _O("zchxy_order", False, ("bool",), "", IMAGES,
       "Set True if the h5 data is stored as (z,(ch,)x,y) instead of ((ch,)x,y,z)."),
    _O("upright_x", False, ("bool",), "", IMAGES,
       "Only mirror horizontally (e.g. for handwriting or outdoor images)."),
    _O("downsample_xy", False, ("bool", "int"), "", IMAGES,
       "Down-sample the training data in x and y by this factor (False = off)."),
    # Preview
    _O("preview_data_path", None, ("str", "None"), "", PREVIEW,
       "h5 file with raw cubes ((ch,)x,y,z), 0-255, to predict as previews; None = no previews."),
    _O("preview_kwargs", {"export_class": 1, "max_z_pred": 5}, ("dict",), "", PREVIEW,
       "Preview settings: export_class (int, list or 'all') and max_z_pred."),
    # Alternative / vect-scalar
    _O("data_class_name", None, ("str", "list", "None"), "", ALTERNATIVE,
       "Data class shipped with elektronn (e.g. 'MNISTData') or (file_path, class_name)."),
    _O("data_load_kwargs", {}, ("dict",), "", ALTERNATIVE,
       "Keyword arguments to create the data class."),
    _O("data_batch_kwargs", {}, ("dict",), "", ALTERNATIVE,
       "Keyword arguments for the data class's getbatch (batch_size is added automatically)."),
    # Optimisation
    _O("n_steps", 10**12, ("int",), "!", OPTIMISATION,
       "Maximal number of update steps."),
    _O("max_runtime", 24 * 3600, ("int", "float"), "!", OPTIMISATION,
       "Maximal training time in seconds, including batch creation and monitoring."),
    _O("history_freq", [2000], ("list", "int"), "!", OPTIMISATION,
       "Every this many steps: monitor errors, print status, save history, LAST and plots."),
    _O("monitor_batch_size", 10, ("int",), "", OPTIMISATION,
       "Patches used to estimate training and validation performance."),
    _O("weight_decay", False, ("bool", "float"), "$", OPTIMISATION,
       "L2 penalty on the weights; False = 0."),
    _O("class_weights", None, ("list", "None"), "", OPTIMISATION,
       "Importance of each class (length n_lab), normalised internally; None = equal."),
    _O("label_prop_thresh", None, ("float", "None"), "", OPTIMISATION,
       "Label propagation for unlabelled pixels above this probability; <= 0.5 disables."),
    _O("optimizer", "SGD", ("str",), "", OPTIMISATION,
       "Optimiser (switchable in the Ctrl+C console).", choices=OPTIMIZERS),
    _O("LR_decay", 0.993, ("float",), "", OPTIMISATION,
       "Learning-rate multiplier per 1000 update steps."),
    _O("LR_schedule", None, ("list", "None"), "", OPTIMISATION,
       "List of (step, LR): at that step the LR is set to that value (any order)."),
    # Optimiser hyperparameters
    _O("SGD_params", {"LR": 0.001, "momentum": 0.9}, ("dict",), "!", HYPER,
       "Initial learning rate and momentum for SGD."),
    _O("Adam_params", {"LR": 0.001, "beta1": 0.9, "beta2": 0.999, "epsilon": 1e-8},
       ("dict",), "$", HYPER,
       "Learning rate and moment decays for Adam."),
    _O("RPROP_params", {"penalty": 0.35, "gain": 0.2, "beta": 0.7, "initial_update_size": 1e-4},
       ("dict",), "$", HYPER,
       "Step-size penalty and gain per sign change and the initial step size for RPROP."),
    _O("CG_params", {"n_steps": 4, "alpha": 0.35, "beta": 0.75, "max_step": 0.02,
                     "min_step": 8e-5},
       ("dict",), "$", HYPER,
       "n_steps per batch (3-6), alpha <= 0.35 line-search criterion, beta precision "
       "(0.5-0.9), max_step/min_step."),
    _O("LBFGS_params", {"maxfun": 40, "maxiter": 4, "m": 10, "factr": 1e2, "pgtol": 1e-9,
                        "iprint": -1},
       ("dict",), "$", HYPER,
       "Evaluations, iterations and history length of L-BFGS on each batch."),
)  # fmt: skip

OPTIONS_BY_NAME: dict[str, Option] = {o.name: o for o in OPTIONS}

ALWAYS_MANDATORY = (
    "SGD_params",
    "batch_size",
    "max_runtime",
    "monitor_batch_size",
    "n_steps",
    "n_lab",
    "save_name",
    "mode",
)
IMAGE_MODE_MANDATORY = ("desired_input", "filters", "n_dim", "nof_filters", "pool")
VECT_MANDATORY = ("MLP_layers",)
FILE_DATA_MANDATORY = ("d_files", "data_path", "l_files", "label_path")
