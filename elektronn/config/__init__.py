"""Configuration: the options table, the chain of config files, checks and normalisation."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from ..arch import (
    MFP_UNET_MESSAGE,
    ArchitectureError,
    compute_architecture,
    compute_unet_architecture,
)
from .chain import ConfigError, gather_values
from .checks import check_consistency, check_types, missing_mandatory, normalise, resolve_paths
from .options import OPTIONS_BY_NAME

__all__ = ["Config", "ConfigError", "config_from_values", "load_config", "missing_warning"]


class Config:
    """The resolved configuration: one attribute per option, plus where it came from.

    It is read-only: what a run detects or changes lives in its state
    (:class:`elektronn.train.state.RunState`). Besides the options, ``config_file`` and
    ``config_dir`` say which file was read,
    ``arch`` holds the :class:`~elektronn.arch.Architecture` of image modes (None for
    vect-scalar) and ``missing`` lists mandatory options the training config did not set.
    """

    def __init__(self, values: dict[str, Any], config_file: str, arch: Any, missing: list[str]):
        self.__dict__.update(values)
        self.__dict__.update(
            config_file=config_file,
            config_dir=str(Path(config_file).parent),
            arch=arch,
            missing=missing,
        )

    def __setattr__(self, name: str, value: Any) -> None:
        """Frozen after the checks: values decided at run time live in the run's state."""
        raise ConfigError(
            f"The configuration is read-only once checked, so '{name}' cannot be set. During "
            f"training the Ctrl+C console changes run.n_steps, run.max_runtime, "
            f"run.history_freq (sethist), the LR (setlr), the momentum (setmom), the optimiser "
            f"and batch_kwargs[...]; for a new run use --set {name}=VALUE."
        )

    def to_dict(self) -> dict[str, Any]:
        """The final value of every option (not the bookkeeping attributes)."""
        return {name: getattr(self, name) for name in OPTIONS_BY_NAME}

    @property
    def save_dir(self) -> str:
        """``<save_path>/<save_name>``: where every file of this training goes."""
        return str(Path(self.save_path) / self.save_name)


def build_architecture(values: dict[str, Any]):
    """The architecture of an image-mode net, or None for vect-scalar.

    The calculator's errors become :class:`ConfigError`, for both architectures alike.
    """
    if values["mode"] == "vect-scalar":
        return None
    try:
        if values["architecture"] == "unet":
            return build_unet_architecture(values)
        return compute_architecture(
            values["filters"],
            values["pool"],
            values["desired_input"],
            values["n_dim"],
            mfp=values["MFP"],
            force_center=values["mode"] == "img-img",
            border_mode=values["border_mode"] if values["mode"] == "img-scalar" else None,
        )
    except ConfigError:  # the U-Net's own checks, already one paragraph
        raise
    except ArchitectureError as exc:
        raise ConfigError(str(exc)) from None
    except (TypeError, ValueError) as exc:
        raise ConfigError(
            f"The architecture options 'filters', 'pool' and 'desired_input' do not fit together "
            f"for n_dim={values['n_dim']}: {exc}. Use ints or one {values['n_dim']}-tuple "
            f"per layer."
        ) from None


def build_unet_architecture(values: dict[str, Any]):
    """The U-Net geometry; MFP and MLP layers are refused (its output is dense already)."""
    if values["mode"] != "img-img" or values["MLP_layers"]:
        raise ConfigError(
            f"architecture='unet' predicts a dense map: it needs mode 'img-img' and "
            f"MLP_layers=[] (mode is {values['mode']!r}, MLP_layers {values['MLP_layers']!r})."
        )
    if any(values["MFP"]):
        raise ConfigError(MFP_UNET_MESSAGE)
    if any(mode != "max" for mode in values["pooling_mode"]):
        raise ConfigError(
            f"Option 'pooling_mode' is {values['pooling_mode']!r}, but a U-Net down-samples by "
            f"max pooling only: leave pooling_mode at 'max' with architecture='unet'."
        )
    return compute_unet_architecture(
        values["filters"],
        values["pool"],
        values["desired_input"],
        values["n_dim"],
        n_convs=values["unet_n_convs"],
        upsampling=values["unet_upsampling"],
        batch_norm=values["unet_batch_norm"],
        force_center=True,
    )


def config_from_values(values: dict[str, Any], config_file: str, set_by_user: set[str]) -> Config:
    """Check, normalise and complete merged option values into a :class:`Config`."""
    check_types(values)
    check_consistency(values)
    normalise(values)
    resolve_paths(values, str(Path(config_file).parent))
    arch = build_architecture(values)
    return Config(values, config_file, arch, missing_mandatory(values, set_by_user))


def load_config(config_file: str | Path, overrides: list[str] | tuple[str, ...] = ()) -> Config:
    """Read a training config through the whole chain and return the checked configuration.

    Parameters
    ----------
    config_file
        The training config (Python file).
    overrides
        ``NAME=VALUE`` strings from ``--set``, applied last.

    Raises
    ------
    ConfigError
        With a one-paragraph explanation for any invalid, misspelt or inconsistent option.
    """
    path = Path(config_file).expanduser().resolve()
    values, set_by_user = gather_values(path, overrides)
    return config_from_values(values, str(path), set_by_user)


def missing_warning(config: Config) -> str | None:
    """The one warning line listing mandatory options the training config left unset."""
    if not config.missing:
        return None
    return (
        f"WARNING: {Path(config.config_file).name} does not set these options that should be "
        f"set for every training; their defaults are used: {', '.join(config.missing)}."
    )
