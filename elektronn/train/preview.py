"""Preview predictions during training: a few z-slices of ``preview_data_path`` as images.

The preview file holds one or more raw cubes ``((ch,)x,y,z)``, stored like the training images
(integers are scaled by their type's maximum, floats used as they are, then standardised as
the training images were with ``pre_process='standardise'``). For each cube
the central ``max_z_pred`` slices (plus the z halo a 3D net needs) are predicted densely,
and ``<save_name>-pred-<cube>-c<class>-z<z>-<hours>hrs.png`` is written for each exported
class, next to ``<save_name>-raw-<cube>-z<z>.png`` (written once).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import h5py
import numpy as np
import torch

from ..axes import as_order
from ..config import ConfigError


def read_preview_cubes(path: str) -> list[np.ndarray]:
    """All datasets of the preview file as (ch, z, x, y) arrays in their stored dtype
    (prediction scales them as training scaled its images)."""
    cubes = []
    try:
        with h5py.File(path, "r") as f:
            for key in sorted(f.keys()):
                raw = np.asarray(f[key])
                if raw.ndim == 3:
                    raw = raw[None]
                if raw.ndim != 4:
                    raise ConfigError(
                        f"Preview file '{path}', dataset '{key}' has shape {raw.shape}; expected "
                        f"(x,y,z) or (ch,x,y,z)."
                    )
                cubes.append(np.ascontiguousarray(as_order(raw, "cxyz", "czxy")))
    except OSError as exc:
        raise ConfigError(f"Cannot read 'preview_data_path' file '{path}': {exc}.") from None
    return cubes


def central_slab(raw: np.ndarray, n_out: int, z_halo: int) -> tuple[np.ndarray, int]:
    """The central z-range giving ``n_out`` predicted slices; returns it and its first z."""
    nz = raw.shape[1]
    thickness = min(nz, n_out + 2 * z_halo)
    start = (nz - thickness) // 2
    return raw[:, start : start + thickness], start + z_halo


def export_classes(export_class: Any, n_lab: int) -> list[int]:
    if export_class == "all":
        return list(range(n_lab))
    if isinstance(export_class, (list, tuple)):
        return [int(c) for c in export_class]
    return [int(export_class)]


class Preview:
    """Predicts and writes the preview images of one training run."""

    def __init__(
        self,
        cubes: list[np.ndarray],
        save_name: str,
        n_lab: int,
        z_halo: int,
        export_class: Any = 1,
        max_z_pred: int = 5,
    ) -> None:
        self.cubes = cubes
        self.save_name = save_name
        self.classes = export_classes(export_class, n_lab)
        self.z_halo = z_halo
        self.max_z_pred = max_z_pred
        self.raw_written = False

    @classmethod
    def from_config(cls, config: Any, n_lab: int) -> Preview:
        kwargs = dict(config.preview_kwargs)
        z_halo = config.arch.int_offset[0] if config.n_dim == 3 else 0
        return cls(
            read_preview_cubes(config.preview_data_path),
            config.save_name,
            n_lab,
            z_halo,
            kwargs.get("export_class", 1),
            kwargs.get("max_z_pred", 5),
        )

    def predict(
        self,
        model: torch.nn.Module,
        hours: float,
        folder: Path = Path("."),
        standardisation: tuple[float, float] | None = None,
        step: int | None = None,
    ) -> list[Path]:
        """Predict every cube's central slices and write the PNGs; returns the paths.

        The cubes get the training's intensity scaling and ``standardisation``; ``step`` (the
        last update) goes into the titles with the training time.
        """
        from ..predict.dense import predict_dense

        when = f"{hours * 60:.3g} min of training" + ("" if step is None else f", step {step}")
        written = []
        for i, raw in enumerate(self.cubes):
            slab, z0 = central_slab(raw, self.max_z_pred, self.z_halo)
            probs = predict_dense(model, slab, pad_raw=True, standardisation=standardisation)
            for dz in range(probs.shape[1]):
                z = z0 + dz
                for c in self.classes:
                    path = folder / f"{self.save_name}-pred-{i}-c{c}-z{z}-{hours:g}hrs.png"
                    title = f"{self.save_name} cube {i}, z={z}: class {c} after {when}"
                    save_image(path, probs[c, dz], title, f"probability of class {c}", (0, 1))
                    written.append(path)
                if not self.raw_written:
                    raw_path = folder / f"{self.save_name}-raw-{i}-z{z}.png"
                    title = f"{self.save_name} cube {i}, z={z}: raw"
                    save_image(raw_path, raw[0, z], title, "raw intensity")
        self.raw_written = True
        return written


def save_image(
    path: Path,
    image: np.ndarray,
    title: str,
    scale_label: str,
    limits: tuple[float, float] | None = None,
) -> None:
    """One slice with a colour bar, so grey values can be read as probabilities."""
    from matplotlib.figure import Figure

    height, width = image.shape
    fig = Figure(figsize=(7.5, 6.5 * height / width + 0.5), layout="constrained")
    ax = fig.subplots()
    vmin, vmax = limits or (None, None)
    shown = ax.imshow(image, cmap="gray", vmin=vmin, vmax=vmax, interpolation="nearest")
    fig.colorbar(shown, ax=ax, label=scale_label, shrink=0.9)
    ax.set_title(title, fontsize=10)
    ax.set_axis_off()
    fig.savefig(path, dpi=100)
