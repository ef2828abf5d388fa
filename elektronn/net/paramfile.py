"""Parameter files: one torch checkpoint with the weights, the net description and the config.

Format (``torch.save`` of a dict, readable with ``torch.load(path, weights_only=True)``)::

    {'format': 'elektronn-params', 'version': 1,
     'state_dict': {name: tensor},     # ElektronnNet.state_dict(), on the CPU
     'net': NetSpec.to_dict(),         # what build_model_from_params rebuilds the net from
     'config': {option: value},        # the resolved training config (Config.to_dict())
     'n_ch': int, 'n_lab': int,
     'input_standardisation': [mean, std] or None,  # pre_process='standardise' of training
     'extra': {...} or None}           # e.g. the trainer's resumable state

The net's geometry is not stored: the architecture calculator recomputes it from ``'net'``
when the net is rebuilt. Files of earlier versions carry an unused ``'arch'`` entry; it is
ignored, so they still load.

Files are written atomically (temporary file in the same folder, fsync, ``os.replace``), so
a crash or a full disk during a save never destroys the previous ``-LAST`` file.

:func:`load_into_model` is the adaptive loader of ELEKTRONN 1.x (reference §5.5) for
``param_file`` initialisation: it tolerates changed filter sizes and layer widths.
"""

from __future__ import annotations

import io
import os
import tempfile
import zipfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import Tensor, nn

from ..errors import UserError
from .model import ElektronnNet, NetSpec, net_from_spec

PACKAGED_PARAM_FILE = "elektronn.param"
"""The parameter file's name inside a bioimage.io package from ``elektronn-export``."""

FORMAT = "elektronn-params"
VERSION = 1


class ParamFileError(UserError):
    """A parameter file is missing, unreadable, not ours, or does not fit the net."""


def plain(value: Any, where: str = "value") -> Any:
    """``value`` as types that ``torch.load(weights_only=True)`` accepts.

    numpy scalars and arrays become Python numbers and lists, paths become strings; dicts,
    lists and tuples are converted recursively. Anything else is refused here rather than
    producing a file that cannot be loaded back.
    """
    if value is None or isinstance(value, (bool, int, float, str, Tensor, torch.dtype, torch.Size)):
        return value
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, os.PathLike):
        return os.fspath(value)
    if isinstance(value, dict):
        return {plain(k, where): plain(v, f"{where}[{k!r}]") for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        items = [plain(v, f"{where}[{i}]") for i, v in enumerate(value)]
        return items if isinstance(value, list) else tuple(items)
    raise TypeError(f"Cannot store {where} of type {type(value).__name__} in a parameter file.")


def save_params(
    path: str | os.PathLike,
    model: ElektronnNet,
    config_dict: dict[str, Any] | None,
    extra: dict[str, Any] | None = None,
    input_standardisation: tuple[float, float] | None = None,
) -> Path:
    """Write the parameter file atomically; returns its path.

    ``input_standardisation`` is the ``(mean, std)`` the training images were standardised
    with, so that prediction gives new images the same transform.

    Raises
    ------
    OSError
        When the file cannot be written; an existing file at ``path`` is then unchanged.
    """
    path = Path(path)
    checkpoint = {
        "format": FORMAT,
        "version": VERSION,
        "state_dict": {k: v.detach().cpu() for k, v in model.state_dict().items()},
        "net": plain(model.spec.to_dict(), "net"),
        "config": plain(config_dict, "config"),
        "n_ch": model.n_ch,
        "n_lab": model.n_lab,
        "input_standardisation": plain(input_standardisation, "input_standardisation"),
        "extra": plain(extra, "extra"),
    }
    payload = serialised(checkpoint)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        os.fchmod(fd, 0o666 & ~current_umask())  # mkstemp's 0600 would hide it from colleagues
        with os.fdopen(fd, "wb") as f:
            f.write(payload)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    _fsync_dir(path.parent)
    return path


def serialised(checkpoint: dict[str, Any]) -> bytes:
    """The bytes of ``torch.save(checkpoint)``, made in memory.

    torch's zip writer reports a short write (a full disk) as a ``RuntimeError ... unexpected
    pos``; writing the finished bytes ourselves gives the ``OSError`` (ENOSPC) it really is.
    """
    buffer = io.BytesIO()
    torch.save(checkpoint, buffer)
    return buffer.getvalue()


def current_umask() -> int:
    """The process's umask (reading it means setting it; it is put back at once)."""
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def _fsync_dir(folder: Path) -> None:
    """Make the rename durable (POSIX); folders cannot be opened for syncing everywhere."""
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def load_params(path: str | os.PathLike) -> dict[str, Any]:
    """Read a parameter file written by :func:`save_params` (or the one in an exported zip).

    Raises
    ------
    ParamFileError
        With one paragraph naming the file when it is missing, corrupt, or not an
        elektronn parameter file (e.g. an ELEKTRONN 1.x pickle).
    """
    path = Path(path)
    if not path.is_file():
        raise ParamFileError(f"Parameter file {path} does not exist (or is not a file).")
    source = _checkpoint_source(path)
    try:
        checkpoint = torch.load(source, map_location="cpu", weights_only=True)
    except OSError as exc:
        raise ParamFileError(f"Parameter file {path} cannot be opened: {exc}.") from None
    except Exception as exc:  # torch.load raises many types for foreign or damaged bytes
        raise ParamFileError(
            f"Parameter file {path} cannot be read ({type(exc).__name__}): it is truncated, "
            f"corrupt, or not a file written by elektronn (ELEKTRONN 1.x '.param' pickles "
            f"are not supported)."
        ) from None
    if not isinstance(checkpoint, dict) or checkpoint.get("format") != FORMAT:
        raise ParamFileError(
            f"{path} is a torch file but not an elektronn parameter file (no "
            f"format='{FORMAT}' entry); it was not written by elektronn's save_params."
        )
    if checkpoint.get("version") != VERSION:
        raise ParamFileError(
            f"Parameter file {path} has format version {checkpoint.get('version')!r}; this "
            f"elektronn reads version {VERSION}. Use the elektronn version that wrote it."
        )
    return checkpoint


def _checkpoint_source(path: Path) -> Path | io.BytesIO:
    """The file itself, or the parameter file inside a package from ``elektronn-export``.

    Raises
    ------
    ParamFileError
        When a ``.zip`` is not readable, or is a package that elektronn did not export.
    """
    if path.suffix.lower() != ".zip":
        return path
    try:
        with zipfile.ZipFile(path) as archive:
            if PACKAGED_PARAM_FILE not in archive.namelist():
                raise ParamFileError(
                    f"The package {path} holds no '{PACKAGED_PARAM_FILE}': it was not exported "
                    f"by elektronn-export, so elektronn cannot rebuild its net."
                )
            return io.BytesIO(archive.read(PACKAGED_PARAM_FILE))
    except zipfile.BadZipFile as exc:
        raise ParamFileError(f"{path} is not a readable zip package ({exc}).") from None


def input_standardisation(checkpoint: dict[str, Any]) -> tuple[float, float] | None:
    """The ``(mean, std)`` a net's input must be standardised with, or None (raw scale)."""
    values = checkpoint.get("input_standardisation")
    return None if values is None else (float(values[0]), float(values[1]))


def build_model_from_params(path: str | os.PathLike) -> ElektronnNet:
    """Rebuild the net of a parameter file and load its weights (strictly), in eval mode.

    Prediction uses this: the file alone describes the net, no training config is needed.
    """
    return model_from_checkpoint(load_params(path), path)


def model_from_checkpoint(checkpoint: dict[str, Any], path: str | os.PathLike) -> ElektronnNet:
    """The net of a checkpoint read by :func:`load_params` (from ``path``), in eval mode."""
    try:
        model = net_from_spec(NetSpec.from_dict(checkpoint["net"]))
    except (KeyError, TypeError, ValueError) as exc:
        raise ParamFileError(
            f"Parameter file {path} has no usable net description ({exc})."
        ) from None
    try:
        load_into_model(model, checkpoint["state_dict"], strict=True)
    except ParamFileError as exc:
        raise ParamFileError(f"Parameter file {path}: {exc}") from None
    return model.eval()


def _net_kind(n_dim: object) -> str:
    return {0: "vect-scalar (no conv layers)", 2: "2D", 3: "3D"}.get(n_dim, f"n_dim={n_dim!r}")


def init_from_param_file(
    model: ElektronnNet, checkpoint: dict[str, Any], path: str | os.PathLike
) -> LoadReport:
    """Initialise ``model`` adaptively from ``checkpoint``, the file of ``param_file``.

    The adaptive rules tolerate other filter sizes and layer widths, but from a net of another
    dimensionality (e.g. a 3D net's file for a 2D net) or with no parameter in common nothing
    would be loaded and the run would silently train from scratch: both are refused.

    Raises
    ------
    ParamFileError
        When the file does not fit the net at all.
    """
    file_dim = (checkpoint.get("net") or {}).get("n_dim")
    if file_dim != model.n_dim:
        raise ParamFileError(
            f"Parameter file {path} (option 'param_file') holds a {_net_kind(file_dim)} net, "
            f"but this config trains a {_net_kind(model.n_dim)} net, so none of its weights "
            f"can initialise it. Give the file of a net with the same n_dim and mode, or "
            f"param_file = None to start from random weights."
        )
    file_arch = (checkpoint.get("net") or {}).get("architecture", "cnn")
    if file_arch != model.spec.architecture:
        raise ParamFileError(
            f"Parameter file {path} (option 'param_file') holds a net of architecture "
            f"'{file_arch}', but this config trains architecture='{model.spec.architecture}': "
            f"the layers of a CNN and a U-Net do not correspond. Give the file of a "
            f"'{model.spec.architecture}' net, or param_file = None to start from random weights."
        )
    report = load_into_model(model, checkpoint["state_dict"])
    if not report.copied and not report.adapted:
        raise ParamFileError(
            f"Parameter file {path} (option 'param_file') has no parameter that fits this net "
            f"({report}); give the file of a net with the same layers, or param_file = None."
        )
    return report


@dataclass
class LoadReport:
    """What :func:`load_into_model` did with each parameter of the net."""

    copied: list[str] = field(default_factory=list)
    adapted: list[str] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)
    unused: list[str] = field(default_factory=list)

    def __str__(self) -> str:
        parts = [f"{len(self.copied)} copied"]
        for name in ("adapted", "skipped", "unused"):
            entries = getattr(self, name)
            if entries:
                parts.append(f"{len(entries)} {name} ({', '.join(entries)})")
        return ", ".join(parts)


def load_into_model(
    model: nn.Module, state_dict: dict[str, Tensor], strict: bool = False
) -> LoadReport:
    """Copy saved parameters into ``model``; adaptively unless ``strict``.

    Adaptive rules (reference §5.5), per parameter of the net:

    * same shape: copied;
    * conv weights (3 or more axes) of another shape: the net's fresh init is kept and the
      overlapping part is copied, channels from the start, filter axes centred;
    * biases (1 axis) of another length: the common leading part is copied (truncated);
    * fully connected / recurrent weights (2 axes) of another shape: skipped (fresh init);
    * missing in the file: skipped; in the file but not in the net: reported as unused.

    Raises
    ------
    ParamFileError
        With ``strict``, when names or shapes differ (all differences listed).
    """
    own = model.state_dict()
    if strict:
        _check_strict(own, state_dict)
    report = LoadReport(unused=sorted(set(state_dict) - set(own)))
    with torch.no_grad():
        for name, target in own.items():
            saved = state_dict.get(name)
            if saved is None:
                report.skipped.append(name)
            elif saved.shape == target.shape:
                target.copy_(saved)
                report.copied.append(name)
            elif saved.dim() == target.dim() and target.dim() != 2:
                target[_overlap(target.shape, saved.shape)] = saved[
                    _overlap(saved.shape, target.shape)
                ]
                report.adapted.append(name)
            else:
                report.skipped.append(name)
    return report


def _check_strict(own: dict[str, Tensor], saved: dict[str, Tensor]) -> None:
    problems = [f"{k} missing in the file" for k in own if k not in saved]
    problems += [f"{k} is not a parameter of this net" for k in saved if k not in own]
    problems += [
        f"{k} has shape {tuple(saved[k].shape)} in the file but {tuple(v.shape)} in the net"
        for k, v in own.items()
        if k in saved and saved[k].shape != v.shape
    ]
    if problems:
        raise ParamFileError(f"the parameters do not fit this net: {'; '.join(problems)}.")


def _overlap(shape: torch.Size, other: torch.Size) -> tuple[slice, ...]:
    """Index of ``shape``'s part that overlaps ``other``: leading on the channel axes
    (the first two of a conv weight, the only one of a bias), centred on the filter axes."""
    index = []
    for axis, (n, m) in enumerate(zip(shape, other, strict=True)):
        common = min(n, m)
        start = 0 if axis < 2 else (n - common) // 2
        index.append(slice(start, start + common))
    return tuple(index)
