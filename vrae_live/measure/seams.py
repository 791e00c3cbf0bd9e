"""Are the joins between decoded windows audible? A measurement through the live stream path.

The stream decoder starts a new window every hop, and, for a model fed z only in h_0,
re-anchors one mid-hop when the pad has moved far enough (``play/stream.py``). A seam
would show as notes starting (or restarting) more often on the first frame of a window
than on the other frames. This plays a long take while the pad wanders, as ``serve``
would (the stream decoded a frame at a time, z moving a little every frame), and compares
the rate of note starts on the frames where a window began with the rate on the others.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..checkpoint import Checkpoint
from ..play.stream import live_stream


@dataclass(frozen=True)
class SeamReport:
    hop: int
    hops: int
    at_boundaries: float  # note starts per frame on the first frame of a window (hop boundary or re-anchor)
    inside: float  # note starts per frame on the other frames
    reanchors: int = 0  # windows begun mid-hop by the pad's move
    at_reanchors: float = 0.0  # note starts per frame on those

    @property
    def ratio(self) -> float:
        return self.at_boundaries / self.inside if self.inside > 0 else float("inf")

    def line(self) -> str:
        moved = (f"; of those, {self.reanchors} windows re-anchored mid-hop by the moving pad, "
                 f"{self.at_reanchors:.3f} there" if self.reanchors else "")
        return (f"note starts per frame: {self.at_boundaries:.3f} on hop boundaries and re-anchors, "
                f"{self.inside:.3f} inside windows (ratio {self.ratio:.2f}; hop {self.hop}, {self.hops} hops{moved})")


def note_starts(frames: np.ndarray) -> np.ndarray:
    """Notes starting at each frame of ``frames (T, P)`` bool: ``(T,)`` counts (frame 0: all that sound)."""
    before = np.vstack([np.zeros((1, frames.shape[1]), dtype=bool), frames[:-1]])
    return (frames & ~before).sum(1)


def measure_seams(checkpoint: Checkpoint, hops: int = 200, hop: int | None = None, seed: int = 0) -> SeamReport:
    """Play ``hops`` hops while the pad circles the plane, at temperature 1 and density 0.5."""
    stream = live_stream(checkpoint, hop, seed=seed)
    hop = stream.hop
    plane = checkpoint.latent_plane()
    frames, joins = [], []
    for i in range(hops * hop):
        angle = 2 * np.pi * i / (40 * hop)  # once round the pad every 40 hops, a little every frame, so windows differ
        z = plane.z_at(0.5 + 0.4 * np.cos(angle), 0.5 + 0.4 * np.sin(angle))
        decoded = stream.next_frame(z, density=0.5, temperature=1.0)
        frames.append(decoded.frame)
        joins.append(decoded.join)
    starts = note_starts(np.stack(frames))[hop:]  # from the second hop: the first has no join
    kind = np.array(joins[hop:], dtype=object)
    joined, moved = kind != None, kind == "move"  # noqa: E711 -- elementwise on an object array; `is not None` asks the array
    return SeamReport(hop, hops, float(starts[joined].mean()), float(starts[~joined].mean()),
                      int(moved.sum()), float(starts[moved].mean()) if moved.any() else 0.0)
