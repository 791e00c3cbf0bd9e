"""How long to train and in what batches, fitted to the corpus: a handful of songs or thousands.

A preset's ``epochs`` and ``batch_size`` suit the corpus it was tuned on. Whether the pad
steers depends on how many optimizer steps training takes, not on epochs: on one corpus,
400 steps gave steering 0.85 and 1,600 gave 3.70; the shipped model steers at 2.58 after
1,020. A few songs give few windows, so few steps an epoch (8 Bach chorales: 98 windows,
less than one batch of 100). So, unless the command line fixes them:

- the batch is at most the training windows;
- epochs grow until training takes at least ``min_steps`` steps (at most ``max_epochs``),
  and the KL warm-up grows with them, keeping its share of the run.
"""

from __future__ import annotations

import math

from ..config import Config, with_changes

MAX_EPOCHS = 1000  # the ceiling: a single short song, one batch an epoch, reaches 1,000 steps


def fit_to_corpus(config: Config, windows: int, explicit: set[str] = frozenset()) -> tuple[Config, list[str]]:
    """``config`` with batch size and epochs fitted to ``windows`` training windows, and what changed,
    in words. Settings named in ``explicit`` (given on the command line) are kept as they are."""
    t, changes, said = config.train, {}, []
    batch = t.batch_size
    if "batch_size" not in explicit and 0 < windows < batch:
        batch = changes["batch_size"] = windows
        said.append(f"batches of {windows}: all {windows} training windows (the preset's {t.batch_size} needs more)")
    steps_per_epoch = max(1, math.ceil(windows / batch))
    if "epochs" not in explicit and t.epochs * steps_per_epoch < t.min_steps:
        epochs = min(MAX_EPOCHS, math.ceil(t.min_steps / steps_per_epoch))
        changes["epochs"] = epochs
        changes["kl_warmup_epochs"] = t.kl_warmup_epochs * epochs / t.epochs
        said.append(f"{epochs} epochs of {steps_per_epoch} step(s): at least {t.min_steps} steps make a pad "
                    f"that steers (the preset's {t.epochs} epochs would take {t.epochs * steps_per_epoch})"
                    + (f"; {MAX_EPOCHS} at most" if epochs == MAX_EPOCHS else ""))
    return (with_changes(config, train=changes) if changes else config), said
