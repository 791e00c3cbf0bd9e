"""The quick steering and seam figures ``train`` takes at every epoch's end, to keep the epoch
whose pad steers (``vrae-live info CKPT --steering --seams`` measures the same, longer).

Short takes read lower than the full measurement (the shipped model: 2.07 at 128 frames and
4 takes a corner against 2.58 at 256 and 6), and cost about 0.7 s on the shipped model.
"""

from __future__ import annotations

from typing import Any

from ..checkpoint import Checkpoint
from .seams import measure_seams
from .steering import STEERS, measure_steering

QUICK_FRAMES, QUICK_TAKES, QUICK_HOPS = 128, 4, 60


def quick_pad_check(checkpoint: Checkpoint) -> dict[str, Any]:
    """``steering`` (both diagonals), ``steering_weaker`` (along the weaker axis of the pad), ``seams`` and whether the pad ``steers``."""
    steering = measure_steering(checkpoint, frames=QUICK_FRAMES, takes=QUICK_TAKES)
    seams = measure_seams(checkpoint, hops=QUICK_HOPS)
    return {
        "steering": round(steering.ratio, 3),
        "steering_weaker": round(steering.weaker, 3),
        "seams": round(seams.ratio, 3),
        "steers": steering.weaker >= STEERS,
    }
