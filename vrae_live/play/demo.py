"""A hands-free tour of the pad, for ``serve --demo``: the instrument plays on its own.

The path visits a few training songs spread over the pad (their positions are stored in
the checkpoint's latent plane), rests on each for a while and glides to the next with an
eased curve, then starts over. Without stored songs it circles the pad's inner square.

Pure: numpy only.
"""

from __future__ import annotations

import math
from typing import Sequence

import numpy as np

INNER_SQUARE = ((0.2, 0.2), (0.8, 0.2), (0.8, 0.8), (0.2, 0.8))


class DemoPath:
    """Pad positions over time: ``at(seconds) -> (x, y)``, each 0..1, looping."""

    def __init__(self, stops: Sequence[tuple[float, float]], rest_s: float = 6.0, glide_s: float = 4.0):
        if len(stops) < 2:
            raise ValueError("a demo path needs at least two stops")
        if rest_s < 0 or glide_s <= 0:
            raise ValueError("rest_s must be >= 0 and glide_s > 0")
        self.stops = np.clip(np.asarray(stops, dtype=np.float64), 0.0, 1.0)  # (N, 2)
        self.rest_s, self.glide_s = rest_s, glide_s

    @classmethod
    def for_songs(cls, songs: np.ndarray, stops: int = 6, **timing: float) -> "DemoPath":
        """A tour through up to ``stops`` of the training songs at ``songs (N, 2)`` on the pad, far apart
        (else the inner square)."""
        songs = np.asarray(songs, dtype=np.float64).reshape(-1, 2)
        picked = spread_out(songs, stops) if len(songs) else songs
        return cls(picked if len(picked) >= 2 else INNER_SQUARE, **timing)

    @property
    def period_s(self) -> float:
        return len(self.stops) * (self.rest_s + self.glide_s)

    def at(self, seconds: float) -> tuple[float, float]:
        leg_s = self.rest_s + self.glide_s
        t = seconds % self.period_s
        leg = int(t // leg_s)
        into_glide = t - leg * leg_s - self.rest_s
        start, end = self.stops[leg], self.stops[(leg + 1) % len(self.stops)]
        if into_glide <= 0:
            return float(start[0]), float(start[1])
        eased = 0.5 - 0.5 * math.cos(math.pi * into_glide / self.glide_s)  # 0..1, no jolt at either end
        x, y = start + eased * (end - start)
        return float(x), float(y)


def spread_out(points: np.ndarray, count: int) -> np.ndarray:
    """Up to ``count`` of ``points (N, 2)``, far apart (farthest-point order), then in a loop order.

    Starts from the point nearest the centre; the chosen points are ordered by angle
    around their mean, so the tour goes round rather than back and forth.
    """
    chosen = [int(np.argmin(np.linalg.norm(points - 0.5, axis=1)))]
    nearest = np.linalg.norm(points - points[chosen[0]], axis=1)
    while len(chosen) < min(count, len(points)):
        far = int(np.argmax(nearest))
        if nearest[far] == 0:
            break  # the rest coincide with points already chosen
        chosen.append(far)
        nearest = np.minimum(nearest, np.linalg.norm(points - points[far], axis=1))
    picked = points[chosen]
    angle = np.arctan2(*(picked - picked.mean(0)).T[::-1])
    return picked[np.argsort(angle)]
