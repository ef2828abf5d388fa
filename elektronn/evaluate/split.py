"""The error of a trained net over every example of a split (img-scalar / vect-scalar).

The console's monitor batches see a part of a split (``monitor_batch_size`` examples); the
numbers to publish, such as the MNIST test error, need all of it. The data class must offer
``iter_split(source, batch_size)`` (:class:`~elektronn.data.plugins.Data` does).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import numpy as np
import torch

from ..data.plugins import PluginError, build_plugin_data
from ..net.losses import compute_loss, error_rate
from ..net.paramfile import build_model_from_params, load_params

#: Examples per forward pass over a split.
BATCH_SIZE = 500


def split_scores(
    model: torch.nn.Module,
    batches: Iterable[tuple],
    target: str,
    forward: Callable[[torch.Tensor], torch.Tensor] | None = None,
) -> dict[str, Any]:
    """Loss and error (% for classes, RMSE for regression) over all ``batches``.

    ``forward`` is how the net is called (the trainer's, with its precision); default the net.
    The baseline predicts the most frequent class (classification).
    """
    forward = forward or model
    device = next(model.parameters()).device
    was_training = model.training
    model.eval()
    loss = err = 0.0
    n, counts = 0, np.zeros(0, dtype=np.int64)
    with torch.no_grad():
        for batch in batches:
            x, y = (torch.as_tensor(np.asarray(a)).to(device) for a in batch[:2])
            logits = forward(x)
            loss += len(x) * float(compute_loss(logits, y, target))
            err += len(x) * float(error_rate(logits, y, target))
            n += len(x)
            if target == "nll":
                labels = batch[1][np.asarray(batch[1]) >= 0].astype(np.int64)
                counts = _add(counts, np.bincount(labels))
    model.train(was_training)
    if n == 0:
        raise PluginError("The split has no examples.")
    if target == "regression":
        return {"n_examples": n, "loss": loss / n, "rmse": float(np.sqrt(err / n))}
    majority = int(counts.argmax())
    baseline = {"name": f"class {majority} always", "error": 100.0 * (1 - counts[majority] / n)}
    return {"n_examples": n, "loss": loss / n, "error": 100.0 * err / n, "baseline": baseline}


def _add(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    size = max(len(a), len(b))
    return np.pad(a, (0, size - len(a))) + np.pad(b, (0, size - len(b)))


def evaluate_split(param_file: Path, source: str) -> dict[str, Any]:
    """``elektronn-evaluate SAVE_DIR --split SOURCE``: the trained net over the whole split."""
    params = load_params(param_file)
    config = SimpleNamespace(**(params.get("config") or {}))
    if getattr(config, "data_class_name", None) is None:
        raise PluginError(
            f"The training of {param_file} used no data class (data_class_name), so it has no "
            f"'{source}' split to evaluate; score an img-img prediction with "
            f"elektronn-evaluate PREDICTION LABELS instead."
        )
    data = build_plugin_data(config)
    model = build_model_from_params(param_file)
    target = getattr(config, "target", "nll")
    return {f"{source} split": split_scores(model, data.iter_split(source, BATCH_SIZE), target)}
