"""The configuration chain: master defaults → user defaults file → training config → ``--set``.

Config files are plain Python executed in a fresh namespace. Every top-level name they leave
behind must be an option of the table, except imported modules and names starting with ``_``,
which are ignored (the original rejected them, which forced ``del ii`` after every loop).
"""

from __future__ import annotations

import copy
import difflib
import os
import traceback
import types
from pathlib import Path
from typing import Any

from ..errors import UserError
from .options import OPTIONS, OPTIONS_BY_NAME

USER_CONFIG_ENV = "ELEKTRONN_USER_CONFIG"


class ConfigError(UserError):
    """A configuration problem, explained in one paragraph that names the file and option."""


def master_defaults() -> dict[str, Any]:
    """Fresh (deep-copied) defaults of every option, so no run can mutate the table."""
    return {o.name: copy.deepcopy(o.default) for o in OPTIONS}


def user_config_path() -> Path:
    """``$ELEKTRONN_USER_CONFIG`` if set (tests use it), otherwise ``~/.elektronn.config``."""
    return Path(os.environ.get(USER_CONFIG_ENV, "~/.elektronn.config")).expanduser()


def closest_option(name: str) -> str | None:
    """The valid option most similar to a misspelt ``name``, for "did you mean" hints."""
    matches = difflib.get_close_matches(name, OPTIONS_BY_NAME, n=1, cutoff=0.5)
    if not matches:
        matches = difflib.get_close_matches(name.lower(), [n.lower() for n in OPTIONS_BY_NAME])
        matches = [n for n in OPTIONS_BY_NAME if matches and n.lower() == matches[0]]
    return matches[0] if matches else None


def _is_ignored(name: str, value: Any) -> bool:
    return name.startswith("_") or isinstance(value, types.ModuleType)


def _error_line(exc: BaseException, path: Path) -> int | None:
    """Line number in ``path`` where ``exc`` was raised (innermost frame in that file)."""
    if isinstance(exc, SyntaxError) and exc.filename == str(path):
        return exc.lineno
    frames = [f for f in traceback.extract_tb(exc.__traceback__) if f.filename == str(path)]
    return frames[-1].lineno if frames else None


def execute_config_file(path: Path) -> dict[str, Any]:
    """Run a config file and return the option values it assigns.

    Raises
    ------
    ConfigError
        If the file is missing, does not run (with the line number), or assigns a name
        that is not an option.
    """
    if not path.is_file():
        raise ConfigError(f"Config file '{path}' does not exist (or is not a file).")
    source = path.read_text()
    namespace: dict[str, Any] = {"__file__": str(path), "__name__": "__elektronn_config__"}
    try:
        exec(compile(source, str(path), "exec"), namespace)
    except Exception as exc:  # any error in user code becomes a readable config error
        line = _error_line(exc, path)
        where = f" at line {line}" if line else ""
        detail = exc.msg if isinstance(exc, SyntaxError) else str(exc)
        raise ConfigError(
            f"Config file '{path}' could not be executed{where}: "
            f"{type(exc).__name__}: {detail}. A config file is Python code assigning option values."
        ) from None
    values = {}
    for name, value in namespace.items():
        if name in ("__file__", "__name__", "__builtins__", "__doc__") or _is_ignored(name, value):
            continue
        if name not in OPTIONS_BY_NAME:
            hint = closest_option(name)
            did_you_mean = f" Did you mean '{hint}'?" if hint else ""
            raise ConfigError(
                f"Config file '{path}' sets '{name}', which is not a configuration option."
                f"{did_you_mean} (Helper names starting with '_' and imported modules are "
                f"ignored; see docs/options.md for all options.)"
            )
        values[name] = value
    return values


def parse_override(text: str) -> tuple[str, Any]:
    """Parse one ``--set NAME=VALUE``; VALUE is a Python expression, or a bare string."""
    name, sep, expr = text.partition("=")
    name = name.strip()
    if not sep or not name:
        raise ConfigError(f"--set '{text}' is not of the form NAME=VALUE (e.g. n_steps=100).")
    if name not in OPTIONS_BY_NAME:
        hint = closest_option(name)
        did_you_mean = f" Did you mean '{hint}'?" if hint else ""
        raise ConfigError(f"--set '{text}': '{name}' is not a configuration option.{did_you_mean}")
    try:
        value = eval(expr, {"__builtins__": {"dict": dict, "list": list, "tuple": tuple}})
    except (NameError, SyntaxError):
        value = expr.strip()  # e.g. --set save_name=run7
    return name, value


def gather_values(
    config_file: Path, overrides: list[str] | tuple[str, ...] = ()
) -> tuple[dict[str, Any], set[str]]:
    """Merge the chain; returns the values and the names the user set for this training."""
    values = master_defaults()
    user_file = user_config_path()
    if user_file.is_file():
        values.update(execute_config_file(user_file))
    specific = execute_config_file(config_file)
    specific.update(parse_override(o) for o in overrides)
    values.update(specific)
    return values, set(specific)
