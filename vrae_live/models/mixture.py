"""A frame's notes chosen together: its columns drawn from one of K products of Bernoullis.

With one component (the paper's output) the decoder state gives each column of a frame its own
chance, and a frame is drawn column by column, each on its own. Where the model is unsure which
chord comes next, two pitches that never sound together each get a fair chance, and the draws
strike both, or a pitch no chord of the moment holds; the decoder, fed that frame, lets the
stray notes go a step later. Measured on a model of 8 of Bach's chorales (docs/models.md, "Notes
chosen together"): 29 % of the notes it played lasted one sixteenth (the chorales: 2 %); those
had been struck at a median chance of 0.13 (the longer notes at 0.25), and a step later the
decoder gave them a median chance of 0.19 of sounding on.

With K components the state gives K frames of chances and the chance of each (a mixture of
products of Bernoullis): a frame is drawn by choosing one component, then each column from it,
so the pitches of one frame come from one chord the model has in mind. Its likelihood is exact,
``p(x_t) = sum_k pi_k prod_c Bernoulli(x_tc; p_kc)``, so the bound stays a bound in nats per step.
The cost live is one more draw a frame and a wider output layer; the gate, the density and the
key's lean work on the chosen component's chances as on the single one's.

Pure torch functions of the output layer's two parts: the columns' logits ``(..., K * C)``,
component by component, and the components' ``(..., K)`` (None for one component).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F


def frames_nll(logits: torch.Tensor, weights: torch.Tensor | None, frames: torch.Tensor) -> torch.Tensor:
    """-log p(frames) in nats ``(...)``, summed over the columns, of binary ``frames (..., C)`` under the
    columns' ``logits (..., K * C)`` and the components' ``weights (..., K)`` (None: one component)."""
    if weights is None:
        return F.binary_cross_entropy_with_logits(logits, frames, reduction="none").sum(-1)
    by_component = logits.unflatten(-1, (weights.shape[-1], frames.shape[-1]))  # (..., K, C)
    # log Bernoulli(x; sigmoid(l)) = x * l - softplus(l), summed over the columns: a product with the
    # frame, not K copies of it
    fits = (by_component @ frames.unsqueeze(-1)).squeeze(-1) - F.softplus(by_component).sum(-1)  # (..., K)
    return -torch.logsumexp(F.log_softmax(weights, -1) + fits, -1)


def marginal_logits(logits: torch.Tensor, weights: torch.Tensor | None) -> torch.Tensor:
    """The logits ``(..., C)`` of each column's own chance: the components averaged by their weights."""
    if weights is None:
        return logits
    k = weights.shape[-1]
    probs = (F.softmax(weights, -1).unsqueeze(-1) * torch.sigmoid(logits.unflatten(-1, (k, -1)))).sum(-2)
    return torch.logit(probs, eps=1e-6)


def chosen_logits(logits: torch.Tensor, weights: torch.Tensor | None, pick: torch.Tensor | None = None) -> torch.Tensor:
    """The logits ``(B, C)`` of one component a row: the one where ``pick (B,)``, uniform in [0, 1), falls
    among the components' cumulative weights, or the likeliest where ``pick`` is None."""
    if weights is None:
        return logits
    if pick is None:
        chosen = weights.argmax(-1)
    else:
        edges = F.softmax(weights.double(), -1).cumsum(-1)  # (B, K)
        chosen = torch.searchsorted(edges, pick.to(edges).unsqueeze(-1).contiguous()).squeeze(-1)
        chosen = chosen.clamp_max(weights.shape[-1] - 1)  # a pick at the top of [0, 1) past rounding
    return logits.unflatten(-1, (weights.shape[-1], -1))[torch.arange(len(chosen), device=logits.device), chosen]
