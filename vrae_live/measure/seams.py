"""Are the joins between decoded windows audible? A measurement through the live stream path.

The stream decoder starts a new window every hop, and, for a model fed z only in h_0,
re-anchors one mid-hop when the pad has moved far enough (``play/stream.py``). A seam
would show as notes starting (or restarting) more often on the first frame of a window
than on the other frames. This plays a long take while the pad wanders, as ``serve``
would (the stream decoded a frame at a time, z moving a little every frame), and compares
the rate of note starts on the frames where a window began with the rate on the others: on a
beat grid, the others at the same place in the beat (a hop of a bar begins every window on a
downbeat, where music starts more notes than off the beat; a model that has learnt the beat does
so too, and that is not a seam). A note struck again while it sounds (a model of onsets) starts.
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
    inside: float  # note starts per frame on the other frames (at the joins' places in the beat)
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


def note_starts(frames: np.ndarray, struck: np.ndarray | None = None) -> np.ndarray:
    """Notes starting at each frame of ``frames (T, P)`` bool: ``(T,)`` counts (frame 0: all that sound),
    a note struck again (``struck (T, P)``, a model of onsets) counted as a start."""
    before = np.vstack([np.zeros((1, frames.shape[1]), dtype=bool), frames[:-1]])
    starts = frames & ~before
    return (starts if struck is None else starts | (frames & struck)).sum(1)


SHIFTS = 8  # takes of a model of the meter, each with the bar shifted against the hop grid


def measure_seams(checkpoint: Checkpoint, hops: int = 200, hop: int | None = None, seed: int = 0) -> SeamReport:
    """Play ``hops`` hops while the pad circles the plane, at temperature 1 and density 0.5.

    A model of the meter plays ``SHIFTS`` takes, the bar shifted against the hop grid in each, so
    windows begin on every place in the bar, and a join is compared with the other frames at its
    place in the bar; another model on a beat grid, with the other frames at its place in the beat.
    """
    stream = live_stream(checkpoint, hop, seed=seed)
    hop = stream.hop
    if stream.meter is None:
        beat = checkpoint.timing.steps_per_beat or 1  # a grid in seconds has no beat: every frame alike
        starts, kind = _take(checkpoint, stream, hops)
        place = (hop + np.arange(len(starts))) % beat
    else:
        bar = stream.meter[1]
        parts = [_take(checkpoint, live_stream(checkpoint, hop, seed=seed + k), -(-hops // SHIFTS),
                       shift=k * bar // SHIFTS) for k in range(SHIFTS)]
        starts, kind = (np.concatenate(part) for part in zip(*parts))
        place = np.concatenate([(k * bar // SHIFTS + hop + np.arange(len(p[0]))) % bar for k, p in enumerate(parts)])
    joined, moved = kind != None, kind == "move"  # noqa: E711 -- elementwise on an object array; `is not None` asks the array
    at_joins, inside = join_rates(starts, joined, place)
    return SeamReport(hop, hops, at_joins, inside, int(moved.sum()), float(starts[moved].mean()) if moved.any() else 0.0)


def _take(checkpoint: Checkpoint, stream, hops: int, shift: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Note starts ``(T,)`` and each frame's join ``(T,)`` of ``hops`` hops, from the second (the first
    has no join), the song's step 0 ``shift`` steps before the stream's first frame."""
    stream.align(shift)
    plane = checkpoint.latent_plane()
    hop = stream.hop
    frames, struck, joins = [], [], []
    for i in range(hops * hop):
        angle = 2 * np.pi * i / (40 * hop)  # once round the pad every 40 hops, a little every frame, so windows differ
        z = plane.z_at(0.5 + 0.4 * np.cos(angle), 0.5 + 0.4 * np.sin(angle))
        decoded = stream.next_frame(z, density=0.5, temperature=1.0)
        frames.append(decoded.frame)
        struck.append(decoded.frame if decoded.struck is None else decoded.struck)
        joins.append(decoded.join)
    onsets = np.stack(struck) if checkpoint.config.data.onsets else None
    return note_starts(np.stack(frames), onsets)[hop:], np.array(joins[hop:], dtype=object)


def join_rates(starts: np.ndarray, joined: np.ndarray, phase: np.ndarray) -> tuple[float, float]:
    """Note starts per frame on the joins, and on the other frames at the joins' places in the beat (or
    bar): ``starts (T,)`` counts, ``joined (T,)`` bool, ``phase (T,)`` each frame's place."""
    inside = np.full(phase.max() + 1, np.nan)
    for p in np.unique(phase[joined]):
        others = ~joined & (phase == p)
        if others.any():
            inside[p] = starts[others].mean()
    return float(starts[joined].mean()), float(np.nanmean(inside[phase[joined]]))
