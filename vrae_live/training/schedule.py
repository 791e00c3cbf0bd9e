"""The learning rate and the KL weight over a run, and when the run is done.

Two learning-rate schedules (``[train] schedule``):

- ``plateau``, the default: the rate stays at ``lr`` while the validation bound improves. After
  ``patience`` steps without a better bound it drops by ``LR_DROP``, down to ``lr_final``; at
  ``lr_final``, ``patience`` more steps without a better bound end the run: it has converged
  (a small corpus then overfits: the training bound still rises, the validation bound falls).
  The step budget (``max_steps``, through the fitted epochs) is only the ceiling.
- ``exponential``: from ``lr`` to ``lr_final`` over a fixed run, a function of the step alone.

Why: a model learns to hold a note late. On 30 chorales an RNN at a constant 1e-3 told a hold
from a release only between steps 400 and 800; the exponential fall of 100-fold over about
1,000 steps had the rate 6 times lower by step 400, and its models scored worse than copying
the last frame (docs/models.md).

The KL weight rises from 0 to 1 over the first ``kl_anneal_steps`` steps (Bowman et al. 2016),
or in ``kl_cycles`` cycles over them (Fu et al. 2019), each rising over its first half. The
plateau's wait runs through them: the validation bound (the plain ELBO) still rises while the
weight cycles, and a wait that began only once the weight stays at 1 let a small corpus overfit
for the whole of it. But a run does not stop before the weight has settled at 1, and the trainer
keeps no epoch before the weight has reached 1 once (``Trainer.annealed``): on 6 short songs the
best bound came at step 40, the pad not yet formed (0.84 along its weakest direction), and the
run stopped at step 440. (Keeping none before the weight settles, at step 1,000 of the default,
kept 8 chorales overfitted, worse than copying the last frame: -7.08 against -6.96.)
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from ..config import TrainConfig

LR_DROP = 0.1
MIN_GAIN = 1e-3  # nats a step: a smaller gain of the validation bound is no improvement


def kl_weight(t: "TrainConfig", step: int) -> float:
    """The weight of the KL term at optimizer step ``step`` (0-based)."""
    if step >= t.kl_anneal_steps:
        return 1.0
    if t.kl_cycles > 0:
        cycle = t.kl_anneal_steps / t.kl_cycles
        return min(1.0, 2 * (step % cycle) / cycle)
    return step / t.kl_anneal_steps


def first_full_weight(t: "TrainConfig", once: bool = False) -> int:
    """The step from which the KL weight stays at 1, or (``once``) first reaches it: the top of the first cycle."""
    if once and t.kl_cycles > 0:
        return math.ceil(t.kl_anneal_steps / t.kl_cycles / 2)
    return t.kl_anneal_steps


def exponential_rate(t: "TrainConfig", step: int, total_steps: int) -> float:
    return t.lr * (t.lr_final / t.lr) ** (step / max(1, total_steps - 1))


def plateau_rate(t: "TrainConfig", drops: int) -> float:
    return max(t.lr_final, t.lr * LR_DROP ** drops)


class Plateau:
    """The plateau schedule's state: kept in the trainer's progress, so a resumed run goes on exactly.

    ``best`` is the best validation bound so far (nats a step), ``waited`` the steps since it,
    ``drops`` how often the rate was lowered, ``converged`` whether the run is done.
    """

    def __init__(self, best: float = -math.inf, waited: int = 0, drops: int = 0, converged: bool = False):
        self.best, self.waited, self.drops, self.converged = best, waited, drops, converged

    def state(self) -> dict[str, float | int | bool]:
        return {"best": self.best, "waited": self.waited, "drops": self.drops, "converged": self.converged}

    def rate(self, t: "TrainConfig") -> float:
        return plateau_rate(t, self.drops)

    def after_epoch(self, t: "TrainConfig", bound: float, steps: int, may_stop: bool = True) -> str | None:
        """Take the bound at an epoch's end, after ``steps`` steps in it; returns what changed:
        ``"drop"`` (the rate was lowered), ``"converged"`` (the run is done) or None. While
        ``may_stop`` is False (the KL weight still anneals) the run goes on at the lowest rate."""
        if math.isfinite(bound) and bound > self.best + MIN_GAIN:
            self.best, self.waited = bound, 0
            return None
        self.waited += steps
        if self.waited < t.patience:
            return None
        if plateau_rate(t, self.drops) <= t.lr_final * (1 + 1e-9):
            if not may_stop:
                return None
            self.converged = True
            return "converged"
        self.waited = 0
        self.drops += 1
        return "drop"
