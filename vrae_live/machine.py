"""The machine a figure was measured on, in one line (the benchmark scripts print it first)."""

from __future__ import annotations

import platform
from pathlib import Path

import torch


def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def machine_line(device: torch.device) -> str:
    """``machine: <CPU>[, GPU <name>]; python X, torch Y, N threads`` for work on ``device``."""
    gpu = f", GPU {torch.cuda.get_device_name(device)}" if device.type == "cuda" else ""
    return (f"machine: {cpu_model()}{gpu}; python {platform.python_version()}, torch {torch.__version__}, "
            f"{torch.get_num_threads()} threads")
