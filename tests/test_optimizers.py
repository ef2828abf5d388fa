"""The optimisers (issue 5, reference §5.2) on a small convex problem: logistic regression on
one fixed generated batch in float64, so that every comparison is deterministic."""

from __future__ import annotations

import io
from dataclasses import dataclass
from types import SimpleNamespace

import pytest
import torch
import torch.nn.functional as F

from elektronn.train.optimizers import NAMES, build_optimizer, switch_optimizer
from elektronn.train.state import lr_at_step

DTYPE = torch.float64


@dataclass
class Problem:
    """Logistic regression: weights, bias and a closure over one fixed batch."""

    x: torch.Tensor
    y: torch.Tensor
    params: list[torch.Tensor]

    def loss(self) -> torch.Tensor:
        w, b = self.params
        return F.binary_cross_entropy_with_logits(self.x @ w + b, self.y)

    def closure(self) -> torch.Tensor:
        for p in self.params:
            p.grad = None
        loss = self.loss()
        loss.backward()
        return loss

    def current_loss(self) -> float:
        with torch.no_grad():
            return float(self.loss())

    def snapshot(self) -> list[torch.Tensor]:
        return [p.detach().clone() for p in self.params]


def make_problem(seed: int = 0, params: list[torch.Tensor] | None = None) -> Problem:
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(64, 5, generator=g, dtype=DTYPE)
    y = (x @ torch.randn(5, generator=g, dtype=DTYPE) > 0).to(DTYPE)
    if params is None:
        params = [
            torch.randn(5, generator=g, dtype=DTYPE),
            torch.randn(1, generator=g, dtype=DTYPE),
        ]
    return Problem(x, y, [p.clone().requires_grad_(True) for p in params])


def config(**options) -> SimpleNamespace:
    """A config as the trainer passes it; the ``*_params`` not given fall back to defaults."""
    return SimpleNamespace(**{"weight_decay": 0.0, **options})


@pytest.mark.parametrize("name", NAMES)
def test_each_optimizer_lowers_the_loss_and_returns_the_loss_before(name):
    problem = make_problem()
    optimizer = build_optimizer(name, problem.params, config())
    start = problem.current_loss()
    before = start
    for _ in range(5):
        assert optimizer.step(problem.closure) == pytest.approx(before, rel=1e-12)
        before = problem.current_loss()
    assert before < start


@pytest.mark.parametrize("name", ["CG", "LBFGS"])
def test_cg_and_lbfgs_beat_one_sgd_step(name):
    after = {}
    for method in ("SGD", name):
        problem = make_problem()
        build_optimizer(method, problem.params, config()).step(problem.closure)
        after[method] = problem.current_loss()
    assert after[name] < after["SGD"]


def zero_gradients(problem: Problem) -> torch.Tensor:
    for p in problem.params:
        p.grad = None
    loss = sum((0.0 * p).sum() for p in problem.params)
    loss.backward()
    return loss


def no_gradients(problem: Problem) -> torch.Tensor:
    """A loss that does not reach the parameters at all: their ``grad`` stays None."""
    for p in problem.params:
        p.grad = None
    loss = torch.zeros((), dtype=DTYPE, requires_grad=True)
    loss.backward()
    return loss


@pytest.mark.parametrize("closure", [zero_gradients, no_gradients])
@pytest.mark.parametrize("name", NAMES)
def test_weight_decay_shrinks_every_parameter(name, closure):
    problem = make_problem()
    before = problem.snapshot()
    optimizer = build_optimizer(name, problem.params, config(weight_decay=0.1))
    optimizer.step(lambda: closure(problem))
    for p, old in zip(problem.params, before, strict=True):
        assert p.detach().norm() < old.norm()


def test_update_rules_of_sgd_and_rprop():
    """One step by hand: SGD θ − LR·g − LR·λ·θ; RPROP θ − s₀·(g/(|g|+1e-6) + λ·θ)."""
    lam = 0.01
    for name, expected in [
        ("SGD", lambda t, g: t - 0.05 * g - 0.05 * lam * t),
        ("RPROP", lambda t, g: t - 1e-4 * (g / (g.abs() + 1e-6) + lam * t)),
    ]:
        problem = make_problem()
        theta = problem.snapshot()
        problem.closure()
        grads = [p.grad.clone() for p in problem.params]
        options = config(weight_decay=lam, SGD_params={"LR": 0.05})
        optimizer = build_optimizer(name, problem.params, options)
        optimizer.step(problem.closure)
        for p, t, g in zip(problem.params, theta, grads, strict=True):
            torch.testing.assert_close(p.detach(), expected(t, g), rtol=1e-12, atol=1e-15)


def test_adam_matches_torch_adam_with_l2_weight_decay():
    ours, reference = make_problem(), make_problem()
    adam = build_optimizer("Adam", ours.params, config(weight_decay=0.01, Adam_params={"LR": 0.1}))
    torch_adam = torch.optim.Adam(reference.params, lr=0.1, weight_decay=0.01)
    for _ in range(4):
        adam.step(ours.closure)
        torch_adam.step(reference.closure)
    for mine, theirs in zip(ours.params, reference.params, strict=True):
        torch.testing.assert_close(mine, theirs, rtol=1e-10, atol=1e-12)


def test_rprop_step_sizes_grow_while_the_sign_holds_and_stay_clipped():
    problem = make_problem()
    optimizer = build_optimizer("RPROP", problem.params, config())
    for _ in range(30):
        optimizer.step(problem.closure)
    sizes = torch.cat([s.reshape(-1) for s in optimizer.state["step_sizes"]])
    assert float(sizes.max()) == pytest.approx(2e-3)
    assert float(sizes.min()) >= 1e-7


def test_lr_at_step_with_an_unsorted_schedule():
    schedule = [(3000, 0.5), (1500, 0.1)]
    # (step, LR): no decay at 0; an entry sets the LR at its step and the decay goes on from it
    expected = [(0, 1.0), (999, 1.0), (1000, 0.5), (1499, 0.5), (1500, 0.1), (1999, 0.1)]
    expected += [(2000, 0.05), (2999, 0.05), (3000, 0.5), (3999, 0.5), (4000, 0.25)]
    for step, lr in expected:
        assert lr_at_step(step, 1.0, 0.5, dict(schedule)) == pytest.approx(lr)
    assert lr_at_step(2500, 1.0, 0.5, {}) == pytest.approx(0.25)


def test_lr_and_momentum_only_where_the_method_has_them():
    problem = make_problem()
    for name in ("RPROP", "CG", "LBFGS"):
        optimizer = build_optimizer(name, problem.params, config())
        assert optimizer.lr is None and optimizer.momentum is None
        with pytest.raises(AttributeError, match="no learning rate"):
            optimizer.lr = 0.1
    assert build_optimizer("Adam", problem.params, config()).momentum is None
    sgd = build_optimizer("sgd", problem.params, config(SGD_params={"LR": 0.02}))
    assert (sgd.lr, sgd.momentum) == (0.02, 0.9)  # the missing momentum takes the default


@pytest.mark.parametrize("name", ["SGD", "Adam"])
def test_setting_the_lr_acts_on_the_update(name):
    problem = make_problem()
    before = problem.snapshot()
    optimizer = build_optimizer(name, problem.params, config())
    optimizer.lr = 0.0
    optimizer.step(problem.closure)
    for p, old in zip(problem.params, before, strict=True):
        assert torch.equal(p.detach(), old)


def test_names_are_case_insensitive_and_unknown_names_or_keys_are_refused():
    problem = make_problem()
    assert build_optimizer("lbfgs", problem.params, config()).name == "LBFGS"
    with pytest.raises(ValueError, match="SGD, CG, RPROP, LBFGS, Adam"):
        build_optimizer("RPORP", problem.params, config())
    with pytest.raises(ValueError, match="unknown keys \\['lr'\\]"):
        build_optimizer("SGD", problem.params, config(SGD_params={"lr": 0.1}))


def test_switching_keeps_parameters_lr_and_the_cg_record():
    problem = make_problem()
    sgd = build_optimizer("SGD", problem.params, config())
    sgd.lr = 0.0123
    sgd.step(problem.closure)
    params = problem.snapshot()

    adam = switch_optimizer(sgd, "Adam", problem.params, config())
    assert adam.lr == 0.0123 and not adam.state_dict()["state"]
    cg = switch_optimizer(adam, "CG", problem.params, config())
    assert cg.lr is None
    for p, old in zip(problem.params, params, strict=True):
        assert torch.equal(p.detach(), old)

    cg.step(problem.closure)
    rows = len(cg.timeline)
    sgd_again = switch_optimizer(cg, "SGD", problem.params, config())
    back = switch_optimizer(sgd_again, "CG", problem.params, config())
    assert len(back.timeline) == rows > 0


def test_switching_to_the_same_method_resets_only_its_buffers():
    problem = make_problem()
    sgd = build_optimizer("SGD", problem.params, config())
    sgd.momentum = 0.5
    sgd.step(problem.closure)
    again = switch_optimizer(sgd, "SGD", problem.params, config())
    assert again.momentum == 0.5 and not again.state_dict()["state"]


def test_reset_state_keeps_the_lr():
    problem = make_problem()
    sgd = build_optimizer("SGD", problem.params, config())
    sgd.lr = 0.5
    sgd.step(problem.closure)
    assert any(bool(v.any()) for v in sgd.velocity)
    sgd.reset_state()
    assert sgd.lr == 0.5 and not sgd.state_dict()["state"]
    assert not any(bool(v.any()) for v in sgd.velocity)


def test_cg_timeline_rows():
    problem = make_problem()
    cg = build_optimizer("CG", problem.params, config())
    loss0 = cg.step(problem.closure)
    assert len(cg.timeline) == 4  # n_steps of the master defaults
    losses = [row[0] for row in cg.timeline]
    assert losses[0] < loss0 and losses == sorted(losses, reverse=True)
    assert losses[-1] == pytest.approx(problem.current_loss(), rel=1e-12)
    for _, t, coeff, evaluations in cg.timeline:
        assert 8e-5 <= t <= 0.02 and coeff >= 0.0 and evaluations >= 1
    assert cg.timeline[0][2] == 0.0  # the kick-start is steepest descent


def test_cg_rejects_trial_steps_whose_loss_is_not_finite():
    """The trainer's closure raises FloatingPointError for inf/NaN: too long a trial step."""
    problem = make_problem()
    start = problem.snapshot()
    loss0 = problem.current_loss()

    def closure() -> torch.Tensor:
        if float((problem.params[0].detach() - start[0]).norm()) > 1e-3:
            raise FloatingPointError("inf")
        return problem.closure()

    cg = build_optimizer("CG", problem.params, config())
    cg.step(closure)
    accepted = [row[1] for row in cg.timeline if row[1] > 0]
    assert accepted and max(accepted) < 0.02
    assert problem.current_loss() < loss0


def test_lbfgs_puts_the_parameters_back_when_an_evaluation_fails():
    problem = make_problem()
    start = problem.snapshot()
    calls = []

    def closure() -> torch.Tensor:
        calls.append(1)
        if len(calls) == 3:
            raise FloatingPointError("nan")
        return problem.closure()

    with pytest.raises(FloatingPointError):
        build_optimizer("LBFGS", problem.params, config()).step(closure)
    for p, old in zip(problem.params, start, strict=True):
        assert torch.equal(p.detach(), old)


@pytest.mark.parametrize("name", NAMES)
def test_state_dict_round_trip_gives_identical_next_steps(name):
    options = config(weight_decay=0.01)
    problem = make_problem()
    optimizer = build_optimizer(name, problem.params, options)
    for _ in range(2):
        optimizer.step(problem.closure)
    optimizer.take_timeline()  # the trainer takes the CG rows after every step
    buffer = io.BytesIO()
    torch.save(optimizer.state_dict(), buffer)  # as in a parameter file
    resumed_problem = make_problem(params=problem.snapshot())

    optimizer.step(problem.closure)
    buffer.seek(0)
    resumed = build_optimizer(name, resumed_problem.params, options)
    resumed.load_state_dict(torch.load(buffer, weights_only=True))
    resumed.step(resumed_problem.closure)

    for p, q in zip(problem.params, resumed_problem.params, strict=True):
        assert torch.equal(p.detach(), q.detach())
    assert resumed.take_timeline() == optimizer.take_timeline()


def test_loading_another_methods_state_is_refused():
    problem = make_problem()
    state = build_optimizer("SGD", problem.params, config()).state_dict()
    with pytest.raises(ValueError, match="switch_optimizer"):
        build_optimizer("Adam", problem.params, config()).load_state_dict(state)
