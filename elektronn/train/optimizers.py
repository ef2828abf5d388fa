"""The optimisers of the original (reference §5.2): SGD, Adam, RPROP, CG and L-BFGS.

All share one small interface so the trainer (and the Ctrl+C console) can switch between
them mid-run: ``step(closure) -> loss before the update``, where ``closure()`` clears the
gradients, computes the loss on the current batch, back-propagates and returns the loss;
``lr`` / ``momentum`` (None where an optimiser has none, so ``setlr``, ``LR_decay`` and
``LR_schedule`` only touch optimisers with a learning rate); ``state_dict`` for resuming.
``weight_decay`` (λ) is honoured by every optimiser: SGD and RPROP decay the weights
directly, Adam adds λθ to the gradient, CG and L-BFGS minimise loss + λ/2·‖θ‖².
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import Any

import torch
from torch import Tensor

Closure = Callable[[], Tensor]

DEFAULTS = {
    "SGD": {"LR": 0.001, "momentum": 0.9},
    "Adam": {"LR": 0.001, "beta1": 0.9, "beta2": 0.999, "epsilon": 1e-8},
    "RPROP": {"penalty": 0.35, "gain": 0.2, "beta": 0.7, "initial_update_size": 1e-4},
    "CG": {"n_steps": 4, "alpha": 0.35, "beta": 0.75, "max_step": 0.02, "min_step": 8e-5},
    "LBFGS": {"maxfun": 40, "maxiter": 4, "m": 10, "factr": 1e2, "pgtol": 1e-9, "iprint": -1},
}
RPROP_MIN_STEP, RPROP_MAX_STEP = 1e-7, 2e-3


def optimizer_params(name: str, config: Any) -> dict[str, Any]:
    """The config's ``<name>_params`` completed with the master defaults for missing keys."""
    given = getattr(config, f"{name}_params", None) or {}
    return {**DEFAULTS[name], **given}


class Optimizer:
    """Base class: parameters, weight decay and the common interface."""

    name = ""

    def __init__(self, params: Sequence[Tensor], settings: dict[str, Any], weight_decay: float):
        self.params = [p for p in params if p.requires_grad]
        self.settings = settings
        self.weight_decay = float(weight_decay)

    lr: float | None = None
    momentum: float | None = None

    def step(self, closure: Closure) -> float:
        raise NotImplementedError

    def state_dict(self) -> dict[str, Any]:
        return {}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore :meth:`state_dict`; the base optimiser has no state."""

    def grads(self) -> list[Tensor]:
        return [p.grad if p.grad is not None else torch.zeros_like(p) for p in self.params]


class SGD(Optimizer):
    """v ← g + μ·v; θ ← θ − LR·v − LR·λ·θ (the decay stays outside the velocity)."""

    name = "SGD"

    def __init__(self, params, settings, weight_decay):
        super().__init__(params, settings, weight_decay)
        self.lr = float(settings["LR"])
        self.momentum = float(settings["momentum"])
        self.velocity = [torch.zeros_like(p) for p in self.params]

    @torch.no_grad()
    def step(self, closure: Closure) -> float:
        with torch.enable_grad():
            loss = closure()
        grads = self.grads()
        torch._foreach_mul_(self.velocity, self.momentum)
        torch._foreach_add_(self.velocity, grads)
        if self.weight_decay:
            torch._foreach_mul_(self.params, 1.0 - self.lr * self.weight_decay)
        torch._foreach_add_(self.params, self.velocity, alpha=-self.lr)
        return float(loss)

    def state_dict(self) -> dict[str, Any]:
        return {"lr": self.lr, "momentum": self.momentum, "velocity": self.velocity}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.lr, self.momentum = state["lr"], state["momentum"]
        for v, saved in zip(self.velocity, state["velocity"], strict=True):
            v.copy_(saved)


class Adam(Optimizer):
    """Standard Adam (``Adam_params``); weight decay is added to the gradient."""

    name = "Adam"

    def __init__(self, params, settings, weight_decay):
        super().__init__(params, settings, weight_decay)
        self.inner = torch.optim.Adam(
            self.params,
            lr=float(settings["LR"]),
            betas=(float(settings["beta1"]), float(settings["beta2"])),
            eps=float(settings["epsilon"]),
            weight_decay=self.weight_decay,
        )

    @property
    def lr(self) -> float:
        return self.inner.param_groups[0]["lr"]

    @lr.setter
    def lr(self, value: float) -> None:
        self.inner.param_groups[0]["lr"] = float(value)

    def step(self, closure: Closure) -> float:
        loss = closure()
        self.inner.step()
        return float(loss)

    def state_dict(self) -> dict[str, Any]:
        return self.inner.state_dict()

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.inner.load_state_dict(state)


class RPROP(Optimizer):
    """Per-parameter step sizes, grown by ``gain`` while the gradient sign holds and shrunk by
    ``penalty`` when it flips; θ ← θ − s·g/(|g| + 1e-6) − s·λ·θ."""

    name = "RPROP"

    def __init__(self, params, settings, weight_decay):
        super().__init__(params, settings, weight_decay)
        size = float(settings["initial_update_size"])
        self.step_sizes = [torch.full_like(p, size) for p in self.params]
        self.previous = [torch.zeros_like(p) for p in self.params]

    @torch.no_grad()
    def step(self, closure: Closure) -> float:
        with torch.enable_grad():
            loss = closure()
        penalty, gain = float(self.settings["penalty"]), float(self.settings["gain"])
        for p, g, s, prev in zip(self.params, self.grads(), self.step_sizes, self.previous,
                                 strict=True):  # fmt: skip
            agreement = g * prev
            factor = 1 - penalty * (agreement < -1e-9).to(g.dtype) + gain * (agreement > 1e-11)
            s.mul_(factor).clamp_(RPROP_MIN_STEP, RPROP_MAX_STEP)
            update = g / (g.abs() + 1e-6) + self.weight_decay * p
            p.sub_(s * update)
            prev.copy_(g)
        return float(loss)

    def state_dict(self) -> dict[str, Any]:
        return {"step_sizes": self.step_sizes, "previous": self.previous}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        for mine, saved in zip(self.step_sizes + self.previous,
                               state["step_sizes"] + state["previous"], strict=True):  # fmt: skip
            mine.copy_(saved)


class _FlatObjective:
    """Loss + λ/2·‖θ‖² and its gradient as flat vectors, for CG and L-BFGS."""

    def __init__(self, params: list[Tensor], closure: Closure, weight_decay: float):
        self.params, self.closure, self.weight_decay = params, closure, weight_decay

    def get(self) -> Tensor:
        return torch.cat([p.detach().reshape(-1) for p in self.params])

    @torch.no_grad()
    def set(self, flat: Tensor) -> None:
        start = 0
        for p in self.params:
            p.copy_(flat[start : start + p.numel()].view_as(p))
            start += p.numel()

    def __call__(self) -> tuple[float, Tensor]:
        with torch.enable_grad():
            loss = float(self.closure())
        grad = torch.cat(
            [
                (p.grad if p.grad is not None else torch.zeros_like(p)).reshape(-1)
                for p in self.params
            ]
        )
        if self.weight_decay:
            theta = self.get()
            loss += 0.5 * self.weight_decay * float(theta @ theta)
            grad = grad + self.weight_decay * theta
        return loss, grad


class CG(Optimizer):
    """Polak–Ribière conjugate gradients with a backtracking Armijo line search,
    ``n_steps`` updates on the same batch. ``timeline`` records per inner step
    ``[loss, accepted step, conjugacy coefficient, evaluations]``."""

    name = "CG"

    def __init__(self, params, settings, weight_decay):
        super().__init__(params, settings, weight_decay)
        self.timeline: list[list[float]] = []

    def _line_search(self, f: _FlatObjective, theta: Tensor, direction: Tensor, loss0: float,
                     slope: float) -> tuple[float, int]:  # fmt: skip
        """Largest step in ``max_step · beta^k`` meeting Armijo; (0, n) if none does."""
        s = self.settings
        t, shrink = float(s["max_step"]), float(s["beta"])
        tries = int(math.log(float(s["min_step"]) / t) / math.log(shrink)) + 1
        for n in range(1, tries + 1):
            f.set(theta + t * direction)
            loss, _ = f()
            if loss <= loss0 + float(s["alpha"]) * t * slope:
                return t, n
            t *= shrink
        f.set(theta)
        return 0.0, tries

    def step(self, closure: Closure) -> float:
        f = _FlatObjective(self.params, closure, self.weight_decay)
        loss, grad = f()
        loss_before = loss
        direction, previous, coeff = -grad, None, 0.0
        for _ in range(int(self.settings["n_steps"])):
            if previous is not None:
                coeff = max(
                    0.0, float(grad @ (grad - previous)) / max(float(previous @ previous), 1e-30)
                )
                direction = -grad + coeff * direction
            slope = float(grad @ direction)
            if slope >= 0:  # not a descent direction: restart with steepest descent
                direction, coeff = -grad, 0.0
                slope = float(grad @ direction)
            theta = f.get()
            t, evaluations = self._line_search(f, theta, direction, loss, slope)
            if t == 0.0:
                self.timeline.append([loss, 0.0, coeff, evaluations])
                break
            previous = grad
            loss, grad = f()
            self.timeline.append([loss, t, coeff, evaluations + 1])
        return loss_before

    def state_dict(self) -> dict[str, Any]:
        return {"timeline": self.timeline}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.timeline = [list(r) for r in state.get("timeline", [])]


class LBFGS(Optimizer):
    """L-BFGS on the current batch: ``maxiter`` iterations, ``maxfun`` evaluations,
    history ``m``, gradient tolerance ``pgtol`` (torch's implementation, strong Wolfe)."""

    name = "LBFGS"

    def __init__(self, params, settings, weight_decay):
        super().__init__(params, settings, weight_decay)
        self.inner = torch.optim.LBFGS(
            self.params,
            lr=1.0,
            max_iter=int(settings["maxiter"]),
            max_eval=int(settings["maxfun"]),
            history_size=int(settings["m"]),
            tolerance_grad=float(settings["pgtol"]),
            line_search_fn="strong_wolfe",
        )

    def step(self, closure: Closure) -> float:
        def decayed() -> Tensor:
            loss = closure()
            if self.weight_decay:
                with torch.no_grad():
                    for p in self.params:
                        if p.grad is not None:
                            p.grad.add_(p, alpha=self.weight_decay)
                    loss = loss + 0.5 * self.weight_decay * sum(
                        float((p * p).sum()) for p in self.params
                    )
            return loss

        return float(self.inner.step(decayed))

    def state_dict(self) -> dict[str, Any]:
        return self.inner.state_dict()

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.inner.load_state_dict(state)


OPTIMIZERS: dict[str, type[Optimizer]] = {c.name: c for c in (SGD, Adam, RPROP, CG, LBFGS)}


def canonical_name(name: str) -> str:
    """The optimiser's canonical spelling (case-insensitive), or a ValueError listing them."""
    for known in OPTIMIZERS:
        if known.lower() == str(name).lower():
            return known
    raise ValueError(f"Optimizer {name!r} is unknown: use one of {', '.join(OPTIMIZERS)}.")


def make_optimizer(name: str, params: Sequence[Tensor], config: Any) -> Optimizer:
    """Create optimiser ``name`` with the config's ``<name>_params`` and ``weight_decay``."""
    name = canonical_name(name)
    weight_decay = float(getattr(config, "weight_decay", 0.0) or 0.0)
    return OPTIMIZERS[name](params, optimizer_params(name, config), weight_decay)


def switch_optimizer(old: Optimizer, name: str, params: Sequence[Tensor], config: Any) -> Optimizer:
    """A new optimiser for the same parameters; the current LR carries over where both have one.

    Momentum buffers, step sizes and curvature history belong to one method and start afresh.
    """
    new = make_optimizer(name, params, config)
    if old.lr is not None and new.lr is not None:
        new.lr = old.lr
    return new


def scheduled_lr(step: int, lr: float, decay: float, schedule: dict[int, float]) -> float:
    """The LR to use from ``step`` on: a schedule entry sets it, else every 1000 steps it decays.

    Working on the current LR (not a formula from the start) keeps a console ``setlr``;
    the schedule may be given in any order.
    """
    if step in schedule:
        return float(schedule[step])
    if step > 0 and step % 1000 == 0:
        return lr * decay
    return lr
