"""The optimisers of the original (reference §5.2): SGD, Adam, RPROP, CG and L-BFGS.

All share one interface so that the trainer and the Ctrl+C console can switch between them
mid-run (:func:`switch_optimizer`):

* ``step(closure) -> float``: ``closure()`` clears the gradients, computes the loss on the
  current batch, back-propagates and returns the loss tensor; ``step`` returns the loss
  *before* the update, as the original did. CG and L-BFGS call the closure several times
  and make several updates on the same batch.
* ``lr`` and ``momentum``: ``None`` where the method has none, so that ``setlr``/``setmom``,
  ``LR_decay`` and ``LR_schedule`` touch only the optimisers they mean something for.
* ``state``: the per-parameter buffers that belong to one method (momenta, step sizes);
  ``reset_state()`` forgets them (after loading other weights), ``state_dict()`` and
  ``load_state_dict()`` carry them and the LR across a resume exactly.
* ``timeline``: the CG line-search rows not yet taken by the trainer, one row ``[loss,
  accepted step, conjugacy coefficient, evaluations]`` per inner CG step. The trainer takes
  them after every step (:meth:`Optimizer.take_timeline`) into its history, which writes
  ``<save_name>.CGtimeline.npy``; so the optimiser's state, saved in every checkpoint,
  stays small however long CG runs.

``weight_decay`` (λ) is honoured by every optimiser. The original applied it in SGD and
RPROP only; here SGD decays the weights outside the velocity (as the original), RPROP
scales the decay by each parameter's step size, Adam adds λθ to the gradient, CG and
L-BFGS minimise loss + λ/2·‖θ‖².
"""

from __future__ import annotations

import contextlib
import math
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any, ClassVar

import torch
from torch import Tensor

from ..config.options import OPTIMIZERS as NAMES
from ..config.options import OPTIONS_BY_NAME

Closure = Callable[[], Tensor]

DEFAULTS: dict[str, dict[str, Any]] = {
    name: dict(OPTIONS_BY_NAME[f"{name}_params"].default) for name in NAMES
}
"""Each optimiser's master defaults, from its ``<name>_params`` option."""
DECAY_INTERVAL = 1000
RPROP_MIN_STEP, RPROP_MAX_STEP = 1e-7, 2e-3
RPROP_FLIP, RPROP_AGREE = -1e-9, 1e-11  # thresholds on g·g_prev, as the original
RPROP_SIGN_EPS = 1e-6


class Optimizer:
    """Parameters, weight decay, LR/momentum, per-parameter state and the CG record.

    Parameters
    ----------
    params
        The parameters to optimise; those without ``requires_grad`` are left out.
    settings
        The complete ``<name>_params`` dict (see :func:`optimizer_params`).
    weight_decay
        λ, the L2 penalty; how each method applies it is in the module docstring.
    """

    name: ClassVar[str] = ""

    def __init__(
        self, params: Iterable[Tensor], settings: Mapping[str, Any], weight_decay: float
    ) -> None:
        self.params = [p for p in params if p.requires_grad]
        self.settings = dict(settings)
        self.weight_decay = float(weight_decay)
        self.state: dict[str, Any] = {}
        self.timeline: list[list[float]] = []
        self._lr: float | None = None
        self._momentum: float | None = None

    @property
    def lr(self) -> float | None:
        """The learning rate, or None for methods without one (RPROP, CG, L-BFGS)."""
        return self._lr

    @lr.setter
    def lr(self, value: float) -> None:
        if self._lr is None:
            raise AttributeError(f"The {self.name} optimiser has no learning rate.")
        self._lr = float(value)

    @property
    def momentum(self) -> float | None:
        """The momentum μ, or None for methods without one (all but SGD)."""
        return self._momentum

    @momentum.setter
    def momentum(self, value: float) -> None:
        if self._momentum is None:
            raise AttributeError(f"The {self.name} optimiser has no momentum.")
        self._momentum = float(value)

    def step(self, closure: Closure) -> float:
        """Update the parameters on the closure's batch; returns the loss before the update."""
        raise NotImplementedError

    def reset_state(self) -> None:
        """Forget the per-parameter buffers, e.g. because other weights were loaded.

        The LR, momentum and pending CG rows stay: they describe the run, not the weights.
        """
        self.state.clear()

    def state_dict(self) -> dict[str, Any]:
        """A copy of everything needed to continue exactly (plain types for ``torch.save``)."""
        return {
            "name": self.name,
            "lr": self._lr,
            "momentum": self._momentum,
            "state": {key: _copied(value) for key, value in self.state.items()},
        }

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        """Restore :meth:`state_dict`, placing the buffers on the parameters' device and dtype.

        Raises
        ------
        ValueError
            If the state is another method's (use :func:`switch_optimizer`) or does not fit
            the parameters.
        """
        if state["name"] != self.name:
            raise ValueError(
                f"Cannot load the state of the {state['name']} optimiser into {self.name}; "
                f"use switch_optimizer to change the method."
            )
        if self._lr is not None and state["lr"] is not None:
            self._lr = float(state["lr"])
        if self._momentum is not None and state["momentum"] is not None:
            self._momentum = float(state["momentum"])
        self.state = {key: self._placed(key, value) for key, value in state["state"].items()}

    def take_timeline(self) -> list[list[float]]:
        """The CG rows recorded since the last call (empty for the other methods)."""
        rows, self.timeline = self.timeline, []
        return rows

    def _placed(self, key: str, value: Any) -> Any:
        """A saved per-parameter buffer list as fresh tensors like the parameters."""
        if not isinstance(value, list):
            return value
        shapes = [tuple(p.shape) for p in self.params]
        if [tuple(t.shape) for t in value] != shapes:
            raise ValueError(
                f"The saved {self.name} state {key!r} does not fit the parameters "
                f"(shapes {[tuple(t.shape) for t in value]} instead of {shapes})."
            )
        return [t.to(device=p.device, dtype=p.dtype, copy=True) for t, p in zip(value, self.params)]

    def _buffers(self, key: str, fill: float = 0.0) -> list[Tensor]:
        """The per-parameter buffers ``key``, created on first use (and after a reset)."""
        if key not in self.state:
            self.state[key] = [torch.full_like(p, fill) for p in self.params]
        return self.state[key]

    def _evaluate(self, closure: Closure) -> float:
        """Run the closure; parameters it does not reach get a zero gradient.

        Filling in zeros lets weight decay act on parameters the loss does not depend on.
        """
        with torch.enable_grad():
            loss = closure()
        for p in self.params:
            if p.grad is None:
                p.grad = torch.zeros_like(p)
        return float(loss.detach())

    @torch.no_grad()
    def _add_decay_gradient(self) -> float:
        """Add λθ to the gradients; returns the penalty λ/2·‖θ‖² that goes with them."""
        if not self.weight_decay:
            return 0.0
        for p in self.params:
            p.grad.add_(p, alpha=self.weight_decay)
        return 0.5 * self.weight_decay * sum(float(p.square().sum()) for p in self.params)


def _copied(value: Any) -> Any:
    """A state value with its tensors cloned, so a saved state does not change afterwards."""
    if isinstance(value, list):
        return [t.detach().clone() for t in value]
    return value


class SGD(Optimizer):
    """Momentum SGD: v ← g + μ·v; θ ← θ − LR·v − LR·λ·θ.

    The decay stays outside the velocity, as in the original, so a change of λ acts at once.
    """

    name = "SGD"

    def __init__(
        self, params: Iterable[Tensor], settings: Mapping[str, Any], weight_decay: float
    ) -> None:
        super().__init__(params, settings, weight_decay)
        self._lr = float(settings["LR"])
        self._momentum = float(settings["momentum"])

    @property
    def velocity(self) -> list[Tensor]:
        """The momentum buffers v, one per parameter (zeros before the first step or a reset).

        For inspection from the console; the buffers themselves live in :attr:`state`.
        """
        return self.state.get("velocity") or [torch.zeros_like(p) for p in self.params]

    def step(self, closure: Closure) -> float:
        loss = self._evaluate(closure)
        with torch.no_grad():
            for p, v in zip(self.params, self._buffers("velocity"), strict=True):
                v.mul_(self._momentum).add_(p.grad)
                p.mul_(1.0 - self._lr * self.weight_decay).sub_(v, alpha=self._lr)
        return loss


class Adam(Optimizer):
    """Standard Adam (Kingma & Ba) with bias correction; λθ is added to the gradient.

    The original ignored weight decay for Adam; issue 5 asks every optimiser to honour it.
    """

    name = "Adam"

    def __init__(
        self, params: Iterable[Tensor], settings: Mapping[str, Any], weight_decay: float
    ) -> None:
        super().__init__(params, settings, weight_decay)
        self._lr = float(settings["LR"])
        self.beta1, self.beta2 = float(settings["beta1"]), float(settings["beta2"])
        self.epsilon = float(settings["epsilon"])

    def step(self, closure: Closure) -> float:
        loss = self._evaluate(closure)
        t = self.state["step"] = self.state.get("step", 0) + 1
        bias1, bias2 = 1.0 - self.beta1**t, 1.0 - self.beta2**t
        moments = zip(self.params, self._buffers("exp_avg"), self._buffers("exp_avg_sq"))
        with torch.no_grad():
            for p, m, v in moments:
                g = p.grad.add(p, alpha=self.weight_decay) if self.weight_decay else p.grad
                m.mul_(self.beta1).add_(g, alpha=1.0 - self.beta1)
                v.mul_(self.beta2).addcmul_(g, g, value=1.0 - self.beta2)
                denominator = (v.sqrt() / math.sqrt(bias2)).add_(self.epsilon)
                p.addcdiv_(m, denominator, value=-self._lr / bias1)
        return loss


class RPROP(Optimizer):
    """Resilient propagation: one step size per weight, adapted to the gradient's sign.

    Each step size is multiplied by (1 − penalty·[g·g_prev < 0] + gain·[g·g_prev > 0]),
    clipped to [1e-7, 2e-3]; θ ← θ − s·(g/(|g| + 1e-6) + λ·θ). The original subtracted λθ
    unscaled; scaling it by the step size keeps the decay in proportion to the updates,
    which are themselves at most 2e-3. ``beta`` is accepted but unused, as in the original.
    """

    name = "RPROP"

    def step(self, closure: Closure) -> float:
        loss = self._evaluate(closure)
        penalty, gain = float(self.settings["penalty"]), float(self.settings["gain"])
        sizes = self._buffers("step_sizes", float(self.settings["initial_update_size"]))
        previous = self._buffers("previous_grad")
        with torch.no_grad():
            for p, s, prev in zip(self.params, sizes, previous, strict=True):
                g = p.grad
                agreement = g * prev
                flipped = (agreement < RPROP_FLIP).to(g.dtype)
                agreed = (agreement > RPROP_AGREE).to(g.dtype)
                s.mul_(1.0 - penalty * flipped + gain * agreed).clamp_(
                    RPROP_MIN_STEP, RPROP_MAX_STEP
                )
                direction = g / (g.abs() + RPROP_SIGN_EPS) + self.weight_decay * p
                p.sub_(s * direction)
                prev.copy_(g)
        return loss


@dataclass
class _Point:
    """One evaluation of the CG objective at the current parameters."""

    loss: float  # the closure's loss, which the trainer logs
    objective: float  # loss + λ/2·‖θ‖², which the line search minimises
    grad: Tensor  # flat gradient of the objective


class _FlatObjective:
    """The CG objective over the parameters as one flat vector."""

    def __init__(self, optimizer: Optimizer, closure: Closure) -> None:
        self.optimizer, self.closure = optimizer, closure

    def flat(self) -> Tensor:
        return torch.cat([p.detach().reshape(-1) for p in self.optimizer.params])

    @torch.no_grad()
    def assign(self, flat: Tensor) -> None:
        start = 0
        for p in self.optimizer.params:
            p.copy_(flat[start : start + p.numel()].view_as(p))
            start += p.numel()

    def evaluate(self) -> _Point:
        loss = self.optimizer._evaluate(self.closure)
        penalty = self.optimizer._add_decay_gradient()
        grad = torch.cat([p.grad.reshape(-1) for p in self.optimizer.params])
        return _Point(loss, loss + penalty, grad)

    def try_evaluate(self) -> _Point | None:
        """Like :meth:`evaluate`, but None where the loss is not finite.

        The trainer's closure raises a FloatingPointError for an infinite or NaN loss; during
        a line search that only means the trial step was too long.
        """
        try:
            return self.evaluate()
        except FloatingPointError:
            return None


class CG(Optimizer):
    """Polak–Ribière conjugate gradients, ``n_steps`` updates on the same batch.

    The first direction is −g; then β = max(0, g·(g − g_prev)/‖g_prev‖²) and
    d ← −g + β·d, restarting from −g where d is not a descent direction. Each step is a
    backtracking Armijo line search (:meth:`_line_search`). If the search finds no step
    along a conjugate direction, the next inner step restarts from −g; if it finds none
    along −g, the batch is done. Every inner step appends a row to :attr:`timeline`.
    """

    name = "CG"

    def step(self, closure: Closure) -> float:
        objective = _FlatObjective(self, closure)
        with _restored_on_error(self.params):
            point = objective.evaluate()
            loss_before = point.loss
            previous: tuple[Tensor, Tensor] | None = None
            for _ in range(int(self.settings["n_steps"])):
                direction, coeff = _conjugate_direction(point.grad, previous)
                slope = float(point.grad @ direction)
                if slope == 0.0:  # zero gradient: nothing left to gain on this batch
                    break
                t, trial, evaluations = self._line_search(objective, direction, point, slope)
                self.timeline.append([(trial or point).loss, t, coeff, evaluations])
                if trial is None and coeff == 0.0:
                    break
                previous = None if trial is None else (point.grad, direction)
                point = trial or point
        return loss_before

    def _line_search(
        self, objective: _FlatObjective, direction: Tensor, start: _Point, slope: float
    ) -> tuple[float, _Point | None, int]:
        """Try t = max_step, max_step·beta, … down to min_step; accept the first that meets
        Armijo (objective ≤ objective₀ + alpha·t·slope).

        Returns the step, the evaluation there and the number of evaluations; the step is
        0 and the evaluation None (parameters unchanged) if no trial was accepted.
        """
        alpha, shrink = float(self.settings["alpha"]), float(self.settings["beta"])
        t, min_step = float(self.settings["max_step"]), float(self.settings["min_step"])
        n_trials = max(0, math.floor(math.log(min_step / t) / math.log(shrink) + 1e-9)) + 1
        theta = objective.flat()
        for n in range(1, n_trials + 1):
            objective.assign(theta + t * direction)
            trial = objective.try_evaluate()
            if trial is not None and trial.objective <= start.objective + alpha * t * slope:
                return t, trial, n
            t *= shrink
        objective.assign(theta)
        return 0.0, None, n_trials


def _conjugate_direction(
    grad: Tensor, previous: tuple[Tensor, Tensor] | None
) -> tuple[Tensor, float]:
    """The Polak–Ribière direction and coefficient; (−g, 0) to (re)start steepest descent."""
    if previous is None:
        return -grad, 0.0
    previous_grad, previous_direction = previous
    coeff = max(0.0, float(grad @ (grad - previous_grad)) / float(previous_grad @ previous_grad))
    direction = -grad + coeff * previous_direction
    if float(grad @ direction) >= 0.0:
        return -grad, 0.0
    return direction, coeff


class LBFGS(Optimizer):
    """L-BFGS on the current batch (torch's implementation, strong-Wolfe line search).

    ``maxiter`` iterations and at most ``maxfun`` evaluations per batch, history ``m``;
    ``pgtol`` bounds the largest gradient entry and ``factr`` the change of the objective
    in units of the machine epsilon, as for scipy's ``fmin_l_bfgs_b``, which the original
    used (``iprint`` is ignored). As in the original the curvature history starts afresh
    on each batch, since pairs from another batch describe another objective.
    """

    name = "LBFGS"

    def step(self, closure: Closure) -> float:
        losses: list[float] = []

        def objective() -> float:
            losses.append(self._evaluate(closure))
            return losses[-1] + self._add_decay_gradient()

        inner = torch.optim.LBFGS(
            self.params,
            lr=1.0,
            max_iter=int(self.settings["maxiter"]),
            max_eval=int(self.settings["maxfun"]),
            history_size=int(self.settings["m"]),
            tolerance_grad=float(self.settings["pgtol"]),
            tolerance_change=float(self.settings["factr"]) * torch.finfo(self.params[0].dtype).eps,
            line_search_fn="strong_wolfe",
        )
        with _restored_on_error(self.params):
            inner.step(objective)
        return losses[0]


@contextlib.contextmanager
def _restored_on_error(params: list[Tensor]) -> Iterator[None]:
    """Put the parameters back where they were if the block raises.

    CG and L-BFGS move the parameters many times per step; an error in a later evaluation
    (e.g. the trainer's non-finite loss) must not leave them at an untried point.
    """
    saved = [p.detach().clone() for p in params]
    try:
        yield
    except BaseException:
        with torch.no_grad():
            for p, s in zip(params, saved, strict=True):
                p.copy_(s)
        raise


_CLASSES = {c.name: c for c in (SGD, Adam, RPROP, CG, LBFGS)}
OPTIMIZERS: dict[str, type[Optimizer]] = {name: _CLASSES[name] for name in NAMES}
"""The classes, in the order of the ``optimizer`` option's choices (declared in the table)."""


def canonical_name(name: str) -> str:
    """The optimiser's canonical spelling (matched case-insensitively).

    Raises
    ------
    ValueError
        If ``name`` is none of SGD, Adam, RPROP, CG, LBFGS; the message lists them.
    """
    for known in OPTIMIZERS:
        if known.lower() == str(name).lower():
            return known
    raise ValueError(f"Optimizer {name!r} is unknown: use one of {', '.join(OPTIMIZERS)}.")


def optimizer_params(name: str, config: Any) -> dict[str, Any]:
    """The config's ``<name>_params`` completed with the master defaults (reference §1.4).

    Raises
    ------
    ValueError
        For a key the method does not know: a misspelt ``LR`` must not silently become the
        default.
    """
    given = dict(getattr(config, f"{name}_params", None) or {})
    unknown = sorted(set(given) - set(DEFAULTS[name]))
    if unknown:
        raise ValueError(
            f"{name}_params has unknown keys {unknown}: the keys are {', '.join(DEFAULTS[name])}."
        )
    return {**DEFAULTS[name], **given}


def build_optimizer(name: str, params: Iterable[Tensor], config: Any) -> Optimizer:
    """Create optimiser ``name`` with the config's ``<name>_params`` and ``weight_decay``.

    Parameters
    ----------
    name
        One of SGD, Adam, RPROP, CG, LBFGS, in any case.
    params
        The parameters to optimise.
    config
        Any namespace with ``<name>_params`` (a dict, missing keys take the master defaults)
        and ``weight_decay`` (False or None mean 0).
    """
    name = canonical_name(name)
    weight_decay = float(getattr(config, "weight_decay", 0.0) or 0.0)
    return OPTIMIZERS[name](params, optimizer_params(name, config), weight_decay)


def switch_optimizer(
    old: Optimizer, new_name: str, params: Iterable[Tensor], config: Any
) -> Optimizer:
    """A new optimiser for the same parameters, carrying over what still applies.

    The LR and momentum carry over where both methods have one, and CG rows not yet taken
    always do; the other settings come from the config's ``<new_name>_params``. The per-parameter
    buffers (momenta, step sizes) start afresh, also when ``new_name`` is the old method:
    the console relies on that to reset them after loading other weights.
    """
    new = build_optimizer(new_name, params, config)
    new.load_state_dict({**old.state_dict(), "name": new.name, "state": {}})
    new.timeline = old.take_timeline()
    return new
