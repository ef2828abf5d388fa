"""Training losses and error metrics (reference §2.6 and §3.8).

``nll``: softmax cross-entropy summed over the labelled pixels (labels in ``[0, n_lab)``;
negative labels mean "ignore") and divided by their number, so that the loss does not
depend on how much of a patch is labelled. Options:

* ``class_weights`` are normalised to ``w / sum(w) * n_lab`` (the specification says they
  are normalised, so equal weights are the same as none and the learning rate keeps its meaning);
* example weights, one per label pixel (or per example for scalar outputs);
* lazy labels: ``info = (labelled, not_present)``, two ``(bs, n_lab)`` 0/1 arrays per
  example. Pixels count only if their class is marked labelled (up-vote), and every pixel
  pushes the probability of not-present classes to 0 (down-vote, ``-log(1 - p_k)``). The
  normaliser counts both. With all classes labelled and none absent this is the plain NLL;
* ``label_prop_thresh`` (> 0.5, else disabled): at pixels that carry no usable label, the
  class whose probability exceeds the threshold is treated as the label.

``regression``: mean squared error of the linear output; labels without a channel axis are
broadcast over the ``n_lab`` outputs.

``affinity``: labels ``(bs, n_lab, *spatial)`` float32 from :mod:`elektronn.data.affinities`
(0/1, -1 = masked pair), optionally followed by local shape descriptors (in ``[0, 1]``, -1 =
unlabelled). The first ``n_affinities`` channels get a sigmoid binary cross-entropy, each
channel class-balanced within the batch (its 0s and its 1s weigh half each, since boundaries
are rare), optionally plus a soft Dice loss; the descriptor channels get the mean squared error
of their sigmoid, added with equal weight (multi-task, Sheridan et al. 2022).
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import Tensor

from ..config.options import TARGETS

#: Stabiliser of the down-vote term log(1 - p + EPS), as in the original.
EPS = 1e-6


def probabilities(logits: Tensor, target: str) -> Tensor:
    """Network outputs as predictions: softmax over the class axis (``nll``), each channel's
    sigmoid (``affinity``: affinities and descriptors) or as they are (``regression``)."""
    if target == "nll":
        return torch.softmax(logits, dim=1)
    if target == "affinity":
        return torch.sigmoid(logits)
    if target == "regression":
        return logits
    raise ValueError(f"target={target!r} is unknown: use one of {', '.join(TARGETS)}.")


def normalised_class_weights(class_weights: Sequence[float], n_lab: int) -> Tensor:
    """``w / sum(w) * n_lab``: equal weights become 1, relative weights are kept.

    Raises
    ------
    ValueError
        When the number of weights is not ``n_lab`` or they do not sum to a positive value.
    """
    w = torch.as_tensor(class_weights, dtype=torch.float32).flatten()
    if w.numel() != n_lab:
        raise ValueError(f"class_weights has {w.numel()} entries but the net has {n_lab} classes.")
    if not bool(torch.all(w >= 0)) or float(w.sum()) <= 0:
        raise ValueError(f"class_weights {list(class_weights)} must be non-negative and not all 0.")
    return w / w.sum() * n_lab


def _per_pixel(weights: Tensor, like: Tensor) -> Tensor:
    """Example weights ``(bs, *spatial)`` or ``(bs,)`` shaped to broadcast with ``like``."""
    w = weights.to(like.dtype)
    return w.reshape(w.shape[0], 1, *w.shape[1:], *([1] * (like.dim() - 1 - w.dim())))


def _per_class(mask: Tensor, like: Tensor) -> Tensor:
    """A ``(bs, n_lab)`` mask shaped to broadcast with ``(bs, n_lab, *spatial)``."""
    return mask.to(like.dtype).reshape(*mask.shape, *([1] * (like.dim() - 2)))


def nll_loss(
    logits: Tensor,
    labels: Tensor,
    class_weights: Sequence[float] | None = None,
    example_weights: Tensor | None = None,
    info: tuple[Tensor, Tensor] | None = None,
    label_prop_thresh: float | None = None,
) -> Tensor:
    """Normalised softmax cross-entropy with the ELEKTRONN options (see the module docstring).

    Parameters
    ----------
    logits
        ``(bs, n_lab, *spatial)`` or ``(bs, n_lab)``.
    labels
        Integer class per pixel ``(bs, *spatial)`` (or ``(bs,)``); values outside
        ``[0, n_lab)`` are ignored.
    class_weights
        ``n_lab`` non-negative weights (normalised here) or None.
    example_weights
        ``(bs, *spatial)`` or ``(bs,)``, or None.
    info
        Lazy-label masks ``(labelled, not_present)``, each ``(bs, n_lab)``, or None.
    label_prop_thresh
        Threshold in (0.5, 1) for label propagation; None or values <= 0.5 disable it.

    Notes
    -----
    The up-vote uses ``log_softmax`` (exact) instead of the original's ``log(p + 1e-6)``,
    which was a workaround for NaNs in Theano. The down-vote multiplies its weights outside
    the log, ``-w_k * log(1 - p_k + eps)``: the original's ``log(1 - p_k * w_k + eps)`` turns
    NaN as soon as a normalised weight exceeds 1.
    """
    n_lab = logits.shape[1]
    log_p = F.log_softmax(logits, dim=1)
    labelled = (labels >= 0) & (labels < n_lab)
    target = F.one_hot(labels.long().clamp(0, n_lab - 1), n_lab).movedim(-1, 1).to(log_p.dtype)
    target = target * labelled.unsqueeze(1).to(log_p.dtype)
    if info is not None:
        target = target * _per_class(info[0], log_p)
    weight = torch.ones((), dtype=log_p.dtype, device=log_p.device)
    if class_weights is not None:
        weight = _per_class(
            normalised_class_weights(class_weights, n_lab)[None].to(log_p.device), log_p
        )
    if example_weights is not None:
        weight = weight * _per_pixel(example_weights, log_p)
    loss = -(log_p * target * weight).sum()
    count = target.sum()
    if label_prop_thresh is not None and label_prop_thresh > 0.5:
        unlabelled = 1.0 - target.sum(dim=1, keepdim=True)
        propagated = (log_p.detach().exp() > label_prop_thresh).to(log_p.dtype) * unlabelled
        loss = loss - (log_p * propagated * weight).sum()
        count = count + propagated.sum()
    if info is not None:
        absent = _per_class(info[1], log_p).expand_as(log_p)
        prob = log_p.exp()
        loss = loss - (torch.log(1.0 - prob + EPS) * absent * weight).sum()
        count = count + absent.sum()
    return loss / torch.clamp(count, min=1.0)


def regression_loss(
    output: Tensor, labels: Tensor, example_weights: Tensor | None = None
) -> Tensor:
    """Mean squared error; labels ``(bs, *spatial)`` are broadcast over the output channels."""
    y = labels.to(output.dtype)
    if y.dim() < output.dim():
        y = y.unsqueeze(1)
    se = (output - y) ** 2
    if example_weights is not None:
        se = se * _per_pixel(example_weights, output)
    return se.mean()


def balanced_bce(logits: Tensor, labels: Tensor) -> Tensor:
    """Sigmoid cross-entropy over the known pairs (labels >= 0), each channel class-balanced.

    In each channel the pairs of the same object (1) and those across a boundary (0) weigh
    half each, so a net cannot win by answering "same object" everywhere.
    """
    known = (labels >= 0).to(logits.dtype)
    y = labels.clamp(min=0)
    reduce = [d for d in range(logits.dim()) if d != 1]
    n_known = known.sum(dim=reduce, keepdim=True)
    n_one = (y * known).sum(dim=reduce, keepdim=True)
    n_zero = n_known - n_one
    present = (n_one > 0).to(logits.dtype) + (n_zero > 0).to(logits.dtype)
    # each present class of a channel gets half (all, when alone) of that channel's weight
    w_one = n_known / torch.clamp(n_one * present, min=1.0)
    w_zero = n_known / torch.clamp(n_zero * present, min=1.0)
    weight = known * (y * w_one + (1 - y) * w_zero)
    bce = F.binary_cross_entropy_with_logits(logits, y, reduction="none")
    return (bce * weight).sum() / torch.clamp(known.sum(), min=1.0)


def soft_dice_loss(logits: Tensor, labels: Tensor) -> Tensor:
    """One minus the soft Dice coefficient of each channel over the known pairs, averaged."""
    known = (labels >= 0).to(logits.dtype)
    p, y = torch.sigmoid(logits) * known, labels.clamp(min=0) * known
    reduce = [d for d in range(logits.dim()) if d != 1]
    overlap = (p * y).sum(dim=reduce)
    total = p.sum(dim=reduce) + y.sum(dim=reduce)
    return (1.0 - (2.0 * overlap + 1.0) / (total + 1.0)).mean()


def affinity_loss(
    logits: Tensor, labels: Tensor, n_affinities: int | None = None, dice: bool = False
) -> Tensor:
    """Balanced cross-entropy (+ Dice) of the affinities, plus the descriptors' MSE.

    Parameters
    ----------
    logits, labels
        ``(bs, n_lab, *spatial)``; labels -1 where a pair or voxel is not trained.
    n_affinities
        The first channels that are affinities (None: all); the rest are descriptors.
    dice
        Add :func:`soft_dice_loss` of the affinity channels (``affinity_dice``).
    """
    n = logits.shape[1] if n_affinities is None else n_affinities
    loss = balanced_bce(logits[:, :n], labels[:, :n])
    if dice:
        loss = loss + soft_dice_loss(logits[:, :n], labels[:, :n])
    if n < logits.shape[1]:
        known = (labels[:, n:] >= 0).to(logits.dtype)
        se = (torch.sigmoid(logits[:, n:]) - labels[:, n:].clamp(min=0)) ** 2 * known
        loss = loss + se.sum() / torch.clamp(known.sum(), min=1.0)
    return loss


def compute_loss(
    logits: Tensor,
    labels: Tensor,
    target: str = "nll",
    class_weights: Sequence[float] | None = None,
    label_prop_thresh: float | None = None,
    info: tuple[Tensor, Tensor] | None = None,
    example_weights: Tensor | None = None,
    n_affinities: int | None = None,
    affinity_dice: bool = False,
) -> Tensor:
    """The training loss (a scalar tensor) for the config's ``target``.

    ``class_weights``, ``label_prop_thresh`` and ``info`` (lazy labels) only apply to
    ``nll``; ``example_weights`` to ``nll`` and ``regression``; ``n_affinities`` and
    ``affinity_dice`` to ``affinity`` (:func:`affinity_loss`).
    """
    if target == "nll":
        return nll_loss(logits, labels, class_weights, example_weights, info, label_prop_thresh)
    if target == "regression":
        return regression_loss(logits, labels, example_weights)
    if target == "affinity":
        return affinity_loss(logits, labels, n_affinities, affinity_dice)
    raise ValueError(f"target={target!r} is unknown: use one of {', '.join(TARGETS)}.")


def affinity_errors(
    logits: Tensor, labels: Tensor, n_affinities: int | None = None
) -> tuple[Tensor, Tensor]:
    """The affinity error at 0.5 and its majority baseline, over the known pairs of a batch.

    The baseline answers each channel's more frequent value everywhere (its error is the
    rarer value's share), so an error below it means the net sees boundaries.
    """
    n = logits.shape[1] if n_affinities is None else n_affinities
    y, known = labels[:, :n], labels[:, :n] >= 0
    wrong = ((logits[:, :n] > 0) != (y > 0.5)) & known
    reduce = [d for d in range(y.dim()) if d != 1]
    n_known = known.sum(dim=reduce)
    n_one = ((y > 0.5) & known).sum(dim=reduce)
    rarer = torch.minimum(n_one, n_known - n_one).sum()
    total = torch.clamp(n_known.sum(), min=1)
    return wrong.sum() / total, rarer / total


def error_rate(
    logits: Tensor, labels: Tensor, target: str = "nll", n_affinities: int | None = None
) -> Tensor:
    """The monitoring error of one batch, as a mean that can be averaged over batches.

    ``nll``: fraction of labelled pixels (labels in ``[0, n_lab)``) whose arg-max class is
    wrong; 0 when nothing is labelled. ``regression``: the mean squared error; the reported
    error is its square root (RMSE, the original's "std"), taken after averaging.
    ``affinity``: fraction of known pairs of the first ``n_affinities`` channels whose
    affinity at 0.5 is wrong (:func:`affinity_errors`).
    """
    if target == "regression":
        return regression_loss(logits.detach(), labels)
    if target == "affinity":
        return affinity_errors(logits.detach(), labels, n_affinities)[0]
    if target != "nll":
        raise ValueError(f"target={target!r} is unknown: use one of {', '.join(TARGETS)}.")
    labelled = (labels >= 0) & (labels < logits.shape[1])
    wrong = (logits.argmax(dim=1) != labels) & labelled
    return wrong.sum() / torch.clamp(labelled.sum(), min=1)
