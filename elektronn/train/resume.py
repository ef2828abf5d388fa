"""Resuming a stopped or crashed run: ``elektronn-train --resume SAVE_DIR``.

Every ``-LAST`` backup and the final ``_end`` file hold, besides the weights, the resolved
configuration and the trainer's state (step, time, optimiser state, LR and the random-number
states; the logs are read back from ``Backup/``), so a resumed run continues as if it had
never stopped.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from ..config import Config, ConfigError, config_from_values
from ..config.chain import master_defaults, parse_override
from ..net.paramfile import load_params


def find_checkpoint(path: str | Path) -> Path:
    """The parameter file to resume from: the given file, or the save directory's newest."""
    path = Path(path).expanduser()
    if path.is_file():
        return path
    candidates = sorted(path.glob("*-LAST.param")) + sorted(path.glob("*_end.param"))
    if not path.is_dir() or not candidates:
        raise ConfigError(
            f"--resume '{path}': expected a save directory containing <save_name>-LAST.param "
            f"or <save_name>_end.param, or one such parameter file."
        )
    return max(candidates, key=lambda p: _saved_step(load_params(p)))


def _saved_step(checkpoint: dict[str, Any]) -> int:
    extra = checkpoint.get("extra") or {}
    return int(extra.get("step", -1))


def config_from_checkpoint(checkpoint: dict[str, Any], path: Path, overrides=()) -> Config:
    """The run's resolved configuration, with ``--set`` overrides (e.g. a larger n_steps)."""
    if not checkpoint.get("config") or "step" not in (checkpoint.get("extra") or {}):
        raise ConfigError(f"'{path}' holds no training state (not written by elektronn-train).")
    values = master_defaults()
    values.update(checkpoint["config"])
    values.update(parse_override(o) for o in overrides)
    values["overwrite"] = True
    config_file = path.parent / "Backup" / "config.py"
    return config_from_values(values, str(config_file), set(values))
