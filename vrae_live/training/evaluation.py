"""Figures of a trained model on windows: the bound, the posterior means, the active units."""

from __future__ import annotations

import math

import torch

EVAL_BATCH = 256  # fixed, so evaluation draws the same noise whatever the training batch size
ACTIVE_UNIT_THRESHOLD = 0.01  # Burda et al. (2016): a unit is active if Cov_x(E_q[z_u]) > 0.01


@torch.no_grad()
def evaluate(model, x: torch.Tensor, seed: int = 0, samples: int = 0) -> dict[str, float]:
    """Mean ELBO terms over windows ``x (N, W, P)`` (float, or 0/1 uint8), with fixed noise so the figure repeats.

    Returns nats per sequence (``rec``, ``kl``) and the lower bound per datapoint per
    time step (``bound``); with ``samples`` K > 0 also the importance-weighted bound per step.
    """
    was_training = model.training
    model.eval()
    generator = torch.Generator().manual_seed(seed)
    rec = kl = iw = 0.0
    for batch in x.split(EVAL_BATCH):
        batch = batch.to(torch.float32)  # the same tensor when it is float32 already
        terms = model.loss_terms(batch, generator)
        rec += terms.rec.sum().item()
        kl += terms.kl.sum().item()
        if samples:
            iw += model.importance_weighted_bound(batch, samples, generator).sum().item()
    model.train(was_training)
    n, steps = x.shape[0], x.shape[1]
    result = {"rec": rec / n, "kl": kl / n, "bound": -(rec + kl) / n / steps, "windows": n, "steps": steps}
    if samples:
        result["iw_bound"] = iw / n / steps
        result["iw_samples"] = samples
    return result


@torch.no_grad()
def encode_means(model, x: torch.Tensor) -> torch.Tensor:
    """The posterior means ``(N, L)`` of windows ``x (N, W, P)`` (float, or 0/1 uint8)."""
    was_training = model.training
    model.eval()
    means = torch.cat([model.encode(batch.to(torch.float32))[0] for batch in x.split(EVAL_BATCH)]).cpu()
    model.train(was_training)
    return means


@torch.no_grad()
def settled_means(model, x: torch.Tensor) -> torch.Tensor:
    """Like ``encode_means``, after setting the statistics that normalise mu outside training to
    those of ``x``, the training windows (``VRAE.settle_code_statistics``); one pass of the encoder."""
    if not hasattr(model, "settle_code_statistics"):
        return encode_means(model, x)
    was_training = model.training
    model.eval()
    mu = torch.cat([model.encode_unnormalised(batch.to(torch.float32))[0] for batch in x.split(EVAL_BATCH)])
    model.settle_code_statistics(mu)
    means = model.normalise_means(mu).cpu()
    model.train(was_training)
    return means


def active_units(means: torch.Tensor) -> int:
    """Latent units whose posterior mean varies across the data (Burda et al. 2016)."""
    if means.shape[0] < 2:
        return 0
    return int((means.var(dim=0) > ACTIVE_UNIT_THRESHOLD).sum())


@torch.no_grad()
def copy_bound(fit_on: torch.Tensor, x: torch.Tensor, pitches: int | None = None) -> float:
    """The bound, in nats per step, of copying the last frame, on windows ``x (N, W, C)``: the figure
    a model must beat to have learnt more than that notes go on.

    Copying as a model has two numbers, fitted on the windows ``fit_on``: the chance that a sounding
    note goes on, and that a silent one starts (30 chorales: 0.78 and 0.02); a window's first frame,
    with nothing before it, sounds each pitch at the chance of a first frame's. With onsets
    (``C = 2 * pitches``), the onset columns get two numbers of their own: the chance of a note
    starting on a pitch that sounded the frame before (struck again) and on one that did not.
    """
    pitches = x.shape[2] if pitches is None else pitches
    eps = 1e-6
    log_lik = 0.0
    for part in range(x.shape[2] // pitches):
        def counts(w: torch.Tensor) -> torch.Tensor:
            w = w.to(torch.bool)
            before, after = w[:, :-1, :pitches], w[:, 1:, part * pitches:(part + 1) * pitches]
            first = w[:, 0, part * pitches:(part + 1) * pitches]
            return torch.tensor([
                (before & after).sum(), before.sum(), (~before & after).sum(), (~before).sum(),
                first.sum(), first.numel(),
            ], dtype=torch.float64)

        fitted = counts(fit_on)
        p_hold, p_start, p_first = (
            (fitted[i] / fitted[i + 1].clamp(min=1)).clamp(eps, 1 - eps).item() for i in (0, 2, 4)
        )
        c = counts(x)
        for on, of, p in ((c[0], c[1], p_hold), (c[2], c[3], p_start), (c[4], c[5], p_first)):
            log_lik += (on * math.log(p) + (of - on) * math.log1p(-p)).item()
    return log_lik / (x.shape[0] * x.shape[1])
