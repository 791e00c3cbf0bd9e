"""The Variational RNN of Chung et al. (2015), section 3, with a Bernoulli output for piano rolls.

A latent z_t at every frame x_t (1 <= t <= T), all tied together by one RNN state h
(h_0 = 0). With ``F = features``, ``H = hidden``, ``L = latent`` (the per-step latent
size) and every phi a one-layer ReLU network of width F::

    phi_x(x_t)  = relu(W_x x_t + b_x)                                        # (F,)
    phi_z(z_t)  = relu(W_z z_t + b_z)                                        # (F,)

    prior       [mu_0t, log sigma_0t^2] = heads_0(relu(W_0 h_{t-1} + b_0))
    posterior   [mu_zt, log sigma_zt^2] = heads_q(relu(W_q [phi_x(x_t); h_{t-1}] + b_q))
    generation  x_t ~ Bernoulli(sigm(W_out relu(W_d [phi_z(z_t); h_{t-1}] + b_d) + b_out))
    recurrence  h_t = f(W [phi_x(x_t); phi_z(z_t)], h_{t-1})                 # f: cell rnn | gru | lstm

where each ``heads`` is two affine maps, one for the mean and one for ``logvar = log sigma^2``
(clamped to +-20, as in the VRAE, so that its exp stays finite).
The objective is the paper's lower bound,

    sum_t  E_q[ log p(x_t | z_<=t, x_<t) ]  -  KL( q(z_t | x_<=t, z_<t) || p(z_t | x_<t, z_<t) ),

one reparametrised sample z_t = mu_zt + sigma_zt eps_t of the whole sequence, the KL between
the two diagonal Gaussians analytic at each step. ``loss_terms`` gives it per unit summed over
time, ``kl (B, L)``, so the trainer's free bits act per latent unit as for the VRAE. The paper
uses an LSTM or GRU for f; the tanh ``rnn`` cell is kept for comparison with the VRAE.

Fast path: phi_x and the posterior's x-part are applied to all frames at once; only the
chain posterior -> z_t -> phi_z -> cell runs step by step (z_t needs h_{t-1}); the prior, the
generation network and the KL then run on all steps at once.

The same interface as the VRAE (``models/vrae.py``), with these meanings:

- ``encode(x)`` gives a window's *code*: the mean over its steps of the offset of the
  posterior mean from the prior mean, ``mean_t (mu_zt - mu_0t)``, with z_t set to the
  posterior mean while reading (no noise). It is the shift the window's music imposes on the
  model's own expectation at each step, in the units the pad plays (below); the training
  windows' codes place the songs on the XY pad (``pad.latent_plane``). The second value is
  the mean posterior ``logvar`` over the steps.
- Playing (``initial_state``, ``logits``, ``advance``): the ``z (B, L)`` these are given is
  an *offset* added to the learned prior's mean at every step,

      z_t = mu_0t(h_{t-1}) + offset + sigma_0t(h_{t-1}) eps_t,

  so the pad's centre plays the model's own prior and a song's point plays the average
  shift that song's windows produced. The state carries h_{t-1} (and the LSTM's cell) and the
  z_t drawn for the frame about to be predicted; ``advance`` feeds frame x_t with that z_t into
  the recurrence and draws z_{t+1}. Frames given in a block (the stream decoder's
  teacher-forced context) go through the same generative step, so the offset shapes the
  context too. eps comes from the model's own CPU generator (``reseed(seed)``), so a
  freshly loaded model plays the same take for the same controls, on any device.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Callable

import torch
import torch.nn.functional as F
from torch import nn

from ..config import ModelConfig
from .vrae import FrameModel, LossTerms, clamp_logvar, free_run

CELLS = {"rnn": nn.RNNCell, "gru": nn.GRUCell, "lstm": nn.LSTMCell}
LOG_2PI = math.log(2 * math.pi)


def gaussian_kl_between(mu_q: torch.Tensor, logvar_q: torch.Tensor, mu_p: torch.Tensor, logvar_p: torch.Tensor) -> torch.Tensor:
    """KL(N(mu_q, sigma_q^2) || N(mu_p, sigma_p^2)) elementwise, in nats."""
    return 0.5 * (logvar_p - logvar_q + (logvar_q.exp() + (mu_q - mu_p).pow(2)) / logvar_p.exp() - 1.0)


def gaussian_log_density(z: torch.Tensor, mu: torch.Tensor, logvar: torch.Tensor) -> torch.Tensor:
    """log N(z; mu, sigma^2) elementwise, in nats."""
    return -0.5 * ((z - mu).pow(2) / logvar.exp() + logvar + LOG_2PI)


def _batched(x: torch.Tensor) -> tuple[torch.Tensor, bool]:
    return (x.unsqueeze(0), True) if x.dim() == 2 else (x, False)


@dataclass
class Pass:
    """Everything one pass of the posterior through frames ``(B, T, P)`` produces."""

    logits: torch.Tensor  # (B, T, P) of x_t given z_<=t, x_<t
    z: torch.Tensor  # (B, T, L) the posterior samples
    mu_q: torch.Tensor  # (B, T, L)
    logvar_q: torch.Tensor  # (B, T, L)
    mu_p: torch.Tensor  # (B, T, L) the prior from h_{t-1}
    logvar_p: torch.Tensor  # (B, T, L)


@dataclass
class VRNNState:
    """What the live path carries from step to step."""

    h: torch.Tensor  # (B, H) h_{t-1}
    c: torch.Tensor | None  # (B, H) the LSTM's cell, else None
    z: torch.Tensor  # (B, L) z_t, drawn for the frame about to be predicted


class VRNN(FrameModel):
    # The window codes (per-step pushes averaged over a window) barely spread, so a pad fitted
    # to them spans almost nothing; it spans at least these offsets of the prior's mean either
    # way (measured on Bach after 10 epochs: steering ratio 0.85 on the songs' span, 1.69 on +-2).
    pad_min_extent = 2.0

    def __init__(self, n_columns: int, config: ModelConfig, n_inputs: int | None = None, groups: int = 1):
        super().__init__(n_columns, config, n_inputs, groups)
        p, h, f, latent = n_columns, config.hidden, config.features, config.latent
        self.phi_x = nn.Linear(self.n_inputs, f)  # W_x, b_x
        self.phi_z = nn.Linear(latent, f)  # W_z, b_z
        self.prior = nn.Linear(h, f)  # W_0, b_0
        self.prior_mu, self.prior_logvar = nn.Linear(f, latent), nn.Linear(f, latent)
        self.posterior = nn.Linear(f + h, f)  # W_q, b_q on [phi_x; h]
        self.posterior_mu, self.posterior_logvar = nn.Linear(f, latent), nn.Linear(f, latent)
        self.generation = nn.Linear(f + h, f)  # W_d, b_d on [phi_z; h]
        self.to_logits = nn.Linear(f, p)  # W_out, b_out
        self.cell = CELLS[config.cell](2 * f, h)  # f on [phi_x; phi_z]
        self.noise = torch.Generator().manual_seed(0)  # eps for playing; not a weight

    @property
    def latent_size(self) -> int:
        return self.config.latent

    z_fed_every_step = True  # the pad's offset shifts the prior of every step's z_t (``advance``)

    def reseed(self, seed: int) -> None:
        """Restart the noise the live path draws z_t with."""
        self.noise.manual_seed(seed)

    # -- the networks ------------------------------------------------------------

    def features_x(self, x: torch.Tensor) -> torch.Tensor:
        return F.relu(self.phi_x(x))

    def features_z(self, z: torch.Tensor) -> torch.Tensor:
        return F.relu(self.phi_z(z))

    def prior_of(self, h: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """``h_{t-1} (..., H)`` to the prior's ``mu, logvar``, each ``(..., L)``."""
        a = F.relu(self.prior(h))
        return self.prior_mu(a), clamp_logvar(self.prior_logvar(a))

    def generate_logits(self, fz: torch.Tensor, h: torch.Tensor) -> torch.Tensor:
        """``phi_z(z_t) (..., F)`` and ``h_{t-1} (..., H)`` to the logits ``(..., P)`` of x_t."""
        return self.to_logits(F.relu(self.generation(torch.cat([fz, h], dim=-1))))

    def _zero_state(self, batch: int, like: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor | None]:
        h = like.new_zeros(batch, self.config.hidden)
        return h, (torch.zeros_like(h) if self.is_lstm else None)

    def _recur(self, fx: torch.Tensor, fz: torch.Tensor, h: torch.Tensor, c: torch.Tensor | None):
        """h_t = f([phi_x(x_t); phi_z(z_t)], h_{t-1}), each ``(B, ·)``."""
        inp = torch.cat([fx, fz], dim=-1)  # (B, 2F)
        if self.is_lstm:
            return self.cell(inp, (h, c))
        return self.cell(inp, h), None

    # -- inference ---------------------------------------------------------------

    def posterior_pass(self, x: torch.Tensor, eps: torch.Tensor | None, fed: torch.Tensor | None = None) -> Pass:
        """Run the posterior through frames ``x (B, T, P)`` with noise ``eps (B, T, L)``
        (None: z_t is the posterior mean). ``fed`` (default ``x``) is what the recurrence is
        fed instead of x, for input dropout; the posterior always reads x."""
        batch, steps, _ = x.shape
        fx = self.features_x(x)  # (B, T, F)
        fx_fed = fx if fed is None else self.features_x(fed)  # (B, T, F)
        f = self.config.features
        w_x, w_h = self.posterior.weight[:, :f], self.posterior.weight[:, f:]
        post_x = F.linear(fx, w_x, self.posterior.bias)  # (B, T, F): the x-part of W_q, for all steps at once
        h, c = self._zero_state(batch, x)
        hs, zs, fzs, mus, logvars = [], [], [], [], []
        for t in range(steps):
            hs.append(h)
            a = F.relu(post_x[:, t] + F.linear(h, w_h))  # (B, F)
            mu, logvar = self.posterior_mu(a), clamp_logvar(self.posterior_logvar(a))  # (B, L)
            z = mu if eps is None else mu + torch.exp(0.5 * logvar) * eps[:, t]
            fz = self.features_z(z)  # (B, F)
            h, c = self._recur(fx_fed[:, t], fz, h, c)
            for kept, value in ((zs, z), (fzs, fz), (mus, mu), (logvars, logvar)):
                kept.append(value)
        h_prev = torch.stack(hs, 1)  # (B, T, H): h_0 .. h_{T-1}
        mu_p, logvar_p = self.prior_of(h_prev)  # (B, T, L)
        logits = self.generate_logits(torch.stack(fzs, 1), h_prev)  # (B, T, P)
        return Pass(logits, torch.stack(zs, 1), torch.stack(mus, 1), torch.stack(logvars, 1), mu_p, logvar_p)

    def encode(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """A window's code (see the module docstring): frames ``(B, T, P)`` (or ``(T, P)``) to
        ``mean_t (mu_zt - mu_0t)`` and ``mean_t logvar_zt``, each ``(B, L)`` (or ``(L,)``)."""
        x, single = _batched(x)
        run = self.posterior_pass(x, eps=None)
        code, logvar = (run.mu_q - run.mu_p).mean(1), run.logvar_q.mean(1)  # (B, L)
        return (code[0], logvar[0]) if single else (code, logvar)

    def _noise(self, shape, like: torch.Tensor, generator: torch.Generator | None) -> torch.Tensor:
        """eps ~ N(0, I), drawn on the CPU from ``generator`` so runs repeat on any device."""
        return torch.randn(shape, generator=generator, dtype=like.dtype).to(like.device)

    # -- objective -----------------------------------------------------------------

    def loss_terms(
        self, x: torch.Tensor, generator: torch.Generator | None = None, input_dropout: float = 0.0
    ) -> LossTerms:
        """One-sample SGVB estimate of the negative bound's terms for frames ``x (B, T, P)``:
        ``rec (B,)`` summed over time and pitch, ``kl (B, L)`` summed over time.

        ``input_dropout`` blanks that share of the frames fed to the recurrence (never those
        the posterior reads or the model must predict), so h cannot carry everything and z_t
        must. Training only.
        """
        x, _ = _batched(x)
        batch, steps, _ = x.shape
        eps = self._noise((batch, steps, self.config.latent), x, generator)
        fed = None
        if input_dropout > 0:
            keep = torch.rand(x.shape[:2], generator=generator) >= input_dropout  # (B, T)
            fed = x * keep.to(x.device, x.dtype).unsqueeze(-1)
        run = self.posterior_pass(x, eps, fed)
        rec = F.binary_cross_entropy_with_logits(run.logits, x[..., :self.n_columns], reduction="none").sum(dim=(1, 2))
        kl = gaussian_kl_between(run.mu_q, run.logvar_q, run.mu_p, run.logvar_p).sum(1)  # (B, L)
        return LossTerms(rec=rec, kl=kl)

    @torch.no_grad()
    def importance_weighted_bound(
        self, x: torch.Tensor, samples: int, generator: torch.Generator | None = None
    ) -> torch.Tensor:
        """log (1/K) sum_k p(x, z^k) / q(z^k | x) per sequence ``(B,)``, in nats, with each
        z^k = z^k_1..T drawn whole from the posterior; p(x, z) = prod_t p(z_t | h_{t-1}) p(x_t | z_t, h_{t-1}).
        """
        x, _ = _batched(x)
        batch, steps, _ = x.shape
        log_w = []
        for _ in range(samples):
            run = self.posterior_pass(x, self._noise((batch, steps, self.config.latent), x, generator))
            log_px = -F.binary_cross_entropy_with_logits(run.logits, x[..., :self.n_columns],
                                                         reduction="none").sum(dim=(1, 2))
            log_pz = gaussian_log_density(run.z, run.mu_p, run.logvar_p).sum(dim=(1, 2))
            log_qz = gaussian_log_density(run.z, run.mu_q, run.logvar_q).sum(dim=(1, 2))
            log_w.append(log_px + log_pz - log_qz)
        return torch.logsumexp(torch.stack(log_w), dim=0) - math.log(samples)

    # -- playing -------------------------------------------------------------------

    def _draw(self, h: torch.Tensor, offset: torch.Tensor) -> torch.Tensor:
        """z_t = mu_0t(h_{t-1}) + offset + sigma_0t(h_{t-1}) eps_t, eps from the model's generator."""
        mu, logvar = self.prior_of(h)  # (B, L)
        return mu + offset + torch.exp(0.5 * logvar) * self._noise(mu.shape, mu, self.noise)

    def initial_state(self, z: torch.Tensor) -> VRNNState:
        """h_0 = 0 and z_1 drawn from the prior shifted by ``z (B, L)``."""
        h, c = self._zero_state(z.shape[0], z)
        return VRNNState(h, c, self._draw(h, z))

    def logits(self, state: VRNNState) -> torch.Tensor:
        """The logits ``(B, P)`` of the frame predicted from h_{t-1} and z_t."""
        return self.generate_logits(self.features_z(state.z), state.h)

    def advance(self, frames: torch.Tensor, state: VRNNState, z: torch.Tensor) -> VRNNState:
        """Feed frame x_t ``(B, P)`` (or frames ``(B, T, P)`` in turn) with the state's z_t, then
        draw the next z from the prior shifted by ``z (B, L)``."""
        frames = frames.unsqueeze(1) if frames.dim() == 2 else frames
        fx = self.features_x(frames)  # (B, T, F)
        h, c, z_t = state.h, state.c, state.z
        for t in range(frames.shape[1]):
            h, c = self._recur(fx[:, t], self.features_z(z_t), h, c)
            z_t = self._draw(h, z)
        return VRNNState(h, c, z_t)

    @torch.no_grad()
    def generate(
        self, z: torch.Tensor, steps: int, choose: Callable[[torch.Tensor], torch.Tensor] | None = None
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Free-running decoding with prior offset ``z (B, L)``; see ``free_run``."""
        return free_run(self, z, steps, choose)
