"""Do the pad's axes do what they say? Controllability of a model trained with ``--pad-axes``.

For each axis, 9 points along it (0.1 to 0.9), the other axis at the pad's centre, each played
from a cold start with several seeds through the stream and gate ``serve`` plays
(``steering.play_takes``); each take's attributes are measured as training measured the
windows' (``data/attributes.py``), and each point's are the mean of its takes'. Reported per
axis: Spearman's rho between the 9 positions and the axis's own attribute (1: it rises all
along the axis), and |rho| of the other axis's attribute (the leak: 0 when moving along x
leaves y's attribute alone); and how far the own attribute moves from one end to the other, in
its own units and as a multiple of its spread from take to take at one point (its reach: the
steering ratio of that attribute alone, which the corners' ratio, weighing the pitch classes'
dice most, does not show).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from ..checkpoint import Checkpoint
from ..data.attributes import amounts, attributes, axis_words, starts_of
from ..pad import plane_coordinates
from .steering import play_takes

POINTS = np.linspace(0.1, 0.9, 9)
SEEDS = 8
FRAMES = 128
FOLLOWS = 0.9  # an axis's own rho from which it follows its attribute all along (the bar)
LEVEL_SEEDS = 16  # takes a point for levelling the pad
LEVEL_SEED = 5000  # their first seed: other dice than measure_axes's


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


NAN2 = (float("nan"), float("nan"))


@dataclass(frozen=True)
class AxesReport:
    names: tuple[str, str]
    own: tuple[float, float]  # rho of each axis's own attribute along it
    leak: tuple[float, float]  # |rho| of the other axis's attribute along it
    seeds: int
    ends: tuple[tuple[float, float], tuple[float, float]] = (NAN2, NAN2)  # each axis's own attribute at 0.1 and 0.9
    spread: tuple[float, float] = NAN2  # its standard deviation over the takes at one point, the points' mean
    per_beat: bool = True  # onsets counted a beat (a second for a model of seconds)

    def reach(self, k: int) -> float:
        """How far axis ``k`` moves its own attribute end to end, in its spread from the dice at one point."""
        return abs(self.ends[k][1] - self.ends[k][0]) / self.spread[k] if self.spread[k] > 0 else float("nan")

    def lines(self) -> list[str]:
        out = []
        for k, axis in enumerate("xy"):
            other = self.names[1 - k]
            own = (f"rho {self.own[k]:+.2f} along it" if np.isfinite(self.own[k])
                   else f"rho undefined along it (its {self.names[k]} is the same at every point)")
            leak = (f"{other} leaks {self.leak[k]:.2f}" if np.isfinite(self.leak[k])
                    else f"{other} does not change along it")
            line = f"{axis} ({self.names[k]}: {axis_words(self.names[k])}): {own}, {leak}"
            if np.isfinite(self.reach(k)):
                line += (f"; {amounts(self.names[k], self.ends[k], self.per_beat)} end to end, "
                         f"{self.reach(k):.1f} times the dice's spread at a point")
            out.append(line)
        return out

    @property
    def follows(self) -> bool:
        """Whether what each axis plays follows its attribute all along it (rho at least ``FOLLOWS``)."""
        return all(rho >= FOLLOWS for rho in self.own)

    def verdict(self, weaker: float) -> str:
        """What a musician should make of a pad of named axes, beside the corners' ``weaker`` steering ratio."""
        if self.follows:
            reach = (f", {self.reach(0):.1f} and {self.reach(1):.1f} times as far as the dice spread them at a point"
                     if np.isfinite(self.reach(0)) and np.isfinite(self.reach(1)) else "")
            return (f"the pad's axes do what they say: {self.names[0]} rises along x, {self.names[1]} along y "
                    f"(rho {self.own[0]:.2f} and {self.own[1]:.2f}{reach}); its weakest direction steers {weaker:.2f}")
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


def centre_line(plane, k: int) -> list[np.ndarray]:
    """The z under each of ``POINTS`` along axis ``k`` (0: x, 1: y) of ``plane``, the other axis at the pad's centre."""
    return [plane.z_at(*((u, 0.5) if k == 0 else (0.5, u))) for u in POINTS]


def measure_axes(checkpoint: Checkpoint, seeds: int = SEEDS, frames: int = FRAMES, seed: int = 0) -> AxesReport | None:
    """Controllability along each named axis (see the module's doc), the takes' dice from ``seed`` on; None
    for a pad without named axes. One set of dice reads a leak up to 0.5 off another's (docs/models.md,
    "A level pad"): average several ``seed`` (0, 100, 200, ...) to compare two pads."""
    plane = checkpoint.latent_plane()
    names = plane.attributes
    if len(names) != 2:
        return None
    own, leak, ends, spread = [], [], [], []
    for k in range(2):
        zs = [z for z in centre_line(plane, k) for _ in range(seeds)]
        takes = take_attributes(checkpoint, names, zs, seed, frames).reshape(len(POINTS), seeds, -1)
        measured = np.array([np.nanmean(point, axis=0) if np.isfinite(point).any() else point[0] for point in takes])
        own.append(spearman(POINTS, measured[:, k]))
        leak.append(abs(spearman(POINTS, measured[:, 1 - k])))
        ends.append((float(measured[0, k]), float(measured[-1, k])))
        spread.append(_spread(takes[..., k]))
    return AxesReport(tuple(names), tuple(own), tuple(leak), seeds, tuple(ends), tuple(spread),
                      per_beat=checkpoint.timing.steps_per_beat is not None)


def _spread(values: np.ndarray) -> float:
    """The standard deviation of ``values (points, takes)`` over each point's takes, the points' mean
    (nan where no point has two takes with a value)."""
    deviations = [np.std(v[np.isfinite(v)], ddof=1) for v in values if np.isfinite(v).sum() >= 2]
    return float(np.mean(deviations)) if deviations else float("nan")


@dataclass(frozen=True)
class Levelling:
    """How a pad of named axes is levelled (:func:`level_lean`)."""

    names: tuple[str, str]
    lean: float  # x's direction takes this much of y's unit for each unit of its own (0: not tilted)
    drift: float  # y's attribute's change along x, as a share of its change along y, on the pad measured
    clear: bool = True  # whether the drift was told from the dice (else x was left as it was)

    def line(self) -> str:
        if not np.isfinite(self.drift):
            return f"not levelled: {self.names[1]} does not rise along y, so y's unit cannot hold it level along x"
        moved = f"{self.names[1]} moved {self.drift:+.0%} as far along x as along y"
        if not self.clear:
            return f"level: {moved}, not told from the dice"
        return f"levelled: {moved}; x now leans {self.lean:+.3f} of y's unit, so that it stays level"


def slope(x: np.ndarray, y: np.ndarray) -> tuple[float, float]:
    """The least-squares slope of ``y`` on ``x`` over the finite pairs, and its standard error (nan, nan
    with fewer than 3 pairs or one x)."""
    known = np.isfinite(x) & np.isfinite(y)
    x, y = np.asarray(x, dtype=np.float64)[known], np.asarray(y, dtype=np.float64)[known]
    spread = np.square(x - x.mean()).sum() if len(x) else 0.0
    if len(x) < 3 or spread == 0:
        return float("nan"), float("nan")
    b = float(((x - x.mean()) * (y - y.mean())).sum() / spread)
    residual = y - y.mean() - b * (x - x.mean())
    return b, float(np.sqrt(np.square(residual).sum() / (len(x) - 2) / spread))


CLEAR = 2.0  # standard errors: a slope smaller than this is not told from the dice, and nothing is levelled for it


def level_lean(checkpoint: Checkpoint, seeds: int = LEVEL_SEEDS, seed: int = LEVEL_SEED,
               frames: int = FRAMES) -> Levelling | None:
    """How far the pad's x should lean on y's latent unit for y's attribute to stay level along x.

    The decoder couples the attributes: on 8 of Bach's chorales the register rose 1.7 semitones
    across the pad along x (busier) where y raised it 7.1. Takes along each axis's centre line (the points
    :func:`measure_axes` plays, with other dice) give y's attribute's slope along x (its drift)
    and along y (its gain), each per unit of the latent coordinate; x leaning ``-drift / gain`` of
    y's unit cancels the drift to first order (``pad.latent_plane``'s ``lean``, added to the
    lean the pad already has). A drift within ``CLEAR`` standard errors of none is left alone, and
    so is every drift where y's attribute does not clearly rise along y (drift nan then).
    Only x is levelled: along y the busyness rises and falls again on the corpora measured
    (docs/models.md), which no tilt of a straight axis takes out. None for a pad without named axes.
    """
    plane = checkpoint.latent_plane()
    names = plane.attributes
    if len(names) != 2:
        return None
    found, spans = [], []
    for k in range(2):
        zs = centre_line(plane, k)
        where = plane_coordinates(np.array(zs), plane.origin, plane.axes)[:, k]
        played = take_attributes(checkpoint, names, [z for z in zs for _ in range(seeds)], seed + 1000 * k, frames)
        found.append(slope(np.repeat(where, seeds), played[:, 1]))
        spans.append(float(np.ptp(where)))
    (drift, drift_error), (gain, gain_error) = found
    lean = float(plane.axes[0, 1])
    if not gain > CLEAR * gain_error:
        return Levelling(tuple(names), lean, float("nan"))
    clear = abs(drift) > CLEAR * drift_error
    return Levelling(tuple(names), lean - drift / gain if clear else lean, drift * spans[0] / (gain * spans[1]), clear)
