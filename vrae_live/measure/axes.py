"""Do the pad's axes do what they say? Controllability of a model trained with ``--pad-axes``.

For each axis, 9 points along it (0.1 to 0.9), the other axis at the pad's centre, each played
from a cold start with several seeds through the stream and gate ``serve`` plays
(``steering.play_takes``); each take's attributes are measured as training measured the
windows' (``data/attributes.py``), and each point's are the mean of its takes'. Reported per
axis: Spearman's rho between the 9 positions and the axis's own attribute (1: it rises all
along the axis), and |rho| of the other axis's attribute (the leak: 0 when moving along x
leaves y's attribute alone).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from ..checkpoint import Checkpoint
from ..data.attributes import attributes, axis_words, starts_of
from .steering import play_takes

POINTS = np.linspace(0.1, 0.9, 9)
SEEDS = 8
FRAMES = 128
FOLLOWS = 0.9  # an axis's own rho from which it follows its attribute all along (the bar)


def ranks(values: np.ndarray) -> np.ndarray:
    """Ranks from 0, ties sharing their mean rank."""
    order = np.argsort(values, kind="stable")
    ranked = np.empty(len(values))
    ranked[order] = np.arange(len(values))
    for value in np.unique(values):
        tied = values == value
        ranked[tied] = ranked[tied].mean()
    return ranked


def spearman(a: np.ndarray, b: np.ndarray) -> float:
    """Spearman's rank correlation over the pairs where both are finite (nan with fewer than 3)."""
    a, b = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    known = np.isfinite(a) & np.isfinite(b)
    ra, rb = ranks(a[known]), ranks(b[known])
    if known.sum() < 3 or ra.std() == 0 or rb.std() == 0:
        return float("nan")
    return float(np.corrcoef(ra, rb)[0, 1])


@dataclass(frozen=True)
class AxesReport:
    names: tuple[str, str]
    own: tuple[float, float]  # rho of each axis's own attribute along it
    leak: tuple[float, float]  # |rho| of the other axis's attribute along it
    seeds: int

    def lines(self) -> list[str]:
        out = []
        for k, axis in enumerate("xy"):
            other = self.names[1 - k]
            own = (f"rho {self.own[k]:+.2f} along it" if np.isfinite(self.own[k])
                   else f"rho undefined along it (its {self.names[k]} is the same at every point)")
            leak = (f"{other} leaks {self.leak[k]:.2f}" if np.isfinite(self.leak[k])
                    else f"{other} does not change along it")
            out.append(f"{axis} ({self.names[k]}: {axis_words(self.names[k])}): {own}, {leak}")
        return out

    @property
    def follows(self) -> bool:
        """Whether what each axis plays follows its attribute all along it (rho at least ``FOLLOWS``)."""
        return all(rho >= FOLLOWS for rho in self.own)

    def verdict(self, weaker: float) -> str:
        """What a musician should make of a pad of named axes, beside the corners' ``weaker`` steering ratio."""
        if self.follows:
            return (f"the pad's axes do what they say: {self.names[0]} rises along x, {self.names[1]} along y "
                    f"(rho {self.own[0]:.2f} and {self.own[1]:.2f}); its weakest direction steers {weaker:.2f}")
        weak = ", ".join(f"{axis} ({self.names[k]}) rho {self.own[k]:.2f}" for k, axis in enumerate("xy")
                         if self.own[k] < FOLLOWS)
        return (f"an axis of the pad does not follow its name all along ({weak}, under {FOLLOWS}): train on more "
                f"songs (Bach's chorales: rho 0.80 and 0.88 from 8 of them, 1.00 and 0.97 from 30), or name other "
                f"attributes with --pad-axes")


def take_attributes(checkpoint: Checkpoint, names, zs: list[np.ndarray], seed: int = 0,
                    frames: int = FRAMES) -> np.ndarray:
    """The attributes ``names`` of a take at each fixed z ``(A,)`` of ``zs``: ``(len(zs), 2)``."""
    played = play_takes(checkpoint, zs, frames, seed)
    sound = torch.as_tensor(np.stack([s for s, _ in played]), dtype=torch.float32)
    struck = (torch.as_tensor(np.stack([k for _, k in played]), dtype=torch.float32)
              if played[0][1] is not None else starts_of(sound))
    timing = checkpoint.timing
    spb = timing.steps_per_beat
    step_in_beat = torch.arange(frames)[None] % spb if spb else None  # a take starts on a downbeat
    return attributes(sound, struck, checkpoint.pitches, names, spb or timing.fs, step_in_beat).numpy()


def measure_axes(checkpoint: Checkpoint, seeds: int = SEEDS, frames: int = FRAMES) -> AxesReport | None:
    """Controllability along each named axis (see the module's doc); None for a pad without named axes."""
    plane = checkpoint.latent_plane()
    names = plane.attributes
    if len(names) != 2:
        return None
    own, leak = [], []
    for k in range(2):
        zs = [plane.z_at(*((u, 0.5) if k == 0 else (0.5, u))) for u in POINTS for _ in range(seeds)]
        takes = take_attributes(checkpoint, names, zs, frames=frames).reshape(len(POINTS), seeds, -1)
        measured = np.array([np.nanmean(point, axis=0) if np.isfinite(point).any() else point[0] for point in takes])
        own.append(spearman(POINTS, measured[:, k]))
        leak.append(abs(spearman(POINTS, measured[:, 1 - k])))
    return AxesReport(tuple(names), tuple(own), tuple(leak), seeds)
