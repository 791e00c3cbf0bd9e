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
from ..data.attributes import window_attributes
from ..errors import ConfigError
from .distributed import World


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

    def __init__(self, config: Config, pitches: Sequence[int]):
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

    def __call__(self, z: torch.Tensor, windows: torch.Tensor, world: World) -> torch.Tensor:
        """The loss over every pair of the global batch: under torchrun each process holds a share of
        ``z`` and ``windows`` and gets the whole batch's loss (DDP's average of the gradients is then its gradient)."""
        a = window_attributes(windows, self.pitches, self.names, self.onsets, self.steps_per_unit, self.steps_per_beat)
        units = world.gather_rows(z[:, :len(self.names)])
        return self.weight * windows.shape[1] * attribute_loss(units, world.gather_rows(a), self.sharpness)
