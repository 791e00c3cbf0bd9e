"""Does the pad steer the music? A measurement through the live stream path.

The music played at a pad position, decoded by the same Stream and gate as
``serve`` (from a cold start, at the model's own density), is summarised by a few
musical features: mean pitch, notes per frame, and the pitch-class histogram. Two takes
differ by the L1 distance of their features. The steering ratio is

    mean distance between opposite corners of the pad
    ---------------------------------------------------
    mean distance between two takes at the same corner (different random seeds)

A ratio near 1 means the pad changes nothing a listener could tell from chance; the
larger, the more the position, not the dice, decides what plays.

The same four corners give the ratio along four directions of the pad: across (x, the
songs' main direction), up and down (y), and along both diagonals. A pad steers only as well
as its weakest direction: a decoder that listens to one direction of the latent alone leaves
the finger a line across the pad along which nothing changes, and which line that is depends
on the model, not on the pad's axes (measured: a model steering 2.3 along both axes, 13.2
along one diagonal and 1.0 along the other).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import numpy as np

from ..checkpoint import Checkpoint
from ..play.key import DEFAULT_KEY_STRENGTH, lean_for, signature
from ..play.stream import live_stream

CORNERS = ((0.1, 0.1), (0.9, 0.9), (0.1, 0.9), (0.9, 0.1))  # two opposite pairs, inset from the edge
# The features in groups, for the distances' breakdown: columns of music_features.
PARTS = {"mean pitch": slice(0, 1), "notes per frame": slice(1, 2), "pitch classes": slice(2, 14)}


def music_features(frames: np.ndarray, pitches: np.ndarray) -> np.ndarray:
    """Frames ``(T, P)`` to features: mean pitch in octaves, notes per frame, pitch classes (x4)."""
    per_pitch = frames.sum(0).astype(np.float64)  # (P,)
    total = per_pitch.sum()
    mean_pitch = (per_pitch * pitches).sum() / total / 12 if total else 0.0
    classes = np.zeros(12)
    np.add.at(classes, pitches % 12, per_pitch)
    classes /= max(total, 1e-9)
    return np.concatenate([[mean_pitch, frames.sum(1).mean()], 4 * classes])


def play_takes(checkpoint: Checkpoint, zs: Sequence[np.ndarray], frames: int, seed: int = 0,
               hop: int | None = None, density: float = 0.5, temperature: float = 1.0, key: int | None = None,
               scale: str = "major", key_strength: float = DEFAULT_KEY_STRENGTH) -> list[tuple[np.ndarray, np.ndarray | None]]:
    """Takes at fixed codes ``zs``, each from a cold start: take k is voice k of one stream seeded
    ``seed``, all decoded together, a step a frame for every take, as ``serve`` decodes its voices.
    The gate draws take k's notes as it would a take of its own seeded ``seed + k`` (a VRNN's own
    noise is drawn for the batch), and the take is the one ``render_take`` plays at the same z,
    seed, ``density``, ``temperature``, ``key``, ``scale`` and ``key_strength`` (``play/key.py``).
    Each take's frames ``(T, P)`` bool, and where its notes start ``(T, P)`` for a model of onsets
    (else None)."""
    stream = live_stream(checkpoint, hop, seed=seed, voices=len(zs))
    for k in range(len(zs)):
        stream.start(k)
    codes = dict(enumerate(zs))
    densities = dict.fromkeys(codes, density)
    lean = lean_for(checkpoint.pitches, 0, key, scale, key_strength)
    leans = dict.fromkeys(codes, lean) if lean is not None else None
    if key is not None:
        for k in codes:
            stream.set_key(k, signature(key, scale))
    decoded = [stream.step(codes, densities, temperature=temperature, leans=leans) for _ in range(frames)]
    takes = []
    for k in codes:
        sound = np.stack([d[k].frame for d in decoded])
        takes.append((sound, np.stack([d[k].struck for d in decoded]) if stream.onsets else None))
    return takes


STEERS = 1.5  # below this, along any direction, the pad changes little a listener could tell from chance

NAN2 = (float("nan"), float("nan"))
# Pairs of corners that differ in one direction of the pad only (indices into CORNERS).
ACROSS = ((0, 3), (2, 1))  # x from 0.1 to 0.9 at y 0.1 and at y 0.9
UP_AND_DOWN = ((0, 2), (3, 1))  # y from 0.1 to 0.9 at x 0.1 and at x 0.9
DIAGONALS = ((0, 1), (2, 3))


@dataclass(frozen=True)
class SteeringReport:
    same: float  # mean feature distance, same corner, two seeds
    opposite: float  # mean feature distance, opposite corners
    takes: int
    diagonals: tuple[float, float] = NAN2  # the ratio along (0.1, 0.1)-(0.9, 0.9), and along (0.1, 0.9)-(0.9, 0.1)
    axes: tuple[float, float] = NAN2  # the ratio across the pad (x), and up and down it (y)
    # ``same`` and ``opposite`` by the features' groups (PARTS): what the dice move, and what the pad does
    same_parts: tuple[float, ...] = ()
    opposite_parts: tuple[float, ...] = ()

    @property
    def ratio(self) -> float:
        return self.opposite / self.same if self.same > 0 else float("inf")

    @property
    def weaker(self) -> float:
        """The ratio along the direction of the pad (axis or diagonal) that steers least."""
        return min(self.axes + self.diagonals)

    @property
    def steers(self) -> bool:
        return self.weaker >= STEERS

    def line(self) -> str:
        return (f"steering ratio {self.ratio:.2f}: {self.axes[0]:.2f} across the pad, {self.axes[1]:.2f} up and "
                f"down, {self.diagonals[0]:.2f} and {self.diagonals[1]:.2f} along its diagonals (opposite corners "
                f"{self.opposite:.3f}, same corner twice {self.same:.3f}, {self.takes} takes per corner)")

    def parts_line(self) -> str:
        """The distances by feature: "same corner twice: mean pitch 0.05, ...; opposite corners: ..."."""
        def listed(values):
            return ", ".join(f"{name} {value:.2f}" for name, value in zip(PARTS, values))
        return f"by feature, same corner twice: {listed(self.same_parts)}; opposite corners: {listed(self.opposite_parts)}"

    def verdict(self, pad_preset: bool = True) -> str:
        """What a musician should make of it, in a line or two; ``pad_preset``: whether the model is
        already the kind made for the pad (z fed at every step, as live-2d trains it)."""
        if self.steers:
            return f"the pad steers: opposite corners play clearly different music ({self.weaker:.2f} or more)"
        advice = ("train again with --transpose 0 if your songs differ by register or key (the synthetic styles "
                  "steered 2.18 so, 1.00 transposed), on more songs, or with --input-dropout 0.5: the decoder then "
                  "leans on the pad, at a worse bound (Palestrina's masses steered past 2.0 so, 2 nats a step worse); "
                  "--latent 4 holds one more unit still live, so a point keeps more to its key (8 songs of eight corpora: "
                  "1.60 against 1.52 on average, 0.26 nats a step worse)")
        if not pad_preset:
            advice += "; or with the preset made for the pad (--preset live-2d: z fed at every step, whitened codes)"
        return f"the pad will change little (steering {self.weaker:.2f} along its weakest direction, below {STEERS}): {advice}"


TAKES = 16  # takes a corner (see measure_steering)


def measure_steering(checkpoint: Checkpoint, frames: int = 256, takes: int = TAKES, hop: int | None = None) -> SteeringReport:
    """Compare takes at the pad's corners (see the module docstring), played at ``hop`` (default: serve's).

    The weakest direction is a ratio of means over a few takes, so it wanders from one set of
    seeds to the next: on Palestrina's 5-song model 1.96, 1.69, 1.04 and 1.08 with 6 takes a
    corner (seeds 0-5, 6-11, ...), 1.39 with all 24; on the shipped model 1.87-2.16, 1.93 with
    24. With 16 takes (about 7 s on the shipped model, 2-core CPU) three sets of seeds read 1.49,
    1.32, 1.20 and 1.93, 1.89, 1.66.
    """
    plane = checkpoint.latent_plane()
    pitches = np.asarray(checkpoint.pitches)
    played = play_takes(checkpoint, [plane.z_at(*corner) for corner in CORNERS for _ in range(takes)], frames, hop=hop)
    features = {corner: [music_features(sound, pitches) for sound, _ in played[c * takes:(c + 1) * takes]]
                for c, corner in enumerate(CORNERS)}

    def distance(a: np.ndarray, b: np.ndarray) -> np.ndarray:
        """``|a - b|`` summed within each group of PARTS: their sum is the whole distance."""
        gaps = np.abs(a - b)
        return np.array([gaps[part].sum() for part in PARTS.values()])

    def same_corner(corner) -> list[np.ndarray]:
        f = features[corner]
        return [distance(f[i], f[j]) for i in range(takes) for j in range(i + 1, takes)]

    def opposite_corners(first, second) -> list[np.ndarray]:
        return [distance(a, b) for a in features[first] for b in features[second]]

    def along(pairs) -> float:
        """Mean distance between the corners of each pair, over the same corner played twice."""
        corners = [CORNERS[i] for pair in pairs for i in pair]
        opposite = [d for i, j in pairs for d in opposite_corners(CORNERS[i], CORNERS[j])]
        same = [d for corner in corners for d in same_corner(corner)]
        return float(np.mean(opposite, 0).sum() / max(np.mean(same, 0).sum(), 1e-12))

    same = np.mean([d for corner in CORNERS for d in same_corner(corner)], 0)  # by part
    opposite = np.mean([d for i, j in DIAGONALS for d in opposite_corners(CORNERS[i], CORNERS[j])], 0)
    return SteeringReport(
        float(same.sum()), float(opposite.sum()), takes,
        diagonals=(along([DIAGONALS[0]]), along([DIAGONALS[1]])),
        axes=(along(ACROSS), along(UP_AND_DOWN)),
        same_parts=tuple(map(float, same)),
        opposite_parts=tuple(map(float, opposite)),
    )
