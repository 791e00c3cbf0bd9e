"""Batch whitening of the VRAE's code means: BN-VAE for codes that must not fall on one line.

BN-VAE (Zhu et al. 2020) standardises each unit of mu over the batch, so the codes cannot all
collapse onto one point; but two units may still carry the same variable, and then every song
lies on one diagonal of the XY pad and a finger moving across it changes nothing (measured in
``docs/models.md``). Whitening standardises and decorrelates them together: the batch's codes
have covariance ``I`` (the model scales them as BN-VAE does), so they spread over every
direction of the latent plane and the decoder is given two different variables to use.

Cholesky whitening (``mu_c @ inverse(L).T`` with ``L L^T`` the batch covariance) rather than
ZCA: its gradient stays finite when the two variances are nearly equal, where ZCA's
eigendecomposition divides by their difference. Like batch norm, it keeps running estimates
of the mean and covariance, and uses them outside training: an affine map of mu.
"""

from __future__ import annotations

import torch
from torch import nn


class BatchWhitening(nn.Module):
    def __init__(self, features: int, momentum: float = 0.1, eps: float = 1e-4) -> None:
        super().__init__()
        self.momentum, self.eps = momentum, eps
        self.register_buffer("running_mean", torch.zeros(features))
        self.register_buffer("running_cov", torch.eye(features))

    def forward(self, mu: torch.Tensor) -> torch.Tensor:
        """``mu (B, L)`` whitened over the batch in training, by the running estimates otherwise."""
        with torch.autocast(mu.device.type, enabled=False):  # the covariance and its Cholesky factor in fp32
            return self._whiten(mu.float())

    def _whiten(self, mu: torch.Tensor) -> torch.Tensor:
        eye = torch.eye(mu.shape[1], dtype=mu.dtype, device=mu.device)
        if self.training:
            mean, centred, cov = self.batch_moments(mu)
            with torch.no_grad():
                self.running_mean.lerp_(mean.detach(), self.momentum)
                self.running_cov.lerp_(cov.detach(), self.momentum)
        else:
            mean, cov = self.running_mean, self.running_cov
            centred = mu - mean
        # eps relative to the mean variance: the codes of a young encoder vary by little, and a
        # direction under eps of it is left unamplified (at most 1 / sqrt(eps) times).
        lower = torch.linalg.cholesky(cov + self.eps * (cov.diagonal().mean().detach() + 1e-12) * eye)
        return torch.linalg.solve_triangular(lower, centred.T, upper=False).T  # centred @ inverse(L).T

    @torch.no_grad()
    def settle(self, mu: torch.Tensor) -> None:
        """The running estimates set to the mean and covariance of ``mu (N, L)`` (precise statistics).
        Always this process's own moments: under torchrun every process settles on the same windows,
        and the global moments of ``distributed.GlobalBatchWhitening`` would count them once a process."""
        mean, _, cov = moments(mu.float())
        self.running_mean.copy_(mean)
        self.running_cov.copy_(cov)

    def batch_moments(self, mu: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """The batch's mean ``(L,)``, ``mu`` centred on it ``(B, L)``, and its covariance ``(L, L)``
        (training/distributed.py takes them over every process's batch)."""
        return moments(mu)


def moments(mu: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """The mean ``(L,)`` of the rows of ``mu (B, L)``, ``mu`` centred on it, and their covariance ``(L, L)``."""
    mean = mu.mean(0)
    centred = mu - mean
    return mean, centred, centred.T @ centred / max(len(mu) - 1, 1)
