"""How long to train and in what batches, fitted to the corpus: a handful of songs or thousands.

A preset's ``batch_size`` suits the corpus it was tuned on, and a run is measured in optimizer
steps, not epochs: a few songs give few windows, so few steps an epoch (8 Bach chorales: 98
windows, less than one batch of 100), and thousands of songs many. So, unless the command line
fixes them:

- the batch is at most the training windows;
- the epochs are those that take ``max_steps`` steps (at most ``MAX_EPOCHS``). Under the plateau
  schedule that is the ceiling, and the run ends when the validation bound stops improving
  (``schedule.py``); under the exponential one it is the run.
"""

from __future__ import annotations

import math

from ..config import Config, with_changes

MAX_EPOCHS = 10_000  # one batch an epoch: the step budget in epochs of a single short song


def fit_to_corpus(config: Config, windows: int, explicit: set[str] = frozenset()) -> tuple[Config, list[str]]:
    """``config`` with batch size and epochs fitted to ``windows`` training windows, and what changed,
    in words. Settings named in ``explicit`` (given on the command line) are kept as they are."""
    t, changes, said = config.train, {}, []
    batch = t.batch_size
    if "batch_size" not in explicit and 0 < windows < batch:
        batch = changes["batch_size"] = windows
        said.append(f"batches of {windows}: all {windows} training windows (the preset's {t.batch_size} needs more)")
    steps_per_epoch = max(1, math.ceil(windows / batch))
    epochs = min(MAX_EPOCHS, math.ceil(t.max_steps / steps_per_epoch))
    if "epochs" not in explicit and epochs != t.epochs:
        changes["epochs"] = epochs
        until = " or until the validation bound stops improving" if t.schedule == "plateau" else ""
        said.append(f"at most {epochs} epochs of {steps_per_epoch} step(s): {epochs * steps_per_epoch} steps{until}")
    return (with_changes(config, train=changes) if changes else config), said
