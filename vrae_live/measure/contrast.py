"""How much the songs themselves differ: how much a pad faithful to them has to tell apart.

The steering ratio (``steering.py``) sets the music at opposite corners of the pad against
one corner played twice. A pad whose corners play like its songs can steer only by what
tells the songs apart, so, with the same features (``steering.music_features``) on excerpts
of the songs' rolls, ``frames`` long, every ``frames // 2``:

    contrast = mean distance between excerpts of the two songs that differ most
               ------------------------------------------------------------------
               mean distance between two excerpts of one song

and ``typical``, the same over every pair of songs. It is a guide, not a ceiling: one point
of the pad plays more alike than a whole song varies, so a pad can steer more than its
songs' contrast (8 Essen folk songs: contrast 2.10, steering 3.2-3.8 in the weakest
direction). Measured on eight songs each: Bach's chorales 6.46 (many keys), the fiddle
tunes 4.23, the synthetic styles 11.0, Palestrina's masses 1.70 and the Trecento's ballate
2.04: the corpora whose default pads stay furthest under 2.0 in their weakest direction
(1.1-1.5; docs/models.md).
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass

import numpy as np

from .steering import music_features

EXCERPT_FRAMES = 128
ALIKE = 2.0  # songs whose two most different differ less than this: little for a pad to tell apart


@dataclass(frozen=True)
class SongContrast:
    widest: float  # mean distance between excerpts of the two songs that differ most
    between: float  # mean distance between excerpts of two songs, over every pair of songs
    within: float  # mean distance between two excerpts of one song
    songs: int
    excerpts: int

    @property
    def ratio(self) -> float:
        """The two most different songs against one song with itself."""
        return self.widest / self.within if self.within > 0 else float("inf")

    @property
    def typical(self) -> float:
        return self.between / self.within if self.within > 0 else float("inf")

    def line(self) -> str:
        return (f"the songs' own contrast {self.ratio:.2f}: the two that differ most, against one song with "
                f"itself ({self.typical:.2f} over every pair; {self.songs} songs, {self.excerpts} excerpts)")

    def caveat(self) -> str | None:
        """A line for the verdict when the songs themselves differ too little for a pad to steer much."""
        if self.ratio >= ALIKE:
            return None
        return (f"the songs themselves differ little ({self.line()}): a pad faithful to them has little to tell "
                f"apart; songs of more varied character (keys, registers, textures) make a livelier pad")


def excerpts(roll: np.ndarray, frames: int = EXCERPT_FRAMES) -> list[np.ndarray]:
    """Excerpts of ``frames`` frames, every ``frames // 2``; a shorter song is one excerpt."""
    if len(roll) <= frames:
        return [roll]
    return [roll[i:i + frames] for i in range(0, len(roll) - frames + 1, frames // 2)]


def measure_contrast(rolls: list[np.ndarray], pitches, frames: int = EXCERPT_FRAMES) -> SongContrast | None:
    """The contrast of songs given as rolls ``(T, len(pitches))`` (or ``(T, 128)``, cut to ``pitches``);
    None with fewer than two songs with notes, or no song long enough for two excerpts."""
    pitches = np.asarray(pitches)
    features = []
    for roll in rolls:
        roll = np.asarray(roll)
        if roll.shape[1] == 128 and len(pitches) != 128:
            roll = roll[:, pitches]
        found = [music_features(e > 0, pitches) for e in excerpts(roll, frames) if e.any()]
        if found:
            features.append(np.stack(found))
    within = [d for f in features for d in _distances(f, f, same=True)]
    if len(features) < 2 or not within:
        return None
    pairs = [np.mean(_distances(a, b)) for a, b in itertools.combinations(features, 2)]
    return SongContrast(widest=float(max(pairs)), between=float(np.mean(pairs)), within=float(np.mean(within)),
                        songs=len(features), excerpts=sum(len(f) for f in features))


def _distances(a: np.ndarray, b: np.ndarray, same: bool = False) -> list[float]:
    """L1 distances between the rows of ``a`` and of ``b`` (each pair once when ``a`` is ``b``)."""
    d = np.abs(a[:, None, :] - b[None, :, :]).sum(-1)
    return d[np.triu_indices(len(a), k=1)].tolist() if same else d.ravel().tolist()
