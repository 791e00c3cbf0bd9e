"""The Variational Recurrent Auto-Encoder of Fabius & van Amersfoort (2014), section 2.2.

Encoder (h_0 = 0, one step per frame of the window x_1..x_T)::

    h_{t+1} = tanh(W_enc h_t + W_in x_{t+1} + b_enc)
    mu      = W_mu h_end + b_mu
    logvar  = W_sigma h_end + b_sigma        # log sigma^2 (the paper writes log sigma: a factor 2),
                                             # clamped to +-20 so that its exp stays finite

Reparametrisation: ``z = mu + sigma * eps``, ``eps ~ N(0, I)``.

Decoder::

    h_0     = tanh(W_z z + b_z)
    h_{t+1} = tanh(W_dec h_t + W_x x_t + b_dec)
    x_t     = sigm(W_out h_t + b_out)

With ``components`` K > 1 (not in the paper) the output is a mixture of K such frames, one
chosen per frame, so the notes of a frame are chosen together (``mixture.py``).

Frame t is predicted from h_t, and h_{t+1} is fed frame t. With ``z_every_step`` (not
in the paper) the decoder is also fed z at every step, ``W_x [x_t; z]``, so z keeps its
hold on frames far from h_0, which is where a live stream plays (``play/stream.py``).
What the decoder is fed:

- in training (``decode``) the previous *true* frame (teacher forcing): the logits of
  frame t depend on z and on the true frames 0..t-1 only;
- in generation (``initial_state``, ``logits``, ``advance``) its own previous output,
  thresholded or sampled by the caller (see ``generate`` and ``play/stream.py``).

``cell="rnn"`` is the paper's tanh RNN; ``gru`` and ``lstm`` swap the recurrence (for the
LSTM, W_z gives both the initial hidden and cell state). The batch size is not part of
the model: every method takes ``(B, T, P)`` or a single ``(T, P)`` sequence.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Callable

import torch
import torch.nn.functional as F
from torch import nn

from ..config import ModelConfig
from .keys import KEYS, key_columns, window_keys
from .mixture import chosen_logits, frames_nll, marginal_logits
from .whitening import BatchWhitening

State = torch.Tensor | tuple[torch.Tensor, torch.Tensor]  # (1, B, H), or (h, c) for the LSTM

CELLS = {"rnn": nn.RNN, "gru": nn.GRU, "lstm": nn.LSTM}

# log sigma^2 is kept within +-20 (sigma^2 between 2e-9 and 5e8), so its exp, in the KL and in
# the reparametrisation, stays finite in float32: one wild step of the encoder cannot make the loss inf.
LOGVAR_LIMIT = 20.0


def clamp_logvar(logvar: torch.Tensor) -> torch.Tensor:
    return logvar.clamp(-LOGVAR_LIMIT, LOGVAR_LIMIT)


@dataclass
class LossTerms:
    """Per-sequence terms of the negative ELBO, in nats."""

    rec: torch.Tensor  # (B,) -log p(x|z): BCE with logits summed over time and pitch
    kl: torch.Tensor  # (B, L) KL(q(z|x) || N(0, I)) per latent unit
    notes: torch.Tensor | None = None  # (B,) the bag-of-notes loss (VRAE.bag_of_notes), not part of the bound
    z: torch.Tensor | None = None  # (B, L) the codes sampled (the VRAE's), for the pad axes' loss


def gaussian_kl(mu: torch.Tensor, logvar: torch.Tensor) -> torch.Tensor:
    """KL(N(mu, sigma^2) || N(0, 1)) elementwise, in nats."""
    return 0.5 * (mu.pow(2) + logvar.exp() - 1.0 - logvar)


def _batched(x: torch.Tensor) -> tuple[torch.Tensor, bool]:
    return (x.unsqueeze(0), True) if x.dim() == 2 else (x, False)


_CELL_STEPS = {nn.RNN: torch.rnn_tanh_cell, nn.GRU: torch.gru_cell}


def rnn_step(rnn: nn.RNNBase, x: torch.Tensor, state: State) -> State:
    """One step of ``rnn`` (a single-layer ``nn.RNN``, ``nn.GRU`` or ``nn.LSTM``) on ``x (B, I)``.

    The same numbers as ``rnn(x[:, None], state)[1]``, through the cell's own kernel: a
    generating loop feeds one frame at a time, and there nn.RNN's per-call set-up costs
    as much as the step itself (a 500-unit tanh step on the CPU: 20 us instead of 35).
    """
    weights = (rnn.weight_ih_l0, rnn.weight_hh_l0, rnn.bias_ih_l0, rnn.bias_hh_l0)
    if isinstance(rnn, nn.LSTM):
        h, c = torch.lstm_cell(x, (state[0][0], state[1][0]), *weights)
        return h[None], c[None]
    return _CELL_STEPS[type(rnn)](x, state[0], *weights)[None]


def free_run(model: nn.Module, z: torch.Tensor, steps: int, choose: Callable[[torch.Tensor], torch.Tensor] | None):
    """Decode ``steps`` frames from ``z (B, L)`` through initial_state / logits / advance.

    ``choose`` turns probabilities ``(B, P)`` into the frame fed back (default: > 0.5).
    Returns probabilities and chosen frames, each ``(B, steps, P)``.
    """
    if model.n_inputs != model.n_columns:
        raise ValueError("a model of the meter is played through the live stream (play/stream.py), which knows the bar")
    choose = choose or (lambda p: (p > 0.5).to(p.dtype))
    state = model.initial_state(z)
    probs, frames = [], []
    for _ in range(steps):
        p = torch.sigmoid(model.logits(state))
        frame = choose(p)
        probs.append(p)
        frames.append(frame)
        state = model.advance(frame, state, z)
    return torch.stack(probs, 1), torch.stack(frames, 1)


class FrameModel(nn.Module):
    """What every model (the VRAE, the VRNN, the plain RNN) keeps of its frames and its config."""

    def __init__(self, n_columns: int, config: ModelConfig, n_inputs: int | None = None, groups: int = 1):
        super().__init__()
        self.n_columns = n_columns  # of a frame, predicted
        self.groups = groups  # columns a pitch has in a frame: its sounding, and where it is struck for a model of onsets
        self.n_inputs = n_inputs or n_columns  # of what it is fed each step: a frame, and the next step's meter
        self.config = config
        self.is_lstm = config.cell == "lstm"


class VRAE(FrameModel):
    def __init__(self, n_columns: int, config: ModelConfig, n_inputs: int | None = None, groups: int = 1):
        super().__init__(n_columns, config, n_inputs, groups)
        cell = CELLS[config.cell]
        h, latent = config.hidden, config.latent
        self.encoder = cell(self.n_inputs, h, batch_first=True)  # W_in, W_enc, b_enc
        self.to_mu = nn.Linear(h, latent)  # W_mu, b_mu
        self.to_logvar = nn.Linear(h, latent)  # W_sigma, b_sigma
        # BN-VAE (Zhu et al. 2020): in training, mu is standardised over the batch and scaled
        # by a fixed gamma, so the codes cannot all collapse onto one point; at inference the
        # running statistics fold into W_mu, b_mu, leaving the paper's affine map.
        # With mu_whiten the units are decorrelated as well as standardised (whitening.py).
        self.mu_norm = None
        if config.mu_batchnorm > 0:
            self.mu_norm = BatchWhitening(latent) if config.mu_whiten else nn.BatchNorm1d(latent, affine=False)
        # with key_input, the decoder's code is z and the window's key, one-hot (keys.py): what h_0 and each step see
        self.keyed = config.key_input
        code = latent + (KEYS if self.keyed else 0)
        self.to_h0 = nn.Linear(code, 2 * h if self.is_lstm else h)  # W_z, b_z
        self.decoder = cell(self.n_inputs + (code if config.z_every_step else 0), h, batch_first=True)  # W_x, W_dec, b_dec
        # the pitch classes of the frame's columns, to find a window's key (set_pitches); not saved with the weights
        self.register_buffer("pitch_classes", torch.zeros(0, dtype=torch.long), persistent=False)
        # W_out, b_out; with a mixture (mixture.py), K frames' logits and the components' weights. With a
        # mixture_rank r, W_out is the product of an (r, H) and a (K * C, r) matrix: its cost grows with r, not H
        # With z_skip the output reads the code beside h_t (a generative skip). With hold_gate each column of the
        # frame before adds to its own column's logit by a gate h_t sets, one for each component and each of a
        # pitch's ``groups`` of columns, the same for every pitch:
        # whether a sounding note goes on is learnt once for all pitches. The decoder's state carries what the
        # output reads beside h_t.
        k, rank = config.components, config.mixture_rank
        self.skip, self.held = config.z_skip, config.hold_gate
        read = h + (code if self.skip else 0)
        self.to_logits: nn.Module = nn.Linear(read, k * n_columns)
        if k > 1 and rank:
            self.to_logits = nn.Sequential(nn.Linear(read, rank, bias=False), nn.Linear(rank, k * n_columns))
        self.to_weights = nn.Linear(read, config.components) if config.components > 1 else None
        self.to_hold = nn.Linear(read, k * groups) if self.held else None
        # Bag of notes (the bag-of-words loss of Zhao et al. 2017): from z alone, a linear map
        # predicts the share of the window's frames each pitch sounds in, so the code must carry
        # the window's notes whatever the decoder makes of its past. Training only.
        self.to_notes = nn.Linear(latent, n_columns) if config.bag_of_notes > 0 else None

    @property
    def latent_size(self) -> int:
        return self.config.latent

    def set_pitches(self, pitches) -> None:
        """The MIDI pitches of the frame's columns, in order: a decoder told the key finds each window's from them."""
        self.pitch_classes = torch.as_tensor(list(pitches), dtype=torch.long, device=self.to_h0.weight.device) % 12

    def code(self, z: torch.Tensor, keys: torch.Tensor) -> torch.Tensor:
        """What the decoder is given for ``z (B, L)`` in keys ``(B,)``: z itself, or z and the key's columns."""
        return torch.cat([z, key_columns(keys, z.dtype).to(z.device)], -1) if self.keyed else z

    def coded(self, z: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        """``code`` for windows ``x (B, T, C)`` in the keys their notes keep to (``keys.window_keys``);
        ``z`` as it is where it already is a code (or the decoder is not told the key)."""
        if not self.keyed or z.shape[-1] != self.config.latent:
            return z
        if len(self.pitch_classes) == 0:
            raise ValueError("a decoder told the key needs its pitches: set_pitches()")
        return self.code(z, window_keys(x[..., :len(self.pitch_classes)], self.pitch_classes))

    @property
    def z_fed_every_step(self) -> bool:
        """Whether ``advance`` feeds z at every step (a new z reaches the next frame), not only h_0."""
        return self.config.z_every_step

    def reseed(self, seed: int) -> None:
        """Nothing to restart: the decoder draws no noise of its own (the VRNN's does)."""

    # -- encoder ---------------------------------------------------------------

    def encode(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Frames ``(B, T, P)`` (or ``(T, P)``) to ``mu, logvar``, each ``(B, L)`` (or ``(L,)``)."""
        x, single = _batched(x)
        mu, logvar = self.encode_unnormalised(x)
        if mu.shape[0] > 1 or not self.training:  # one window in training has no batch to normalise over
            mu = self.normalise_means(mu)
        return (mu[0], logvar[0]) if single else (mu, logvar)

    def encode_unnormalised(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Frames ``(B, T, P)`` to ``mu, logvar`` before the batch norm (or whitening) of mu."""
        if self.config.reverse_input:
            x = x.flip(1)  # read the window backwards: its start ends up nearest the code
        _, state = self.encoder(x)
        h_end = (state[0] if self.is_lstm else state).squeeze(0)  # (B, H)
        return self.to_mu(h_end), clamp_logvar(self.to_logvar(h_end))

    def encoder_parameters(self):
        """The parameters of q(z|x): the encoder RNN and the maps to mu and log sigma^2."""
        for module in (self.encoder, self.to_mu, self.to_logvar):
            yield from module.parameters()

    def normalise_means(self, mu: torch.Tensor) -> torch.Tensor:
        """``mu (B, L)`` from ``encode_unnormalised`` as ``encode`` gives it (unchanged without BN-VAE)."""
        return mu if self.mu_norm is None else self.config.mu_batchnorm * self.mu_norm(mu)

    @torch.no_grad()
    def settle_code_statistics(self, mu: torch.Tensor) -> None:
        """Set the running statistics of mu's normalisation to those of ``mu (N, L)``, unnormalised
        means of the training windows under the encoder as it is now ("precise batch norm",
        Wu & Johnson 2021). The running averages of training lag the encoder, and the spread of
        the unnormalised means can be tiny: on the chorales with ``--mu-batchnorm 1.5``, a
        variance of 2e-6 about a mean of 4.3, where a lag of a few steps put the codes outside
        training tens of standard deviations from where the decoder had learnt them, and the
        validation bound read -26 nats a step instead of -8.6."""
        if self.mu_norm is None or mu.shape[0] < 2:
            return
        if isinstance(self.mu_norm, BatchWhitening):
            self.mu_norm.settle(mu)
        else:
            self.mu_norm.running_mean.copy_(mu.mean(0))
            self.mu_norm.running_var.copy_(mu.var(0))  # unbiased, as batch norm keeps it

    @staticmethod
    def sample(mu: torch.Tensor, logvar: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
        """z = mu + sigma * eps; eps is drawn on the CPU from ``generator`` so runs repeat on any device."""
        eps = torch.randn(mu.shape, generator=generator, dtype=mu.dtype).to(mu.device)
        return mu + torch.exp(0.5 * logvar) * eps

    # -- decoder ---------------------------------------------------------------

    def initial_state(self, z: torch.Tensor) -> State:
        """``z (B, L)`` (a ``code`` of it, for a decoder told the key) to the decoder's h_0 = tanh(W_z z + b_z),
        shaped ``(1, B, H)`` (an LSTM's pair of them), then what ``_carry`` adds: the code, and silence as the
        frame before the first."""
        h0 = torch.tanh(self.to_h0(z)).unsqueeze(0)
        silence = z.new_zeros(z.shape[0], self.n_columns)  # the frame before the first: nothing sounds
        if self.is_lstm:
            h, c = h0.chunk(2, dim=-1)
            return self._carry((h.contiguous(), c.contiguous()), z, silence)
        return self._carry(h0, z, silence)

    @property
    def _carries(self) -> bool:
        return self.skip or self.held

    def _carry(self, recurrent: State, z: torch.Tensor, frame: torch.Tensor) -> State:
        """The decoder's state: its recurrent state, then what its output reads beside h_t, each ``(1, B, ...)``:
        with ``z_skip`` the code ``z (B, L)``, with ``hold_gate`` the frame fed last ``(B, C)``."""
        if not self._carries:
            return recurrent
        parts = [*recurrent] if self.is_lstm else [recurrent]
        parts += [z.unsqueeze(0)] if self.skip else []
        parts += [frame.unsqueeze(0)] if self.held else []
        return tuple(parts)

    def _recurrent(self, state: State) -> State:
        """The recurrent part of the decoder's state: h, or an LSTM's (h, c)."""
        if not self._carries:
            return state
        return state[:2] if self.is_lstm else state[0]

    def _hidden(self, state: State) -> torch.Tensor:
        """h_t ``(1, B, H)`` of the decoder's state."""
        return state[0] if self.is_lstm or self._carries else state

    def _carried(self, state: State) -> tuple[torch.Tensor | None, torch.Tensor | None]:
        """The code and the frame fed last ``(B, ...)`` that the state carries (None where it carries none)."""
        if not self._carries:
            return None, None
        rest = [part.squeeze(0) for part in state[2 if self.is_lstm else 1:]]
        return (rest.pop(0) if self.skip else None), (rest.pop(0) if self.held else None)

    @property
    def components(self) -> int:
        """Frames the output mixes (``mixture.py``): 1 draws each column on its own."""
        return self.config.components

    def _output(self, h: torch.Tensor, code: torch.Tensor | None,
                before: torch.Tensor | None) -> tuple[torch.Tensor, torch.Tensor | None]:
        """States ``h (..., H)`` to the columns' logits ``(..., K * C)`` and the components' ``(..., K)`` (or None);
        with ``z_skip``, read beside the ``code (B, L)`` of each row (``h`` is ``(B, H)`` or ``(B, T, H)``); with
        ``hold_gate``, each column moved by its gate times its value in ``before (..., C)``, the frame fed last."""
        if self.skip:
            code = code if h.dim() == 2 else code.unsqueeze(1).expand(-1, h.shape[1], -1)
            h = torch.cat([h, code], -1)
        logits = self.to_logits(h)
        if self.held:
            k = self.config.components
            gates = self.to_hold(h).unflatten(-1, (k, self.groups, 1))  # (..., K, G, 1)
            logits = (logits.unflatten(-1, (k, self.groups, -1)) + gates * before.unflatten(-1, (1, self.groups, -1))
                      ).flatten(-3)
        return logits, None if self.to_weights is None else self.to_weights(h)

    def logits(self, state: State, pick: torch.Tensor | None = None) -> torch.Tensor:
        """The logits ``(B, P)`` of the frame predicted from the current state h_t: of the component
        ``pick (B,)`` chooses for a mixture (``mixture.chosen_logits``)."""
        return chosen_logits(*self._output(self._hidden(state).squeeze(0), *self._carried(state)), pick)

    def _before(self, fed: torch.Tensor) -> torch.Tensor | None:
        """For ``hold_gate``: the frame fed before each of frames ``fed (B, T, ...)``, ``(B, T, C)``, silence first."""
        if not self.held:
            return None
        frames = fed[..., :self.n_columns]
        return torch.cat([torch.zeros_like(frames[:, :1]), frames[:, :-1]], 1)

    def _run_decoder(self, frames: torch.Tensor, z: torch.Tensor, state: State) -> tuple[torch.Tensor, State]:
        """Feed frames ``(B, T, P)``: the hidden states ``(B, T, H)`` after each, and the last state."""
        if self.config.z_every_step:
            frames = torch.cat([frames, z.unsqueeze(1).expand(-1, frames.shape[1], -1)], dim=-1)  # (B, T, P+L)
        return self.decoder(frames, self._recurrent(state))

    def advance(self, frames: torch.Tensor, state: State, z: torch.Tensor) -> State:
        """Feed frame x_t ``(B, P)`` (or frames ``(B, T, P)`` in turn) to move h_t on, given ``z (B, L)``
        (with ``z_skip`` the output reads this z from now on)."""
        if frames.dim() == 2:  # one frame, as generation feeds them
            fed = torch.cat([frames, z], -1) if self.config.z_every_step else frames
            return self._carry(rnn_step(self.decoder, fed, self._recurrent(state)), z, frames[:, :self.n_columns])
        _, recurrent = self._run_decoder(frames, z, state)
        return self._carry(recurrent, z, frames[:, -1, :self.n_columns])

    def decode_states(self, z: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        """Teacher-forced decoder states ``(B, T, H)`` h_0 .. h_{T-1} of frames ``x (B, T, P)`` given ``z (B, L)``
        (for a decoder told the key, in the key of ``x`` unless ``z`` is already a ``code``)."""
        z = self.coded(z, x)
        state = self.initial_state(z)
        h0 = self._hidden(state)  # (1, B, H)
        out, _ = self._run_decoder(x[:, :-1], z, state)  # (B, T-1, H): h_1 .. h_{T-1}, fed x_0 .. x_{T-2}
        return torch.cat([h0.transpose(0, 1), out], dim=1)  # (B, T, H): h_0 .. h_{T-1}

    def decode(self, z: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        """Teacher-forced logits ``(B, T, P)`` of each column's own chance in frames ``x (B, T, P)`` given ``z (B, L)``."""
        return marginal_logits(*self._output(self.decode_states(z, x), self.coded(z, x), self._before(x)))

    def reconstruction_nll(self, z: torch.Tensor, x: torch.Tensor, fed: torch.Tensor | None = None) -> torch.Tensor:
        """-log p(x|z) in nats ``(B,)``, teacher-forced on ``fed`` (default ``x``), summed over time and columns."""
        code = self.coded(z, x)  # the key of x, not of what is fed
        fed = x if fed is None else fed
        return frames_nll(*self._output(self.decode_states(code, fed), code, self._before(fed)),
                          x[..., :self.n_columns]).sum(1)

    # -- objective -------------------------------------------------------------

    def loss_terms(
        self, x: torch.Tensor, generator: torch.Generator | None = None, input_dropout: float = 0.0,
        own_frames: float = 0.0,
    ) -> LossTerms:
        """One-sample SGVB estimate of the negative ELBO's terms for frames ``x (B, T, P)``.

        ``input_dropout`` blanks that share of the frames the decoder is fed (not of the
        frames it must predict), so it cannot get by on the past alone and must use z
        (the "word dropout" of Bowman et al. 2016). ``own_frames`` feeds that share of the
        frames as the decoder itself drew them (``_own_frames``). Training only.
        """
        x, _ = _batched(x)
        mu, logvar = self.encode(x)
        z = self.sample(mu, logvar, generator)
        fed = self._own_frames(z, x, own_frames, generator) if own_frames > 0 else x
        if input_dropout > 0:
            keep = torch.rand(x.shape[:2], generator=generator) >= input_dropout  # (B, T)
            fed = fed * keep.to(x.device, x.dtype).unsqueeze(-1)
        rec = self.reconstruction_nll(z, x, fed)
        frames = x[..., :self.n_columns]  # what is predicted: not the meter fed beside each frame
        return LossTerms(rec=rec, kl=gaussian_kl(mu, logvar), notes=self.bag_of_notes(z, frames), z=z)

    @torch.no_grad()
    def _own_frames(self, z: torch.Tensor, x: torch.Tensor, share: float,
                    generator: torch.Generator | None) -> torch.Tensor:
        """Windows ``x (B, T, ...)`` with ``share`` of their frames, at random, replaced by frames the decoder
        draws, as the stream draws them, from its teacher-forced prediction of each given ``z``: one pass more,
        without gradient (parallel scheduled sampling, Duckworth et al. 2019). Fed these, the decoder learns
        to go on from its own slips, as it must live; the meter fed beside each frame stays the window's."""
        code = self.coded(z, x)
        logits, weights = self._output(self.decode_states(code, x), code, self._before(x))
        b, t = x.shape[:2]
        if weights is not None:
            pick = torch.rand(b * t, generator=generator, dtype=torch.float64).to(x.device)
            logits = chosen_logits(logits.flatten(0, 1), weights.flatten(0, 1), pick).unflatten(0, (b, t))
        chance = torch.sigmoid(logits.float())
        drawn = (torch.rand(chance.shape, generator=generator).to(x.device) < chance).to(x.dtype)
        frames = x[..., :self.n_columns]
        if self.groups == 2:  # a note struck sounds, and a note that sounds where none sounded before is struck
            sound, struck = drawn.chunk(2, -1)
            heard = torch.cat([torch.zeros_like(sound[:, :1]), frames[:, :-1, :sound.shape[-1]]], 1)
            drawn = torch.cat([sound, torch.maximum(struck * sound, sound * (1 - heard))], -1)
        own = (torch.rand((b, t), generator=generator) < share).to(x.device).unsqueeze(-1)
        return torch.cat([torch.where(own, drawn, frames), x[..., self.n_columns:]], -1)

    def bag_of_notes(self, z: torch.Tensor, x: torch.Tensor) -> torch.Tensor | None:
        """Cross-entropy (nats, summed over pitches) of each pitch's share of the frames ``x (B, T, P)``
        predicted from ``z (B, L)`` alone; None without the bag-of-notes head."""
        if self.to_notes is None:
            return None
        return F.binary_cross_entropy_with_logits(self.to_notes(z), x.mean(1), reduction="none").sum(1)

    @torch.no_grad()
    def importance_weighted_bound(
        self, x: torch.Tensor, samples: int, generator: torch.Generator | None = None
    ) -> torch.Tensor:
        """log (1/K) sum_k p(x|z_k) p(z_k) / q(z_k|x), ``z_k ~ q(z|x)``, per sequence ``(B,)``, in nats.

        Burda et al. (2016): a bound at least as tight as the ELBO, tighter as K grows.
        """
        x, _ = _batched(x)
        mu, logvar = self.encode(x)
        log_w = []
        for _ in range(samples):
            z = self.sample(mu, logvar, generator)
            log_px = -self.reconstruction_nll(z, x)
            log_pz = (-0.5 * (z.pow(2) + math.log(2 * math.pi))).sum(-1)
            log_qz = (-0.5 * ((z - mu).pow(2) / logvar.exp() + logvar + math.log(2 * math.pi))).sum(-1)
            log_w.append(log_px + log_pz - log_qz)
        return torch.logsumexp(torch.stack(log_w), dim=0) - math.log(samples)

    # -- generation ------------------------------------------------------------

    @torch.no_grad()
    def generate(
        self,
        z: torch.Tensor,
        steps: int,
        choose: Callable[[torch.Tensor], torch.Tensor] | None = None,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Free-running decoding from ``z (B, L)``: each frame is fed its own previous output.

        ``choose`` turns probabilities ``(B, P)`` into the frame fed back (default: > 0.5).
        Returns probabilities and chosen frames, each ``(B, steps, P)``.
        """
        return free_run(self, z, steps, choose)
