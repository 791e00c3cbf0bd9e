"""What every part of the live bench shares: the pitches, the presets, the shipped model, JACK's
sample rate, percentiles and checkpoints of random weights."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from vrae_live.checkpoint import save_checkpoint
from vrae_live.config import load_config
from vrae_live.models import model_for

PITCHES = list(range(36, 85))  # 49 pitches, as the paper kept
PRESETS = ("paper-2d", "paper-20d")
SHIPPED = Path(__file__).resolve().parents[2] / "checkpoints" / "default"  # also timed, unless --quick
SAMPLE_RATE = 48_000


def percentiles(values, qs=(50, 99)) -> list[float]:
    return [float(np.percentile(values, q)) for q in qs]


def make_checkpoint(preset: str, directory: Path, hidden: int | None = None, seed: int = 0, **changes) -> Path:
    """A checkpoint of ``preset`` (with ``changes``) with random weights: what a trained one costs to play,
    not how it sounds."""
    config = load_config(preset, {"hidden": hidden, "seed": seed, **changes})
    torch.manual_seed(seed)
    model = model_for(config, len(PITCHES)).eval()
    return save_checkpoint(directory, model, config, PITCHES)
