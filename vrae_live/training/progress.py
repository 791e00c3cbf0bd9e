"""Where a training run stands, and which of its epochs is the one to keep."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

from .schedule import Plateau

# How much worse, in nats a step, an epoch whose pad steers may be than one whose pad does not,
# and still be kept over it. Beyond it, the better model wins: an early, vague model can steer
# a little (8 Palestrina songs: 1.72 at epoch 45, bound -6.61) where the end of the run cannot
# (1.10 at -3.60), and 3 nats a step is music worse than any pad makes up for.
BOUND_SLACK = 0.5


def row_score(row: dict[str, Any]) -> float:
    """What a row of metrics.jsonl is judged by: its validation bound, else (no validation set) its training bound."""
    return row["val_bound"] if row["val_bound"] is not None else row["train_bound"]


@dataclass
class Progress:
    """Where training stands; everything needed to resume exactly."""

    epoch: int = 0  # the epoch under way (0-based)
    step_in_epoch: int = 0  # batches of it already done
    global_step: int = 0
    best_bound: float = -math.inf
    best_epoch: int = -1
    best_steers: bool = False  # whether the kept epoch's pad steered (see Progress.keeps)
    checked_weakest: list[float] = field(default_factory=list)  # every pad check's weakest direction so far
    seconds: float = 0.0
    sums: dict[str, float] = field(default_factory=lambda: {"rec": 0.0, "kl": 0.0, "n": 0.0})
    skipped_in_epoch: int = 0  # steps skipped for a loss or gradient that was not finite, since the last row
    row_steps: int = 0  # steps since the last row of figures
    row_seconds: float = 0.0  # seconds of training since the last row of figures
    skips_in_a_row: int = 0
    plateau: dict[str, Any] = field(default_factory=lambda: Plateau().state())  # the plateau schedule's state

    def to_state(self) -> dict[str, Any]:
        return dict(self.__dict__)

    def keeps(self, row: dict[str, Any], pad_checked: bool) -> bool:
        """Whether the epoch of ``row`` (a row of metrics.jsonl) is the one to keep so far; if so it is noted.

        The rule: an epoch whose pad steers (``row["steers"]``: the median of the last three pad
        checks, this epoch's among them, reaches ``STEERS`` in the weakest direction) beats one
        whose pad does not, unless that one's bound is better by more than ``BOUND_SLACK``; between
        two that both steer, or both do not, the better validation bound wins (the training bound
        without a validation set). Without pad checks (``pad_checked`` False) every epoch counts as
        steering: the bound alone decides. With them, only the epochs checked are candidates.
        """
        score = row_score(row)
        if pad_checked and "steers" not in row:
            return False  # an epoch between checks: only checked epochs are kept
        steers = bool(row.get("steers", True))
        if not math.isfinite(score):  # nan compares false: it would always win
            return False
        if self.best_epoch > 0:
            handicap = 0.0 if steers == self.best_steers else BOUND_SLACK if steers else -BOUND_SLACK
            if score + handicap <= self.best_bound:
                return False
        self.best_bound, self.best_epoch, self.best_steers = score, row["epoch"], steers
        return True
