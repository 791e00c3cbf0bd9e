"""Aggressive training of the encoder (He et al. 2019, "Lagging inference networks").

Early in training the decoder learns faster than the encoder follows it. An encoder whose
posterior lags the model's gives the decoder codes that tell it little, and the decoder
learns to do without them: posterior collapse, a pad that changes nothing. He et al. let the
encoder catch up: before each step of the whole model, steps of the encoder alone on other
batches. Their phase lasts while the mutual information between windows and codes still
rises; here it is the first ``AGGRESSIVE_SHARE`` of the run's steps (with the default four KL
cycles, the first cycle), with ``encoder_steps`` steps of the encoder before each step of the
whole model, so that part of the run costs ``1 + encoder_steps`` times as much.

The encoder's own Adam keeps its moments apart from the joint optimiser's. It is not saved
with the run: a run resumed inside the phase starts those moments afresh.
"""

from __future__ import annotations

from typing import Callable

import torch
from torch import nn

from ..errors import ConfigError

AGGRESSIVE_SHARE = 0.25


class EncoderCatchUp:
    def __init__(self, model: nn.Module, steps: int, total_steps: int, clip_grad_norm: float, **adam) -> None:
        if not hasattr(model, "encoder_parameters"):
            raise ConfigError("--encoder-steps is for the vrae, whose encoder reads a whole window; "
                              f"this model is {type(model).__name__}")
        self.params = list(model.encoder_parameters())
        self.optimizer = torch.optim.Adam(self.params, **adam)
        self.model, self.steps, self.clip = model, steps, clip_grad_norm
        self.last_step = int(AGGRESSIVE_SHARE * total_steps)  # the first step not preceded by the encoder's

    def active(self, global_step: int) -> bool:
        return global_step < self.last_step

    def run(self, loss_of: Callable[[torch.Generator], tuple[torch.Tensor, torch.Tensor]], lr: float,
            generator: torch.Generator) -> None:
        """``steps`` steps of the encoder alone; ``loss_of(generator)`` draws a batch and gives its
        training loss and its (detached) figure, whose finiteness decides whether a step is taken."""
        for group in self.optimizer.param_groups:
            group["lr"] = lr
        for _ in range(self.steps):
            loss, whole = loss_of(generator)
            self.model.zero_grad(set_to_none=True)
            loss.backward()
            grad_norm = nn.utils.clip_grad_norm_(self.params, self.clip)
            if torch.isfinite(whole + grad_norm).item():
                self.optimizer.step()
        self.model.zero_grad(set_to_none=True)
