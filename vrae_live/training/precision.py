"""The training step's arithmetic: fp32, or bf16 under ``torch.autocast`` (``--precision``).

bf16 keeps fp32's exponent range, so no loss scaling is needed (fp16 would need a GradScaler
and is not offered). Under autocast the matrix products of the forward pass (the RNNs' input
and output maps, the linear layers) run in bf16; the loss is summed in fp32, the weights, the
gradients and Adam's state stay fp32, and evaluation always runs in fp32, so the bound a run
reports is comparable whatever its precision.

bf16 is fast only where the hardware has it: CUDA GPUs from Ampere on (and Hopper), and CPUs
with AVX512-BF16 or AMX. Elsewhere torch emulates it, slower than fp32; ``check_precision``
says so rather than run it (docs/scale.md has the figures).
"""

from __future__ import annotations

import contextlib
from typing import ContextManager

import torch

from ..errors import ConfigError

PRECISIONS = ("fp32", "bf16")


def bf16_is_native(device: torch.device) -> bool:
    """Whether ``device`` computes in bf16 in hardware (not emulated)."""
    if device.type == "cuda":
        return torch.cuda.is_bf16_supported(including_emulation=False)
    if device.type == "cpu":
        try:
            return bool(torch.ops.mkldnn._is_mkldnn_bf16_supported())
        except (AttributeError, RuntimeError):  # a torch built without oneDNN
            return False
    return False


def check_precision(precision: str, device: torch.device) -> None:
    """A ConfigError for a precision ``device`` cannot run fast."""
    if precision not in PRECISIONS:
        raise ConfigError(f"--precision {precision}: unknown; known: {', '.join(PRECISIONS)}")
    if precision == "bf16" and not bf16_is_native(device):
        where = (f"GPU {torch.cuda.get_device_name(device)}" if device.type == "cuda"
                 else "this CPU (it lacks AVX512-BF16 and AMX)" if device.type == "cpu" else f"device {device}")
        raise ConfigError(f"--precision bf16: {where} has no bf16 arithmetic, so torch would emulate it, slower "
                          "than fp32; use --precision fp32 (bf16 needs an Ampere or later GPU, or a CPU with "
                          "AVX512-BF16 or AMX)")


def autocast(precision: str, device: torch.device) -> ContextManager:
    """The context the training step's forward pass runs in."""
    if precision == "fp32":
        return contextlib.nullcontext()
    return torch.autocast(device.type, dtype=torch.bfloat16)
