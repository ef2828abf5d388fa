"""The save directory ``<save_path>/<save_name>/`` with its ``Backup/`` of the configuration."""

from __future__ import annotations

import os
import pprint
import shutil
from pathlib import Path
from typing import Any

from ..config import Config, ConfigError

BACKUP = "Backup"


def prepare_save_dir(config: Config, resolved: dict[str, Any]) -> Path:
    """Create the save directory (refusing an existing one when ``overwrite=False``).

    With ``overwrite=True`` an existing directory is reused: files of the same name are
    replaced as training writes them, other files (e.g. snapshots of an earlier run) stay,
    which is safer than the original's ``rmtree``. The config file and the fully resolved
    configuration (``resolved``: the config with the run state written in) are copied into
    ``Backup/`` and the working directory is set there.

    Raises
    ------
    ConfigError
        If the directory exists and ``overwrite`` is False, or it cannot be created.
    """
    save_dir = check_save_dir(config)
    try:
        (save_dir / BACKUP).mkdir(parents=True, exist_ok=True)
        shutil.copyfile(config.config_file, save_dir / BACKUP / "config.py")
        text = render_resolved_config(config, resolved)
        (save_dir / BACKUP / "resolved_config.py").write_text(text)
    except OSError as exc:
        raise ConfigError(
            f"Cannot create the save directory '{save_dir}' (from 'save_path' and "
            f"'save_name'): {exc.strerror or exc}."
        ) from None
    os.chdir(save_dir)
    return save_dir


def check_save_dir(config: Config) -> Path:
    """The save directory, refused before any data is read if ``overwrite=False`` forbids it.

    Raises
    ------
    ConfigError
        If the directory exists and ``overwrite`` is False.
    """
    save_dir = Path(config.save_dir)
    if save_dir.exists() and not config.overwrite:
        raise ConfigError(
            f"The save directory '{save_dir}' exists and overwrite=False: nothing was touched. "
            f"Choose another 'save_name' or set overwrite=True."
        )
    return save_dir


def enter_save_dir(config: Config) -> Path:
    """Work in an existing save directory (resuming), touching none of its files."""
    save_dir = Path(config.save_dir)
    if not save_dir.is_dir():
        raise ConfigError(f"The save directory '{save_dir}' of the resumed run does not exist.")
    os.chdir(save_dir)
    return save_dir


def render_resolved_config(config: Config, resolved: dict[str, Any]) -> str:
    """Every option's final value as a config file that can itself be trained from."""
    lines = [
        f'"""Fully resolved configuration of {config.config_file} (all options, final values)."""',
        "",
    ]
    for name, value in resolved.items():
        text = pprint.pformat(value, width=90, sort_dicts=False)
        lines.append(f"{name} = {text}")
    return "\n".join(lines) + "\n"
