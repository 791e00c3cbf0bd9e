"""Are the joins between decoded windows audible? A measurement through the live stream path.

The stream decoder starts a new window every hop (``live/stream.py``). A seam would show
as notes starting (or restarting) more often on the first frame of a hop than on the
other frames. This plays a long take while the pad wanders, as ``serve`` would, and
compares the rate of note starts on hop boundaries with the rate inside hops.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..checkpoint import Checkpoint
from ..live.stream import live_stream
from ..pad import LatentPlane


@dataclass(frozen=True)
class SeamReport:
    hop: int
    hops: int
    at_boundaries: float  # note starts per frame on the first frame of a hop
    inside: float  # note starts per frame on the other frames

    @property
    def ratio(self) -> float:
        return self.at_boundaries / self.inside if self.inside > 0 else float("inf")

    def line(self) -> str:
        return (f"note starts per frame: {self.at_boundaries:.3f} on hop boundaries, {self.inside:.3f} inside hops "
                f"(ratio {self.ratio:.2f}; hop {self.hop}, {self.hops} hops)")


def note_starts(frames: np.ndarray) -> np.ndarray:
    """Notes starting at each frame of ``frames (T, P)`` bool: ``(T,)`` counts (frame 0: all that sound)."""
    before = np.vstack([np.zeros((1, frames.shape[1]), dtype=bool), frames[:-1]])
    return (frames & ~before).sum(1)


def measure_seams(checkpoint: Checkpoint, hops: int = 200, hop: int | None = None, seed: int = 0) -> SeamReport:
    """Play ``hops`` hops while the pad circles the plane, at temperature 1 and density 0.5."""
    stream = live_stream(checkpoint, hop, seed=seed)
    hop = stream.hop
    plane = LatentPlane.stored_or_standard(checkpoint.meta.get("latent_plane"), checkpoint.config.model.latent)
    chunks = []
    for k in range(hops):
        angle = 2 * np.pi * k / 40  # once round the pad every 40 hops, so windows differ
        z = plane.z_at(0.5 + 0.4 * np.cos(angle), 0.5 + 0.4 * np.sin(angle))
        chunks.append(stream.next_chunk(z, density=0.5, temperature=1.0).frames)
    starts = note_starts(np.concatenate(chunks))[hop:]  # from the second hop: the first has no join
    boundary = np.arange(hop, hop * hops) % hop == 0
    return SeamReport(hop, hops, float(starts[boundary].mean()), float(starts[~boundary].mean()))
