"""What a prediction is made with: the trained net (read once) and the settings of the run."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from ..net.paramfile import input_standardisation, load_params, model_from_checkpoint
from .errors import PredictionError


def find_param_file(model: str | Path) -> Path:
    """The parameter file of a save directory (``_end``, else ``-LAST``), or ``model`` itself."""
    path = Path(model).expanduser()
    if path.is_file():
        return path
    if not path.is_dir():
        raise PredictionError(f"MODEL '{model}' is neither a save directory nor a parameter file.")
    for pattern in (
        f"{path.name}_end.param",
        f"{path.name}-LAST.param",
        "*_end.param",
        "*-LAST.param",
    ):
        found = sorted(path.glob(pattern))
        if len(found) == 1:
            return found[0]
    raise PredictionError(
        f"The save directory '{path}' holds no '{path.name}_end.param' (written when training "
        f"ends) nor '{path.name}-LAST.param' (written at every history step). Give the "
        f"parameter file to use instead of the directory."
    )


@dataclass(frozen=True)
class TrainedNet:
    """A trained net and what prediction needs from its parameter file.

    Attributes
    ----------
    net
        The net, in eval mode (on the CPU until moved).
    param_file
        The file it was read from (Dask workers read it again, once per process).
    config
        The training's configuration as stored in the file.
    """

    net: torch.nn.Module
    param_file: Path
    config: dict[str, Any]
    standardisation: tuple[float, float] | None

    @classmethod
    def load(cls, model: str | Path) -> TrainedNet:
        """Read a save directory's (or a parameter file's) net, once."""
        param_file = find_param_file(model)
        checkpoint = load_params(param_file)
        return cls(
            model_from_checkpoint(checkpoint, param_file),
            param_file,
            dict(checkpoint.get("config") or {}),
            input_standardisation(checkpoint),
        )

    @property
    def target(self) -> str:
        return str(self.config.get("target", "nll"))

    @property
    def name(self) -> str:
        """The training's ``save_name`` (names the speed table, as the original did)."""
        return str(self.config.get("save_name") or self.param_file.stem)

    @property
    def offsets(self) -> list[list[int]]:
        """An affinity net's offsets (user order, the net's axes), else none."""
        if self.target != "affinity":
            return []
        return [[int(v) for v in o] for o in self.config.get("affinity_offsets") or []]

    @property
    def channels(self) -> int:
        """The outputs a prediction writes: an affinity net's affinities (not its shape
        descriptors), else all."""
        return len(self.offsets) or int(self.net.n_lab)

    def volume_offsets(self, n_spatial: int) -> list[list[int]]:
        """The affinity offsets per axis of a predicted volume: a 2D net's on a stack get
        z = 0 (each slice is predicted on its own)."""
        return [o + [0] * (n_spatial - len(o)) for o in self.offsets]

    def channel_names(self, n_spatial: int) -> tuple[str, ...]:
        """A name per written channel: the affinity offsets, or ``class k``."""
        if self.offsets:
            offsets = self.volume_offsets(n_spatial)
            return tuple("affinity " + ",".join(f"{v:+d}" for v in o) for o in offsets)
        if self.target == "regression":
            return tuple(f"output {k}" for k in range(self.net.n_lab))
        return tuple(f"class {k}" for k in range(self.net.n_lab))

    def output_attributes(self, n_spatial: int) -> dict[str, Any]:
        """What a prediction records of its net: the target, its dimensions (a 2D net's stack
        is scored per slice), the affinity offsets of the volume (user order)."""
        attrs: dict[str, Any] = {"target": self.target, "net_dims": int(self.net.n_dim)}
        if self.offsets:
            attrs["affinity_offsets"] = self.volume_offsets(n_spatial)
        return attrs


@dataclass(frozen=True)
class PredictSettings:
    """How to predict (see :func:`~elektronn.predict.predict_volume` for each)."""

    pad: bool = False
    dtype: str = "float32"
    method: str = "auto"
    precision: str = "fp32"
    overwrite: bool = False
    workers: int | None = None
    scheduler: str | None = None
    block: tuple[int, ...] | None = None
    level: int = 0
    voxel_size: tuple[float, ...] | None = None
    unit: str | None = None
    pyramid: int = 0
    progress: bool = True
