"""A plain recurrent baseline with no latent variable: the VRAE's decoder without z.

    h_0     = tanh(b_0)                     # learned, in place of the VRAE's tanh(W_z z + b_z)
    h_{t+1} = f(x_t, h_t)                   # f: cell rnn (tanh) | gru | lstm, hidden H
    x_t     ~ Bernoulli(sigm(W_out h_t + b_out))

It models log p(x) = sum_t log p(x_t | x_<t) exactly, so its "bound" is the log-likelihood:
``loss_terms`` gives a KL with no units, ``(B, 0)``, and ``importance_weighted_bound`` the
same figure as the ELBO whatever K. It keeps the common interface so training, evaluation,
checkpoints and the live path take it unchanged: it accepts a ``z (B, L)`` of the config's
latent size and ignores it, and ``encode`` gives a constant zero code (the pad plays nothing;
the plane the trainer measures is degenerate, and no unit is ever active).
"""

from __future__ import annotations

from typing import Callable

import torch
import torch.nn.functional as F
from torch import nn

from ..config import ModelConfig
from .vrae import CELLS, FrameModel, LossTerms, State, _batched, free_run, rnn_step


class RNN(FrameModel):
    def __init__(self, n_columns: int, config: ModelConfig, n_inputs: int | None = None, groups: int = 1):
        super().__init__(n_columns, config, n_inputs, groups)
        h = config.hidden
        self.h0 = nn.Parameter(torch.zeros(2 * h if self.is_lstm else h))  # b_0
        self.rnn = CELLS[config.cell](self.n_inputs, h, batch_first=True)
        self.to_logits = nn.Linear(h, n_columns)  # W_out, b_out

    @property
    def latent_size(self) -> int:
        return 0

    z_fed_every_step = False  # no z at all: a move of the pad changes nothing

    def reseed(self, seed: int) -> None:
        """Nothing to restart: the decoder draws no noise of its own."""

    def encode(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """A constant zero code ``(B, L)`` (or ``(L,)``) and zero logvar: there is no latent."""
        x, single = _batched(x)
        zero = x.new_zeros(x.shape[0], self.config.latent)
        return (zero[0], zero[0]) if single else (zero, zero)

    def initial_state(self, z: torch.Tensor) -> State:
        """h_0 = tanh(b_0) for a batch of ``z.shape[0]``, shaped ``(1, B, H)``; z is ignored."""
        h0 = torch.tanh(self.h0).expand(1, z.shape[0], -1)
        if self.is_lstm:
            h, c = h0.chunk(2, dim=-1)
            return (h.contiguous(), c.contiguous())
        return h0.contiguous()

    def logits(self, state: State) -> torch.Tensor:
        h = state[0] if self.is_lstm else state
        return self.to_logits(h.squeeze(0))

    def advance(self, frames: torch.Tensor, state: State, z: torch.Tensor) -> State:
        if frames.dim() == 2:  # one frame, as generation feeds them
            return rnn_step(self.rnn, frames, state)
        _, state = self.rnn(frames, state)
        return state

    def decode(self, x: torch.Tensor) -> torch.Tensor:
        """Teacher-forced logits ``(B, T, P)``: frame t from the true frames 0..t-1 only."""
        state = self.initial_state(x[:, 0])
        h0 = state[0] if self.is_lstm else state  # (1, B, H)
        out, _ = self.rnn(x[:, :-1], state)  # (B, T-1, H)
        return self.to_logits(torch.cat([h0.transpose(0, 1), out], dim=1))

    def loss_terms(
        self, x: torch.Tensor, generator: torch.Generator | None = None, input_dropout: float = 0.0
    ) -> LossTerms:
        """-log p(x) per sequence ``(B,)`` as ``rec``, and a KL with no units ``(B, 0)``.

        ``input_dropout`` blanks that share of the frames fed back, as for the VRAE.
        """
        x, _ = _batched(x)
        fed = x
        if input_dropout > 0:
            keep = torch.rand(x.shape[:2], generator=generator) >= input_dropout  # (B, T)
            fed = x * keep.to(x.device, x.dtype).unsqueeze(-1)
        rec = F.binary_cross_entropy_with_logits(self.decode(fed), x[..., :self.n_columns],
                                                 reduction="none").sum(dim=(1, 2))
        return LossTerms(rec=rec, kl=x.new_zeros(x.shape[0], 0))

    @torch.no_grad()
    def importance_weighted_bound(
        self, x: torch.Tensor, samples: int, generator: torch.Generator | None = None
    ) -> torch.Tensor:
        """The exact log-likelihood log p(x) per sequence ``(B,)``, whatever ``samples``."""
        return -self.loss_terms(x).rec

    @torch.no_grad()
    def generate(
        self, z: torch.Tensor, steps: int, choose: Callable[[torch.Tensor], torch.Tensor] | None = None
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Free-running decoding for a batch of ``z.shape[0]``; see ``vrae.free_run``."""
        return free_run(self, z, steps, choose)
