"""Run state: what a run decides or changes after the user's config was checked.

The config stays exactly as the user wrote it (it is frozen after the checks). What is
detected or drawn at start (``n_lab`` from the labels, the seed) and what the Ctrl+C console
steers (steps, run time, history frequency, the optimiser, ``setlr``/``setmom``) lives here,
and :meth:`RunState.resolved` writes both into the resolved configuration of every parameter
file, so that a resumed run or a run trained from ``Backup/resolved_config.py`` sees them.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

from .optimizers import DECAY_INTERVAL


@dataclass
class RunState:
    """The run's own values; see the module docstring.

    Attributes
    ----------
    random_seed, n_lab
        The seed in use and the number of classes (given or detected).
    optimizer
        The optimiser in use (the console can switch it).
    n_steps, max_runtime, history_freq
        When the run ends and how often it monitors.
    lr_schedule
        ``{step: LR}``: ``LR_schedule`` plus every ``setlr`` (an entry at the step it was made).
    momentum
        Set by ``setmom``; kept across optimiser switches (None: the optimiser's own).
    """

    random_seed: int
    n_lab: int
    optimizer: str
    n_steps: int
    max_runtime: float
    history_freq: int
    lr_schedule: dict[int, float] = field(default_factory=dict)
    momentum: float | None = None

    @classmethod
    def from_config(cls, config: Any, random_seed: int, n_lab: int) -> RunState:
        """The state at the start of a run (or of a resumed one: its resolved config)."""
        return cls(
            random_seed=int(random_seed),
            n_lab=int(n_lab),
            optimizer=config.optimizer,
            n_steps=int(config.n_steps),
            max_runtime=config.max_runtime,
            history_freq=int(config.history_freq[0]),
            lr_schedule={int(s): float(lr) for s, lr in config.LR_schedule or ()},
            momentum=None,
        )

    def resolved(self, config: Any) -> dict[str, Any]:
        """Every option's final value: the user's config with this state written in."""
        values = config.to_dict()
        values.update(
            random_seed=self.random_seed,
            n_lab=self.n_lab,
            optimizer=self.optimizer,
            n_steps=self.n_steps,
            max_runtime=self.max_runtime,
            history_freq=[self.history_freq],
            LR_schedule=sorted(self.lr_schedule.items()) or None,
        )
        if self.momentum is not None:
            values["SGD_params"] = {**values["SGD_params"], "momentum": self.momentum}
        return values

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def lr_at_step(step: int, lr0: float, decay: float, schedule: dict[int, float]) -> float:
    """The learning rate at ``step``: a pure function of the step and the schedule.

    Every 1000 steps (not at step 0, unlike the original) the LR is multiplied by ``decay``;
    a schedule entry (``LR_schedule`` or a console ``setlr``) sets the LR at its step, and the
    decay continues from that value. Being a pure function of the step, it lets a resumed run
    recompute the LR (as nanoGPT's ``get_lr``).
    """
    start = max((s for s in schedule if s <= step), default=None)
    lr = lr0 if start is None else schedule[start]
    since = 0 if start is None else start
    return lr * decay ** (step // DECAY_INTERVAL - since // DECAY_INTERVAL)
