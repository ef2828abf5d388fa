"""Type checks, consistency checks and normalisation of a merged configuration.

Every problem raises :class:`ConfigError` with one paragraph naming the option, the value and
what was expected, so that a bad config never surfaces as a stack trace deep inside training.
"""

from __future__ import annotations

import os
from numbers import Integral, Real
from typing import Any

from .chain import ConfigError
from .options import (
    ALWAYS_MANDATORY,
    FILE_DATA_MANDATORY,
    IMAGE_MODE_MANDATORY,
    OPTIMIZERS,
    OPTIONS,
    OPTIONS_BY_NAME,
    VECT_MANDATORY,
)
from .targets import affinity_channels, checked_offsets

PER_LAYER_CHOICES = {"activation_func": "Activation", "pooling_mode": "Pooling"}
"""Options whose choices apply to each per-layer entry (checked after broadcasting)."""

_TYPE_TESTS = {
    "bool": lambda v: isinstance(v, bool) or (isinstance(v, Integral) and v in (0, 1)),
    "int": lambda v: isinstance(v, Integral) and not isinstance(v, bool),
    "float": lambda v: isinstance(v, Real) and not isinstance(v, bool),
    "str": lambda v: isinstance(v, str),
    "list": lambda v: isinstance(v, (list, tuple)),
    "dict": lambda v: isinstance(v, dict),
    "None": lambda v: v is None,
}

_TYPE_WORDS = {
    "bool": "True/False",
    "int": "an integer",
    "float": "a number",
    "str": "a string",
    "list": "a list",
    "dict": "a dict",
    "None": "None",
}


def matches_type(value: Any, types: tuple[str, ...]) -> bool:
    """Whether ``value`` is of one of the option type names of the options table."""
    return any(_TYPE_TESTS[t](value) for t in types)


def check_types(values: dict[str, Any]) -> None:
    """Raise for the first option whose value has a type the table does not allow."""
    for option in OPTIONS:
        value = values[option.name]
        if not matches_type(value, option.types):
            expected = " or ".join(_TYPE_WORDS[t] for t in option.types)
            raise ConfigError(
                f"Option '{option.name}' is {value!r} ({type(value).__name__}), but it must be "
                f"{expected}: {option.doc}"
            )


def _require(condition: bool, message: str) -> None:
    if not condition:
        raise ConfigError(message)


def _choice(values: dict[str, Any], name: str, choices: tuple) -> None:
    _require(
        values[name] in choices,
        f"Option '{name}' is {values[name]!r}, but it must be one of "
        f"{', '.join(map(repr, choices))}.",
    )


def _per_layer(values: dict[str, Any], name: str, n: int, what: str) -> list:
    """Broadcast a global value to a list of ``n`` entries or check an explicit list's length."""
    value = values[name]
    if isinstance(value, (list, tuple)):
        _require(
            len(value) == n,
            f"Option '{name}' has {len(value)} entries, but there are {n} {what}; give one entry "
            f"per layer or a single global value.",
        )
        return list(value)
    return [value] * n


def missing_mandatory(values: dict[str, Any], set_by_user: set[str]) -> list[str]:
    """Names that should be set in the training config for this mode but were not."""
    names = list(ALWAYS_MANDATORY)
    if values["mode"] in ("img-img", "img-scalar"):
        names += IMAGE_MODE_MANDATORY
    else:
        names += VECT_MANDATORY
    if values["data_class_name"] is None:
        names += FILE_DATA_MANDATORY
    return sorted(n for n in names if n not in set_by_user)


def check_consistency(values: dict[str, Any]) -> None:
    """Checks across options (reference §1.3), with the specification's additions."""
    for option in OPTIONS:
        if not option.choices or option.name in PER_LAYER_CHOICES:
            continue
        if option.types == ("list",):  # a list of choices (loggers)
            for entry in values[option.name]:
                _require(
                    entry in option.choices,
                    f"Option '{option.name}' has {entry!r}, but its entries must be among "
                    f"{', '.join(map(repr, option.choices))}.",
                )
        else:
            _choice(values, option.name, option.choices)
    mode = values["mode"]
    n_conv = len(values["nof_filters"])
    _require(
        len(values["filters"]) == len(values["pool"]) == n_conv,
        f"'filters' ({len(values['filters'])} entries), 'pool' ({len(values['pool'])}) and "
        f"'nof_filters' ({n_conv}) must have one entry per conv layer each.",
    )
    _require(
        values["n_dim"] in (2, 3), f"Option 'n_dim' is {values['n_dim']!r}, but must be 2 or 3."
    )
    _require(values["batch_size"] >= 1, "Option 'batch_size' must be at least 1.")
    if mode == "img-img":
        _require(
            not values["MLP_layers"],
            "mode 'img-img' predicts an image and cannot have 'MLP_layers'; set MLP_layers = [].",
        )
        _require(n_conv > 0, "mode 'img-img' needs conv layers ('filters', 'pool', 'nof_filters').")
    if mode == "img-scalar":
        _require(values["MLP_layers"], "mode 'img-scalar' needs 'MLP_layers' (e.g. [300, 300]).")
    if mode == "vect-scalar":
        _require(
            n_conv == 0, "mode 'vect-scalar' takes vectors and cannot have conv layers ('filters')."
        )
    _require(
        not values["lazy_labels"] or mode == "img-img",
        "Option 'lazy_labels' only works in mode 'img-img'.",
    )
    _require(
        values["rnn_layer_kwargs"] is None or mode == "vect-scalar",
        "Option 'rnn_layer_kwargs' only works in mode 'vect-scalar'.",
    )
    _require(
        mode == "vect-scalar"
        or values["data_class_name"] is not None
        or len(values["d_files"]) == len(values["l_files"]),
        f"'d_files' has {len(values['d_files'])} entries but 'l_files' has "
        f"{len(values['l_files'])}; they must list images and labels in the same order.",
    )
    warp = values["warp_on"]
    _require(
        isinstance(warp, bool) or 0.0 <= warp <= 1.0,
        f"Option 'warp_on' is {warp!r}: use True/False or a fraction between 0 and 1.",
    )
    _check_limits(values)
    _check_class_weights(values)
    _check_affinity(values)
    _check_optimizer_params(values)
    _check_schedule(values["LR_schedule"])
    _check_data_class(values["data_class_name"])


def _check_limits(values: dict[str, Any]) -> None:
    """A run with no steps or no time would train nothing and still overwrite ``_end.param``."""
    for name in ("n_steps", "max_runtime"):
        _require(
            values[name] > 0,
            f"Option '{name}' is {values[name]!r}, so the run would make no update step and then "
            f"overwrite <save_name>_end.param with an untrained net; give a positive number "
            f"({OPTIONS_BY_NAME[name].doc[:-1].lower()}).",
        )


def _check_class_weights(values: dict[str, Any]) -> None:
    weights, n_lab = values["class_weights"], values["n_lab"]
    if weights is None:
        return
    _require(
        n_lab is None or len(weights) == n_lab,
        f"Option 'class_weights' has {len(weights)} entries but n_lab is {n_lab}; give one "
        f"weight per class.",
    )
    _require(
        all(isinstance(w, Real) and w >= 0 for w in weights) and sum(weights) > 0,
        f"Option 'class_weights' is {weights!r}: weights must be non-negative numbers, not all 0.",
    )


def _check_affinity(values: dict[str, Any]) -> None:
    """Affinity options: offsets of the net's dimension, ``n_lab`` matching them, no LSDs
    on class or regression targets (their outputs are not shapes of objects)."""
    if values["target"] != "affinity":
        _require(
            values["lsd_sigma"] is None,
            f"Option 'lsd_sigma' is {values['lsd_sigma']!r}, but local shape descriptors are an "
            f"auxiliary target of target='affinity' (labels are object IDs), not of "
            f"target={values['target']!r}; set lsd_sigma = None or target = 'affinity'.",
        )
        return
    _require(
        values["mode"] == "img-img",
        f"target='affinity' needs mode 'img-img' (labels are ID images), not {values['mode']!r}.",
    )
    n_dim = values["n_dim"]
    offsets = checked_offsets(values["affinity_offsets"], n_dim)
    sigma = values["lsd_sigma"]
    if sigma is not None:
        sigmas = sigma if isinstance(sigma, (list, tuple)) else [sigma]
        _require(
            len(sigmas) in (1, n_dim)
            and all(isinstance(v, Real) and not isinstance(v, bool) and v > 0 for v in sigmas),
            f"Option 'lsd_sigma' is {sigma!r}: give one positive window size in voxels, or one "
            f"per axis ({n_dim} values, user order).",
        )
    expected = affinity_channels(len(offsets), n_dim, sigma)
    _require(
        values["n_lab"] is None or values["n_lab"] == expected,
        f"Option 'n_lab' is {values['n_lab']}, but target='affinity' with {len(offsets)} "
        f"offsets{' and local shape descriptors' if sigma is not None else ''} has {expected} "
        f"outputs; set n_lab = None (it follows from affinity_offsets and lsd_sigma) or "
        f"{expected}.",
    )
    _require(
        values["class_weights"] is None,
        "Option 'class_weights' does not apply to target='affinity': each affinity channel "
        "is balanced by its own shares of 0 and 1; set class_weights = None.",
    )


def _check_optimizer_params(values: dict[str, Any]) -> None:
    """Keys of ``SGD_params`` etc. must be those of the option's default dict."""
    for name in OPTIMIZERS:
        option = f"{name}_params"
        known = OPTIONS_BY_NAME[option].default
        unknown = sorted(set(values[option]) - set(known))
        _require(
            not unknown,
            f"Option '{option}' has unknown key(s) {', '.join(map(repr, unknown))}; "
            f"the keys are {', '.join(map(repr, known))}.",
        )


def _check_schedule(schedule: Any) -> None:
    if schedule is None:
        return
    _require(
        all(
            isinstance(e, (list, tuple))
            and len(e) == 2
            and isinstance(e[0], Integral)
            and isinstance(e[1], Real)
            for e in schedule
        ),
        f"Option 'LR_schedule' is {schedule!r}: it must be a list of (step, learning_rate) pairs.",
    )


def _check_data_class(name: Any) -> None:
    _require(
        name is None
        or isinstance(name, str)
        or (len(name) == 2 and all(isinstance(x, str) for x in name)),
        f"Option 'data_class_name' is {name!r}: give a class name or (file_path, class_name).",
    )


def normalise(values: dict[str, Any]) -> None:
    """Bring values into the one shape the rest of the package relies on (in place)."""
    n_conv = len(values["nof_filters"])
    n_layers = n_conv + len(values["MLP_layers"])
    values["activation_func"] = _per_layer(
        values, "activation_func", n_layers, "layers (conv + MLP)"
    )
    values["pooling_mode"] = _per_layer(values, "pooling_mode", n_conv, "conv layers")
    for name, what in PER_LAYER_CHOICES.items():
        choices = OPTIONS_BY_NAME[name].choices
        for entry in values[name]:
            _require(entry in choices, f"{what} {entry!r} in '{name}' is not one of {choices}.")
    values["dropout_rates"] = _normalise_dropout(values["dropout_rates"], n_layers)
    values["MFP"] = _normalise_mfp(values["MFP"], n_conv)
    if isinstance(values["history_freq"], Integral):
        values["history_freq"] = [values["history_freq"]]
    _require(
        len(values["history_freq"]) == 1 and values["history_freq"][0] >= 1,
        f"Option 'history_freq' is {values['history_freq']!r}: give one positive number of steps, "
        f"e.g. [500].",
    )
    values["weight_decay"] = float(values["weight_decay"] or 0.0)
    values["example_ignore_threshold"] = float(values["example_ignore_threshold"] or 0.0)
    bs = values["batch_size"]
    values["monitor_batch_size"] = max(bs, values["monitor_batch_size"] // bs * bs)
    if values["background_processes"] is True:
        values["background_processes"] = 2
    values["background_processes"] = int(values["background_processes"])
    if values["class_weights"] is not None:
        values["class_weights"] = [float(w) for w in values["class_weights"]]
    if values["target"] == "affinity":
        offsets = checked_offsets(values["affinity_offsets"], values["n_dim"])
        values["affinity_offsets"] = [list(o) for o in offsets]
        values["n_lab"] = affinity_channels(len(offsets), values["n_dim"], values["lsd_sigma"])


def _normalise_dropout(rates: Any, n_layers: int) -> list[float]:
    if rates is None or (isinstance(rates, (list, tuple)) and len(rates) == 0):
        return []
    if not isinstance(rates, (list, tuple)):
        rates = [rates] * n_layers
    _require(
        len(rates) == n_layers,
        f"Option 'dropout_rates' has {len(rates)} entries but the net has {n_layers} layers "
        f"(conv + MLP); give one rate per layer, a single rate, or [].",
    )
    _require(
        all(isinstance(r, Real) and 0.0 <= r < 1.0 for r in rates),
        f"Option 'dropout_rates' is {rates!r}: fail rates must be in [0, 1).",
    )
    return [float(r) for r in rates]


def _normalise_mfp(mfp: Any, n_conv: int) -> list[bool]:
    if mfp in (False, None, 0) or (isinstance(mfp, (list, tuple)) and len(mfp) == 0):
        return [False] * n_conv
    if mfp is True or mfp == 1:
        return [True] * n_conv
    _require(
        len(mfp) == n_conv,
        f"Option 'MFP' has {len(mfp)} entries but there are {n_conv} conv layers.",
    )
    return [bool(m) for m in mfp]


_PATH_OPTIONS = ("data_path", "label_path", "preview_data_path", "param_file")


def resolve_paths(values: dict[str, Any], config_dir: str) -> None:
    """Expand ``~`` and make data paths absolute relative to the config file's folder."""
    values["save_path"] = os.path.abspath(os.path.expanduser(values["save_path"]))
    for name in _PATH_OPTIONS:
        if values[name]:
            values[name] = os.path.join(config_dir, os.path.expanduser(values[name]))
    name = values["data_class_name"]
    if isinstance(name, (list, tuple)):
        values["data_class_name"] = (
            os.path.join(config_dir, os.path.expanduser(name[0])),
            name[1],
        )
