"""The training objective: the negative ELBO with KL annealing, free bits and, optionally, a bag of
notes and the pad axes' loss."""

from __future__ import annotations

import torch

from .distributed import World


def training_loss(terms, n: int, kl_weight: float, free_bits: float, bag_of_notes: float,
                  world: World, axes: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """The training loss of this process's share of a global batch of ``n`` windows, and the
    global batch's loss terms (to check that they are finite, alike on every process).

    The share's loss is weighted by its size, so DDP's average of the processes' gradients
    is the gradient of the global batch's mean loss; free bits judge each unit's KL over the
    global batch, not over a share (one all-reduce of L + 1 numbers a step, under torchrun).
    ``axes``: the pad axes' loss of the global batch (``axes.AxesLoss``), the same in every process.
    """
    rec, kl = terms.rec.float(), terms.kl.float()  # (b,), (b, L); bf16 under autocast
    kl_per_unit = kl.mean(0)  # (L,)
    if world.distributed:
        whole = world.all_sum(torch.cat([kl.sum(0), rec.sum().view(1)]).detach()) / n  # (L + 1,)
        kl_whole, rec_whole = whole[:-1], whole[-1]
    else:
        kl_whole, rec_whole = kl_per_unit.detach(), rec.mean().detach()
    kl_objective = torch.where(kl_whole >= free_bits, kl_per_unit, free_bits).sum()
    loss = rec.mean() + kl_weight * kl_objective
    if terms.notes is not None:
        loss = loss + bag_of_notes * terms.notes.float().mean()
    if len(rec) * world.size != n:
        loss = loss * (len(rec) * world.size / n)
    if axes is not None:
        loss = loss + axes
    return loss, rec_whole + kl_whole.sum()
