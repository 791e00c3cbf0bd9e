"""Pad axes a musician can name: each of the pad's two latent units taught to rise with an
attribute of the window it encodes (``data/attributes.py``), after AR-VAE (Pati & Lerch 2021,
"Attribute-based regularization of latent spaces for variational auto-encoders").

For unit ``k`` and attribute ``a_k``, over every pair ``(i, j)`` of a batch's windows whose
attribute is measured, the loss is the mean of ``|tanh(delta (z_ik - z_jk)) - sign(a_ik - a_jk)|``
on the sampled codes: a window busier than another must sit further along x. It adds
``axes_weight`` times the sum over the two units, times the window's steps, to the training loss:
weighted per step, as the bound is counted (the bound of a window is hundreds of nats, and
AR-VAE's weight of 1 on the whole window left the codes nearly unordered: Spearman's rho 0.28 and
0.09 between the units and their attributes on 30 chorales). The bound reported is unchanged
(the loss is no part of it). The other latent units, if any, carry the rest.
"""

from __future__ import annotations

from typing import Sequence

import torch

from ..config import Config
from ..data.attributes import SOFT, soft_attributes, window_attributes
from ..errors import ConfigError
from .distributed import World

DECODER_WINDOWS = 16  # windows of a batch the decoder's term decodes again, twice per unit
NUDGE = 0.5  # how far each unit is moved either way (the codes spread about 1.5 a unit)
RISE = 0.5  # the least rise of an axis's attribute over 2 NUDGE, in the batch's spread of it


def attribute_loss(z: torch.Tensor, a: torch.Tensor, sharpness: float) -> torch.Tensor:
    """AR-VAE's loss for codes ``z (B, A)`` and attributes ``a (B, A)`` (NaN: not measured), summed over the A units."""
    total = z.new_zeros(())
    for k in range(a.shape[1]):
        known = torch.isfinite(a[:, k])
        zk, ak = z[known, k].float(), a[known, k]
        if len(zk) < 2:
            continue
        together = torch.tanh(sharpness * (zk[:, None] - zk[None, :]))
        apart = torch.sign(ak[:, None] - ak[None, :])
        total = total + (together - apart).abs().mean()
    return total


class AxesLoss:
    """The pad axes' loss of a batch of training windows (as the model is fed them) and its codes."""

    def __init__(self, config: Config, pitches: Sequence[int], distributed: bool = False):
        m, d, t = config.model, config.data, config.train
        if m.model != "vrae":
            raise ConfigError(f"--pad-axes is for the VRAE, whose one code is the pad; a {m.model} has "
                              f"{'a code a step' if m.model == 'vrnn' else 'no code'} (use --pad-axes songs)")
        if m.latent < 2:
            raise ConfigError(f"--pad-axes needs 2 latent units or more (x and y); this model has {m.latent}")
        if "syncopation" in m.pad_axes and not d.fed_meter:
            raise ConfigError("--pad-axes syncopation needs a model of the meter (--meter): its frames say where the beat is")
        self.names, self.pitches, self.onsets = m.pad_axes, list(pitches), d.onsets
        self.steps_per_unit = d.steps_per_beat or d.fs
        self.steps_per_beat = d.steps_per_beat if d.fed_meter else None
        self.weight, self.sharpness = t.axes_weight, t.axes_sharpness
        self.decoder_weight = t.axes_decoder
        if self.decoder_weight and distributed:
            raise ConfigError("--axes-decoder runs in one process for now, not under torchrun")
        if self.decoder_weight and set(self.names) - set(SOFT):
            raise ConfigError(f"--axes-decoder measures {', '.join(SOFT)} in the decoder's probabilities, not "
                              f"{', '.join(sorted(set(self.names) - set(SOFT)))}")

    def __call__(self, z: torch.Tensor, windows: torch.Tensor, world: World, model=None) -> torch.Tensor:
        """The loss over every pair of the global batch: under torchrun each process holds a share of
        ``z`` and ``windows`` and gets the whole batch's loss (DDP's average of the gradients is then its gradient).
        With ``model`` and a decoder weight, the decoder's term is added (:meth:`decoder_term`)."""
        a = window_attributes(windows, self.pitches, self.names, self.onsets, self.steps_per_unit, self.steps_per_beat)
        units = world.gather_rows(z[:, :len(self.names)])
        loss = self.weight * windows.shape[1] * attribute_loss(units, world.gather_rows(a), self.sharpness)
        if model is not None and self.decoder_weight:
            loss = loss + self.decoder_weight * windows.shape[1] * self.decoder_term(model, z, windows, a)
        return loss

    def decoder_term(self, model, z: torch.Tensor, windows: torch.Tensor, a: torch.Tensor) -> torch.Tensor:
        """The decoder must follow its axes (after GLSR-VAE, Hadjeres et al. 2017): for ``DECODER_WINDOWS``
        windows, unit k moved by +-``NUDGE`` (codes held fixed), the attributes of the teacher-forced
        probabilities must rise by ``RISE`` of the batch's spread of attribute k and the other not move."""
        m = min(DECODER_WINDOWS, len(windows))
        x, codes = windows[:m], z[:m].detach()
        spread = torch.nan_to_num(a.float().std(0), nan=1.0).clamp(min=1e-3)  # (A,)
        total = z.new_zeros(())
        for k in range(len(self.names)):
            up, down = codes.clone(), codes.clone()
            up[:, k] += NUDGE
            down[:, k] -= NUDGE
            probs = torch.sigmoid(model.decode(torch.cat([up, down]), torch.cat([x, x])).float())
            moved = soft_attributes(probs, self.pitches, self.names, self.onsets, self.steps_per_unit)
            rise = (moved[:m] - moved[m:]) / spread  # (m, A)
            own = torch.relu(RISE - rise[:, k])
            others = torch.cat([rise[:, :k], rise[:, k + 1:]], 1).abs().sum(1)
            total = total + torch.nan_to_num(own + others).mean()
        return total
