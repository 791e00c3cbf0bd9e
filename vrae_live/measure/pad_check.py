"""The quick steering and seam figures ``train`` takes at every epoch's end, to keep the epoch
whose pad steers (``vrae-live info CKPT --steering --seams`` measures the same, longer).

Short takes read lower than the full measurement (the shipped model: 2.07 at 128 frames and
4 takes a corner against 2.58 at 256 and 6), and cost about 0.7 s on the shipped model. They
are noisy too: one check can read 1.98 where the full measure reads 1.23. So whether the pad
steers is judged on the median of the last ``RECENT_CHECKS`` checks (``steers_lately``): one
lucky check among low ones does not make an epoch the one to keep. The seams are measured over
``QUICK_HOPS`` hops (4 at each of a model of the meter's 8 shifts of the bar), a rougher figure than
``info --seams``'s 200: it is printed, not used to keep an epoch.
"""

from __future__ import annotations

from typing import Any, Sequence

import numpy as np

from ..checkpoint import Checkpoint
from .seams import measure_seams
from .steering import STEERS, measure_steering

QUICK_FRAMES, QUICK_TAKES, QUICK_HOPS = 128, 4, 32
RECENT_CHECKS = 3


def quick_pad_check(checkpoint: Checkpoint, earlier: Sequence[float] = ()) -> dict[str, Any]:
    """``steering`` (both diagonals), ``steering_weaker`` (along the weakest direction of the pad), ``seams``,
    and whether the pad ``steers``: ``steering_lately``, the median of this figure and the ``earlier`` checks'
    ``steering_weaker`` (the last ``RECENT_CHECKS`` in all), reaches ``STEERS``."""
    steering = measure_steering(checkpoint, frames=QUICK_FRAMES, takes=QUICK_TAKES)
    seams = measure_seams(checkpoint, hops=QUICK_HOPS)
    lately = steering_lately([*earlier, steering.weaker])
    return {
        "steering": round(steering.ratio, 3),
        "steering_weaker": round(steering.weaker, 3),
        "seams": round(seams.ratio, 3),
        "steering_lately": round(lately, 3),
        "steers": lately >= STEERS,
    }


def steering_lately(weakest: Sequence[float]) -> float:
    """The median of the last ``RECENT_CHECKS`` quick figures along the pad's weakest direction."""
    return float(np.median(list(weakest)[-RECENT_CHECKS:]))
