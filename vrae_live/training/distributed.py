"""Training on several processes at once: ``torchrun ... -m vrae_live train``, with DDP.

torchrun starts one process per device and tells each its place in the environment
(``RANK``, ``LOCAL_RANK``, ``WORLD_SIZE``, the rendezvous address); ``join_world`` reads it
and joins the process group: NCCL between GPUs (each process takes ``cuda:LOCAL_RANK``),
gloo between CPU processes. Without torchrun it is a world of one, and nothing here changes
what training does.

What the processes share, and how:

- **The batch.** ``batch_size`` is the *global* batch: every process draws the same shuffled
  order of the epoch's windows, cuts it into the same batches of ``batch_size``, and trains
  on its own contiguous share of each (``World.shard``: shares differ by at most one window).
  So an epoch has as many optimizer steps with as many windows in each, whatever the number
  of processes, and the schedules (learning rate, KL warm-up) are unchanged. Each share's loss
  is weighted by its size, so DDP's average of the gradients is the gradient of the global
  batch's mean loss, as in one process (``objective.training_loss``).
- **The gradients.** DDP averages them during the backward pass (``World.ddp``).
- **Batch statistics.** The VRAE normalises (or whitens) mu over the batch, and keeps running
  statistics of it. The statistics are taken over the global batch (``GlobalBatchNorm1d``,
  ``GlobalBatchWhitening``: a differentiable all-reduce of the sums, as SyncBatchNorm does,
  which torch offers on GPUs only and not for whitening): a share of a few windows would give
  noisy statistics, and the model trained on 8 GPUs would not be the one trained on one.
  Every process then updates identical running statistics; they are broadcast from rank 0
  anyway at every epoch's end, so the checkpoint is rank 0's whatever the reduction order.
- **Noise.** Each process draws the reparametrisation noise for its share from a generator of
  its own (rank 0's is seeded as a single process's is); a resumable state keeps all of them.
- **Decisions.** Whether a step's loss and gradient were finite, whether a stop was asked for:
  every process must decide the same, so each step's one small all-reduce carries both.

Rank 0 alone measures the epoch (validation, the pad check), writes metrics, checkpoints and
the resumable state, and prints; the others wait at a barrier.
"""

from __future__ import annotations

import inspect
import os
import warnings
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any, Iterator

import numpy as np
import torch
import torch.distributed as dist
from torch import nn

from ..device import resolve_device
from ..errors import ConfigError
from ..models.whitening import BatchWhitening


def launched_by_torchrun() -> bool:
    """Whether torchrun (or another launcher that sets its variables) started this process."""
    return all(name in os.environ for name in ("RANK", "LOCAL_RANK", "WORLD_SIZE"))


@dataclass(frozen=True)
class World:
    """This process's place among the training processes: a world of one without torchrun."""

    rank: int = 0
    local_rank: int = 0
    size: int = 1
    device: torch.device = field(default_factory=lambda: torch.device("cpu"))

    @property
    def is_main(self) -> bool:
        """Rank 0: the one process that measures, writes and prints."""
        return self.rank == 0

    @property
    def distributed(self) -> bool:
        return self.size > 1

    # -- the batch -------------------------------------------------------------

    def min_batch(self, model: nn.Module) -> int:
        """The fewest windows a global batch may have: one per process, two where the model
        takes statistics over the batch (a share of one window would skip them in one process
        and wait for the others in a collective)."""
        if not self.distributed:
            return 1
        return self.size * (2 if has_batch_statistics(model) else 1)

    def shard(self, batch: torch.Tensor) -> torch.Tensor:
        """This process's contiguous share of a global batch of window indices ``(B,)``."""
        return batch.tensor_split(self.size)[self.rank] if self.distributed else batch

    # -- collectives (the identity in a world of one) ----------------------------

    def all_sum(self, x: torch.Tensor) -> torch.Tensor:
        """``x`` summed over the processes (in place, and returned)."""
        if self.distributed:
            dist.all_reduce(x)
        return x

    def gather_rows(self, x: torch.Tensor) -> torch.Tensor:
        """``x (b, ...)`` of every process, concatenated in rank order: the global batch's rows, whose
        gradients flow back to the process that holds each (shares may differ in size by one)."""
        if not self.distributed:
            return x
        from torch.distributed.nn.functional import all_gather  # with autograd; its successor is private

        sizes = [torch.zeros(1, dtype=torch.long, device=x.device) for _ in range(self.size)]
        dist.all_gather(sizes, torch.tensor([len(x)], device=x.device))
        most = max(int(s) for s in sizes)
        padded = torch.cat([x, x.new_zeros((most - len(x), *x.shape[1:]))])
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", FutureWarning)  # deprecated for a private successor
            parts = all_gather(padded)
        return torch.cat([part[:int(s)] for part, s in zip(parts, sizes)])

    def barrier(self) -> None:
        if self.distributed:
            dist.barrier()

    def gather(self, value: Any) -> list[Any]:
        """Every process's ``value``, in rank order (a list of one without torchrun)."""
        if not self.distributed:
            return [value]
        values: list[Any] = [None] * self.size
        dist.all_gather_object(values, value)
        return values

    def broadcast_buffers(self, model: nn.Module) -> None:
        """Rank 0's buffers (running statistics) on every process."""
        if self.distributed:
            for buffer in model.buffers():
                dist.broadcast(buffer, src=0)

    @contextmanager
    def main_first(self) -> Iterator[None]:
        """Rank 0 runs the block first (e.g. parsing songs into the cache), the others after it."""
        if not self.is_main:
            self.barrier()
        yield
        if self.is_main:
            self.barrier()

    # -- the model -------------------------------------------------------------

    def noise_generator(self, seed: int) -> torch.Generator:
        """The reparametrisation noise of this process: rank 0 draws a single process's stream."""
        if self.rank == 0:
            return torch.Generator().manual_seed(seed)
        return torch.Generator().manual_seed(int(np.random.SeedSequence([seed, self.rank]).generate_state(1)[0]))

    def ddp(self, model: nn.Module) -> nn.Module | None:
        """``model.loss_terms`` wrapped in DDP (which averages the gradients), with batch statistics
        taken over the global batch; None in a world of one (the training step calls the model)."""
        if not self.distributed:
            return None
        take_global_batch_statistics(model)
        DDP = nn.parallel.DistributedDataParallel
        device_ids = [self.device] if self.device.type == "cuda" else None
        # Buffers need no broadcast at every step: the global statistics make them the same everywhere.
        no_sync = ({"forward_sync_buffers": False} if "forward_sync_buffers" in inspect.signature(DDP).parameters
                   else {"broadcast_buffers": False})  # the older name, deprecated in torch 2.13
        return DDP(_LossTermsForward(model), device_ids=device_ids, **no_sync)


class _LossTermsForward(nn.Module):
    """DDP syncs gradients of what goes through ``forward``: the model's ``loss_terms`` made one."""

    def __init__(self, model: nn.Module):
        super().__init__()
        self.model = model

    def forward(self, x: torch.Tensor, generator: torch.Generator, input_dropout: float = 0.0, **options: float):
        return self.model.loss_terms(x, generator, input_dropout, **options)


# -- joining and leaving ----------------------------------------------------------


def join_world(device_name: str) -> World:
    """This process's world: torchrun's, with the process group joined, or a world of one on
    ``resolve_device(device_name)``. Under torchrun each process takes ``cuda:LOCAL_RANK`` when
    the device is ``auto`` or ``cuda`` and CUDA is present (NCCL), the CPU otherwise (gloo)."""
    if not launched_by_torchrun():
        return World(device=resolve_device(device_name))
    rank, local_rank, size = (int(os.environ[name]) for name in ("RANK", "LOCAL_RANK", "WORLD_SIZE"))
    if device_name.startswith("cuda:"):
        raise ConfigError(f"--device {device_name}: under torchrun each process takes the GPU of its LOCAL_RANK; "
                          "use --device cuda (or auto), and CUDA_VISIBLE_DEVICES to choose the GPUs")
    device = resolve_device(device_name)
    if device.type == "cuda":
        if local_rank >= torch.cuda.device_count():
            raise ConfigError(f"torchrun started local rank {local_rank} but torch sees {torch.cuda.device_count()} "
                              "GPU(s) here: --nproc-per-node must not exceed the GPUs")
        device = torch.device("cuda", local_rank)
        torch.cuda.set_device(device)
    world = World(rank=rank, local_rank=local_rank, size=size, device=device)
    if world.distributed and not dist.is_initialized():
        backend = "nccl" if device.type == "cuda" else "gloo"
        dist.init_process_group(backend, device_id=device if device.type == "cuda" else None)
    return world


def leave_world() -> None:
    if dist.is_available() and dist.is_initialized():
        dist.destroy_process_group()


# -- batch statistics over every process's share ------------------------------------


def has_batch_statistics(model: nn.Module) -> bool:
    return any(isinstance(m, (nn.modules.batchnorm._BatchNorm, BatchWhitening)) for m in model.modules())


def take_global_batch_statistics(model: nn.Module) -> None:
    """Swap each batch-statistics layer of ``model`` for one taking them over the global batch; the
    weights' names (and so the checkpoint) stay the same."""
    for parent in list(model.modules()):
        for name, child in list(parent.named_children()):
            if type(child) is nn.BatchNorm1d:
                swapped: nn.Module = GlobalBatchNorm1d(child.num_features, child.eps, child.momentum, child.affine,
                                                       child.track_running_stats)
            elif type(child) is BatchWhitening:
                swapped = GlobalBatchWhitening(child.running_mean.numel(), child.momentum, child.eps)
            elif isinstance(child, nn.modules.batchnorm._BatchNorm):
                raise NotImplementedError(f"{type(child).__name__} over several processes")
            else:
                continue
            swapped.load_state_dict(child.state_dict())
            setattr(parent, name, swapped.to(next(child.buffers()).device))


class _AllSum(torch.autograd.Function):
    """A sum over the processes whose gradient is the sum of theirs: each process's input reaches
    every process's output. (torch.distributed.nn.functional.all_reduce, deprecated, did this.)"""

    @staticmethod
    def forward(ctx, x: torch.Tensor) -> torch.Tensor:
        x = x.clone()
        dist.all_reduce(x)
        return x

    @staticmethod
    def backward(ctx, grad: torch.Tensor) -> torch.Tensor:
        grad = grad.clone()
        dist.all_reduce(grad)
        return grad


def _global_sum(x: torch.Tensor) -> torch.Tensor:
    """``x`` summed over the processes, differentiably."""
    return _AllSum.apply(x)


def _global_moments(x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Of rows ``x (b, C)``, this process's share: the global batch's count, its mean ``(C,)``,
    and ``x`` centred on it. Two reductions (mean first, then the centred products) keep the
    variance as exact as one process's."""
    sums = _global_sum(torch.cat([x.sum(0), x.new_full((1,), len(x))]))
    n = sums[-1].detach()
    mean = sums[:-1] / n
    return n, mean, x - mean


class GlobalBatchNorm1d(nn.BatchNorm1d):
    """``nn.BatchNorm1d`` over ``(B, C)`` with the statistics of every process's batch in training."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not self.training or x.dim() != 2:
            return super().forward(x)
        x = x.float()
        n, mean, centred = _global_moments(x)
        var = _global_sum(centred.pow(2).sum(0)) / n  # biased, to normalise, as batch norm does
        if self.track_running_stats:
            with torch.no_grad():
                self.running_mean.lerp_(mean.detach(), self.momentum)
                self.running_var.lerp_(var.detach() * n / (n - 1).clamp(min=1), self.momentum)
                self.num_batches_tracked += 1
        y = centred / torch.sqrt(var + self.eps)
        return y * self.weight + self.bias if self.affine else y


class GlobalBatchWhitening(BatchWhitening):
    """``BatchWhitening`` with the mean and covariance of every process's batch in training."""

    def batch_moments(self, mu: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        n, mean, centred = _global_moments(mu)
        cov = _global_sum(centred.T @ centred) / (n - 1).clamp(min=1)
        return mean, centred, cov
