"""Does the model play like the songs? The MGEval measure of Yang & Lerch (2020).

"On the evaluation of generative models in music" compares two sets of music feature by
feature, without a listener. Music is cut into segments of 8 beats (``segment_frames``), and
each segment is described by eight features (``FEATURES``): pitch count, pitch-class
histogram, pitch range, mean pitch interval, note count, mean inter-onset interval,
note-length histogram and polyphony. For each feature:

- the *intra-set* distances: Euclidean between the features of two reference segments, over
  every pair of segments from two different songs (two segments of one song are more alike
  than two songs are, and a candidate is never the reference's own song);
- the *inter-set* distances: from every candidate segment to every reference segment;
- the overlap area ``integral of min(p, q)`` of the two distance distributions, each a
  Gaussian KDE (``overlap_area``). 1.0: the candidates sit among the reference segments as
  the reference segments sit among themselves; near 0: they are somewhere else.

The figure is the mean over the features, given for three candidate sets (``measure_quality``):
the model's takes at random points of the pad, played as ``serve`` plays them; the real songs
against themselves, split by song into two halves (the ceiling); and random notes with the
songs' note counts, lengths and pitch range (the floor).

Notes are runs of consecutive on-frames of a pitch, for the songs and the takes alike. For a
model of onsets a run is cut where a note starts again (rolls are then marked: 1 sounds, 2 is
struck, :func:`marked`); a model of the binary roll knows no onsets, so a repeated note is one
long note on both sides. A note that crosses a segment's edge counts in each segment as the part inside it.
The features and the overlap are pure numpy; only ``measure_quality`` plays the model.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Callable, Sequence

import numpy as np

from ..play.key import DEFAULT_KEY_STRENGTH, key_name

if TYPE_CHECKING:
    from ..checkpoint import Checkpoint
    from ..config import FrameTiming
    from ..data.corpus import Song

SEGMENT_BEATS = 8
FS_BPM = 120.0  # the tempo at which a model on seconds is cut into beats
FEATURES = ("pitch count", "pitch classes", "pitch range", "pitch interval", "note count", "inter-onset interval",
            "note lengths", "polyphony")
# Upper edges of the note-length bins, in sixteenths: 1, 2, 3, 4, 5-6, 7-9, 10-13, 14-23 and 24 or more,
# so a sixteenth, an eighth, a dotted eighth, a quarter, a dotted quarter, a half, ... each have their own.
LENGTH_EDGES = np.array([1.5, 2.5, 3.5, 4.5, 6.5, 9.5, 13.5, 23.5])
BAR = 0.8  # a model whose overall overlap reaches this share of the ceiling plays like the songs
TAKES, TAKE_BEATS = 48, 32  # with 12 one model read 0.80-0.90 of the ceiling over five seeds; with 48, 0.86-0.89
SPLITS = 4
SUMMARY = ("distinct pitches", "notes", "one sixteenth long", "polyphony")  # SegmentSet.summary, per 8 beats
MAX_SEGMENTS = 1000  # of the songs, drawn at random from more


def segment_frames(timing: "FrameTiming") -> int:
    """Frames in 8 beats: ``8 * steps_per_beat`` on a beat grid, 4 s worth of frames at ``fs``."""
    if timing.steps_per_beat is not None:
        return SEGMENT_BEATS * timing.steps_per_beat
    return max(1, round(SEGMENT_BEATS * 60.0 / FS_BPM * timing.fs))


def sixteenth_frames(timing: "FrameTiming") -> float:
    """Frames in a sixteenth note (at 120 bpm for a model on seconds)."""
    if timing.steps_per_beat is not None:
        return timing.steps_per_beat / 4
    return 60.0 / FS_BPM / 4 * timing.fs


# -- features ------------------------------------------------------------------------


STRUCK = 2  # a marked roll's value where a note starts


def marked(frames: np.ndarray, struck: np.ndarray | None = None) -> np.ndarray:
    """A roll ``(T, P)`` to compare notes by: the binary ``frames`` as they are, or with ``struck``
    (where notes start, a model of onsets) as uint8, 0 silent, 1 sounding, ``STRUCK`` struck."""
    frames = np.asarray(frames, dtype=bool)
    return frames if struck is None else frames.astype(np.uint8) + (frames & np.asarray(struck, dtype=bool))


def song_marks(songs: Sequence["Song"], checkpoint: "Checkpoint") -> list[np.ndarray]:
    """The songs as the quality measure compares them with what ``checkpoint`` plays: each roll on its
    pitches, :func:`marked` with the songs' onsets for a model of onsets."""
    pitches = checkpoint.pitches
    if not checkpoint.config.data.onsets:
        return [s.frames(pitches) for s in songs]
    return [marked(*np.split(s.frames(pitches, onsets=True), 2, axis=1)) for s in songs]


def notes_of(roll: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The notes of a binary or marked roll ``(T, P)``: onsets (frames), columns and lengths
    (frames), each ``(N,)``, in order of onset, then of column."""
    marks = np.asarray(roll)
    steps, width = marks.shape
    on = np.zeros((width, steps + 1), dtype=bool)  # by column, a silent frame after each
    on[:, :steps] = marks.T > 0
    starts = on.copy()
    starts[:, 1:] &= ~on[:, :-1]
    if marks.dtype != bool:
        starts[:, :steps] |= marks.T == STRUCK
    first = np.flatnonzero(starts)  # column by column, then time
    bounds = np.flatnonzero(~on | starts)  # where a note ends: silence, or the next note
    ends = bounds[np.searchsorted(bounds, first, side="right")]
    column, onset = np.divmod(first, steps + 1)
    order = np.lexsort((column, onset))
    return onset[order], column[order], (ends - first)[order]


def segment_features(segment: np.ndarray, pitches: np.ndarray, sixteenth: float) -> list[np.ndarray]:
    """The eight features (``FEATURES``, in order, each a 1-D array) of a binary or marked segment ``(S, P)``.

    ``pitches``: the MIDI note number of each column; ``sixteenth``: frames in a sixteenth.
    Pitch count: distinct pitches. Pitch classes: the share of the notes in each of 12.
    Pitch range and interval in semitones; the interval is the mean absolute step between
    consecutive notes by onset (a chord read upwards). Inter-onset interval: the mean gap in
    frames between distinct onsets, the segment's length where there is only one. Note
    lengths: the share of the notes in each bin of ``LENGTH_EDGES`` (9). Polyphony: the mean
    number of notes sounding over the frames where any sounds. A silent segment has zeros
    (and an inter-onset interval of its length).
    """
    onset, column, length = notes_of(segment)
    segment = np.asarray(segment, dtype=bool)
    count = len(onset)
    played = pitches[column]
    classes = np.bincount(played % 12, minlength=12) / max(count, 1)
    lengths = np.bincount(np.digitize(length / sixteenth, LENGTH_EDGES), minlength=len(LENGTH_EDGES) + 1)
    starts = np.unique(onset)
    sounding = segment.sum(1)
    return [
        np.array([len(np.unique(played))], dtype=float),
        classes,
        np.array([float(played.max() - played.min()) if count else 0.0]),
        np.array([float(np.abs(np.diff(played)).mean()) if count > 1 else 0.0]),
        np.array([float(count)]),
        np.array([float(np.diff(starts).mean()) if len(starts) > 1 else float(len(segment))]),
        lengths / max(count, 1),
        np.array([float(sounding[sounding > 0].mean()) if sounding.any() else 0.0]),
    ]


def segments_of(roll: np.ndarray, frames: int, keep_silent: bool = False) -> list[np.ndarray]:
    """The whole segments ``(frames, P)`` of a roll ``(T, P)``, end to end; silent ones only if asked."""
    cut = [roll[i:i + frames] for i in range(0, len(roll) - frames + 1, frames)]
    return [s for s in cut if keep_silent or s.any()]


@dataclass
class SegmentSet:
    """Features of a set of segments: ``features[f]`` is ``(N, D_f)``; ``song`` ``(N,)`` says whose."""

    features: list[np.ndarray]
    song: np.ndarray

    @classmethod
    def of(cls, segments_by_song: Sequence[Sequence[np.ndarray]], pitches: Sequence[int], sixteenth: float) -> "SegmentSet":
        pitches = np.asarray(pitches)
        rows = [segment_features(s, pitches, sixteenth) for part in segments_by_song for s in part]
        song = np.array([i for i, part in enumerate(segments_by_song) for _ in part], dtype=np.int64)
        return cls([np.stack([r[f] for r in rows]) if rows else np.zeros((0, 1)) for f in range(len(FEATURES))], song)

    def __len__(self) -> int:
        return len(self.song)

    def subset(self, rows: np.ndarray) -> "SegmentSet":
        return SegmentSet([f[rows] for f in self.features], self.song[rows])

    def summary(self) -> tuple[float, ...]:
        """What a musician counts (``SUMMARY``): distinct pitches and notes per segment, the share of the
        notes one sixteenth long (of all the segments' notes), and the mean polyphony."""
        counts = self.features[4][:, 0]
        short = float((self.features[6][:, 0] * counts).sum() / counts.sum()) if counts.sum() else float("nan")
        return (float(self.features[0].mean()), float(counts.mean()), short, float(self.features[7].mean()))


# -- distances and their overlap -----------------------------------------------------------


def _pairwise(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Euclidean distances ``(N, M)`` between the rows of ``a (N, D)`` and ``b (M, D)``, in ``(N, M)`` memory."""
    squared = (a ** 2).sum(1)[:, None] + (b ** 2).sum(1)[None, :] - 2.0 * a @ b.T
    return np.sqrt(np.clip(squared, 0.0, None))


def intra_distances(reference: SegmentSet, feature: int) -> np.ndarray:
    """Distances between reference segments of two different songs (every pair but self, if one song)."""
    f = reference.features[feature]
    d = _pairwise(f, f)
    if len(np.unique(reference.song)) > 1:
        apart = reference.song[:, None] < reference.song[None, :]  # each pair of songs' segments once
    else:
        apart = np.triu(np.ones(d.shape, dtype=bool), k=1)
    return d[apart]


def inter_distances(candidate: SegmentSet, reference: SegmentSet, feature: int) -> np.ndarray:
    """Distances from every candidate segment to every reference segment, ``(N * M,)``."""
    return _pairwise(candidate.features[feature], reference.features[feature]).ravel()


def silverman(samples: np.ndarray) -> float:
    """Silverman's rule of thumb: ``0.9 min(std, IQR / 1.34) n^(-1/5)`` (the std alone where the IQR is 0)."""
    std = float(np.std(samples))
    q75, q25 = np.percentile(samples, [75, 25])
    spread = min(std, (q75 - q25) / 1.34) if q75 > q25 else std
    return 0.9 * spread * len(samples) ** -0.2


MAX_GRID = 2**15  # points of the common grid


def kde_on_grid(samples: np.ndarray, bandwidth: float, lo: float, step: float, n: int) -> np.ndarray:
    """A Gaussian KDE ``(n,)`` at ``lo + step * arange(n)``, integrating to 1 over the grid.

    The samples are binned linearly onto the grid and convolved with the kernel by FFT (the
    binned KDE), so a hundred thousand distances cost no more than a thousand; the grid is
    fine enough (a quarter of the narrower bandwidth) for the binning not to show.
    """
    position = (np.asarray(samples, dtype=np.float64) - lo) / step
    left = np.clip(np.floor(position).astype(np.int64), 0, n - 2)
    right_share = np.clip(position - left, 0.0, 1.0)
    counts = np.bincount(left, 1 - right_share, minlength=n) + np.bincount(left + 1, right_share, minlength=n)
    reach = min(n - 1, int(np.ceil(5 * bandwidth / step)))
    offsets = np.arange(-reach, reach + 1) * step
    kernel = np.exp(-0.5 * (offsets / bandwidth) ** 2)
    kernel /= kernel.sum()  # a kernel narrower than a grid step stays a unit of mass, not a sliver
    size = 1 << int(np.ceil(np.log2(n + 2 * reach + 1)))
    smooth = np.fft.irfft(np.fft.rfft(counts, size) * np.fft.rfft(kernel, size), size)[reach:reach + n]
    density = np.clip(smooth, 0.0, None)
    return density / (density.sum() * step)


def overlap_area(a: np.ndarray, b: np.ndarray) -> float:
    """``integral of min(p, q)``, p and q the Gaussian KDEs (Silverman's bandwidth) of ``a`` and ``b``
    on a grid that covers both; 1 for identical distributions, 0 for far-apart ones."""
    a, b = np.asarray(a, dtype=np.float64).ravel(), np.asarray(b, dtype=np.float64).ravel()
    if len(a) == 0 or len(b) == 0:
        return float("nan")
    span = max(a.max(), b.max()) - min(a.min(), b.min())
    floor = 1e-3 * span if span > 0 else 1.0  # all samples equal: a narrow bump, not a spike of zero width
    h_a, h_b = max(silverman(a), floor), max(silverman(b), floor)
    lo = min(a.min(), b.min()) - 5 * max(h_a, h_b)
    hi = max(a.max(), b.max()) + 5 * max(h_a, h_b)
    step = max(min(h_a, h_b) / 4, (hi - lo) / (MAX_GRID - 1))
    n = int(np.ceil((hi - lo) / step)) + 1
    p, q = kde_on_grid(a, h_a, lo, step, n), kde_on_grid(b, h_b, lo, step, n)
    return float(np.minimum(p, q).sum() * step)


def overlaps(candidate: SegmentSet, reference: SegmentSet) -> tuple[float, ...]:
    """The overlap area of each feature (``FEATURES`` order): inter-set distances against intra-set ones."""
    return tuple(overlap_area(inter_distances(candidate, reference, f), intra_distances(reference, f))
                 for f in range(len(FEATURES)))


# -- the floor: random notes ------------------------------------------------------------------


def random_like(segment: np.ndarray, columns: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """A segment ``(S, P)`` with the notes of ``segment`` (their count and lengths) at random onsets,
    each on a column drawn uniformly from ``columns`` (the songs' pitch range)."""
    frames = len(segment)
    out = np.zeros_like(segment)  # binary, or marked as the songs are
    _, _, lengths = notes_of(segment)
    for length, onset, column in zip(lengths, rng.integers(0, frames, len(lengths)), rng.choice(columns, len(lengths))):
        out[onset:onset + length, column] = True  # cut at the segment's end, as a real note is
        if out.dtype != bool:
            out[onset, column] = STRUCK
    return out


# -- the report --------------------------------------------------------------------------------


@dataclass(frozen=True)
class QualityReport:
    """Overlap areas per feature (``FEATURES`` order) of the three candidate sets against the songs."""

    model: tuple[float, ...]  # takes at random points of the pad against all the songs
    ceiling: tuple[float, ...]  # one half of the songs against the other (nan with fewer than 2 songs)
    floor: tuple[float, ...]  # random notes against all the songs
    songs: int
    segments: int  # the songs' segments of 8 beats
    takes: int
    take_beats: int
    density: float
    temperature: float
    seconds: float  # what measuring took
    key: str = ""  # the takes' key, "D minor at key strength 0.95"; "" as the model plays
    played: tuple[float, ...] = ()  # SUMMARY of the takes' segments
    sung: tuple[float, ...] = ()  # SUMMARY of the songs' segments

    @staticmethod
    def _mean(row: tuple[float, ...]) -> float:
        return float(np.mean(row))

    @property
    def overall(self) -> float:
        return self._mean(self.model)

    @property
    def ceiling_overall(self) -> float:
        return self._mean(self.ceiling)

    @property
    def floor_overall(self) -> float:
        return self._mean(self.floor)

    @property
    def ratio(self) -> float:
        """The model's overall overlap as a share of the ceiling's."""
        return self.overall / self.ceiling_overall if self.ceiling_overall > 0 else float("nan")

    @property
    def judged(self) -> bool:
        """Whether the songs' halves are more alike than random notes are to them: else the songs are too
        few, or too unlike each other, for any candidate to be judged against them."""
        return bool(self.ceiling_overall > self.floor_overall)

    @property
    def plays_like_the_songs(self) -> bool:
        return self.judged and self.ratio >= BAR

    def line(self) -> str:
        return (f"quality: {self.overall:.2f} overlap, {self.ratio:.2f}x the songs' own {self.ceiling_overall:.2f} "
                f"(random notes {self.floor_overall:.2f})")

    def table(self) -> str:
        rows = [f"{'feature':<22} {'model':>6} {'songs':>6} {'random':>6}"]
        for i, name in enumerate(FEATURES):
            rows.append(f"{name:<22} {self.model[i]:6.2f} {self.ceiling[i]:6.2f} {self.floor[i]:6.2f}")
        rows.append(f"{'overall':<22} {self.overall:6.2f} {self.ceiling_overall:6.2f} {self.floor_overall:6.2f}")
        rows.append(f"{'model / songs':<22} {self.ratio:6.2f}")
        if self.played and self.sung:
            rows.append(f"per {SEGMENT_BEATS} beats, model (songs): {self.summary_line()}")
        rows.append(f"({self.takes} takes of {self.take_beats} beats at density {self.density:g}, temperature "
                    f"{self.temperature:g}{', in ' + self.key if self.key else ''}; "
                    f"{self.songs} songs, {self.segments} segments of {SEGMENT_BEATS} beats; "
                    f"songs: each half of them against the other; random: notes with the songs' counts, lengths and range; "
                    f"{self.seconds:.1f} s)")
        return "\n".join(rows)

    def summary_line(self) -> str:
        return "; ".join(f"{name} {_counted(name, a)} ({_counted(name, b)})"
                         for name, a, b in zip(SUMMARY, self.played, self.sung))

    def verdict(self) -> str:
        """What a musician should make of it, in a line."""
        if not np.isfinite(self.ratio):
            return f"no ceiling to compare with (it needs 2 songs or more); the model's overlap is {self.overall:.2f}"
        if not self.judged:
            return (f"no verdict: one half of the songs is no more like the other ({self.ceiling_overall:.2f}) than "
                    f"random notes are like them ({self.floor_overall:.2f}); too few songs, or too unlike each other, "
                    f"to judge the model ({self.overall:.2f}) by")
        gaps = sorted(range(len(FEATURES)), key=lambda i: self.model[i] - self.ceiling[i])[:2]
        furthest = ", ".join(f"{FEATURES[i]} {self.model[i]:.2f} against {self.ceiling[i]:.2f}" for i in gaps)
        if self.plays_like_the_songs:
            return (f"plays like the songs: {self.ratio:.2f} of the ceiling (the bar is {BAR}); "
                    f"furthest from them: {furthest}")
        below = " and below random notes" if self.overall < self.floor_overall else ""
        return (f"falls short: {self.ratio:.2f} of the ceiling, under the bar of {BAR}{below}; "
                f"furthest from the songs: {furthest}")


def measure_quality(checkpoint: "Checkpoint", rolls: Sequence[np.ndarray], takes: int = TAKES,
                    take_beats: int = TAKE_BEATS, seed: int = 0, density: float = 0.5,
                    temperature: float = 1.0, splits: int = SPLITS, key: int | None = None, scale: str = "major",
                    key_strength: float = DEFAULT_KEY_STRENGTH,
                    on_take: Callable[[np.ndarray, np.ndarray | None], None] | None = None) -> QualityReport:
    """The model, the songs' ceiling and random notes, each against the songs ``rolls``.

    ``rolls``: one roll ``(T, P)`` per song on the checkpoint's pitches and frame timing, binary,
    or :func:`marked` with the songs' onsets for a model of onsets.
    The model plays ``takes`` takes of ``take_beats`` beats, each at a point drawn uniformly on
    the pad (seeded by ``seed``) through the stream and gate ``serve`` plays, from a cold start,
    at ``density`` and ``temperature``: take k is the take ``render_take`` plays seeded ``seed + k``,
    all decoded together as voices of one stream (``steering.play_takes``); silent segments of a
    take count.
    The ceiling splits the songs in two halves at random (``seed``), each half the reference of
    the other, and averages both directions of ``splits`` splits (one split's figure moves by up
    to 0.03 with the seed on 43 chorales). The songs' segments are thinned at random to
    ``MAX_SEGMENTS``. ValueError when no song has a segment of 8 beats.
    ``key``, ``scale``, ``key_strength``: the takes play in key (``play/key.py``); ``on_take`` is
    handed each take as it was played, its frames ``(T, P)`` and where its notes start (None for a
    model of the binary roll), for a caller that measures more of it.
    """
    from .steering import play_takes

    started = time.perf_counter()
    rng = np.random.default_rng(seed)
    timing, pitches = checkpoint.timing, np.asarray(checkpoint.pitches)
    frames, sixteenth = segment_frames(timing), sixteenth_frames(timing)
    by_song = [s for s in (segments_of(np.asarray(r), frames) for r in rolls) if s]
    if not by_song:
        raise ValueError(f"none of the {len(rolls)} songs has {SEGMENT_BEATS} beats ({frames} frames) with notes")
    segments = [s for song in by_song for s in song]
    rows = np.arange(len(segments))
    if len(rows) > MAX_SEGMENTS:  # a thousand tell as much, and the distances grow as the square
        rows = np.sort(rng.choice(len(rows), MAX_SEGMENTS, replace=False))
    reference = SegmentSet.of(by_song, pitches, sixteenth).subset(rows)

    plane = checkpoint.latent_plane()
    steps = max(frames, round(take_beats * frames / SEGMENT_BEATS))
    zs = [plane.z_at(*rng.uniform(0.0, 1.0, 2)) for _ in range(takes)]
    played = []
    for sound, struck in play_takes(checkpoint, zs, steps, seed, density=density, temperature=temperature, key=key,
                                    scale=scale, key_strength=key_strength):
        if on_take is not None:
            on_take(sound, struck)
        played.append(segments_of(marked(sound, struck), frames, keep_silent=True))
    takes_set = SegmentSet.of(played, pitches, sixteenth)
    model = overlaps(takes_set, reference)

    ceiling = (float("nan"),) * len(FEATURES)
    songs = np.unique(reference.song)
    if len(songs) >= 2:
        both_ways = []
        for _ in range(splits):
            first = np.isin(reference.song, rng.permutation(songs)[:(len(songs) + 1) // 2])
            halves = reference.subset(np.flatnonzero(first)), reference.subset(np.flatnonzero(~first))
            both_ways += [overlaps(halves[1], halves[0]), overlaps(halves[0], halves[1])]
        found = np.array(both_ways)  # (2 * splits, features), nan where a half had a single segment
        if np.isfinite(found).any(0).all():
            ceiling = tuple(np.nanmean(found, axis=0))

    sounding = np.flatnonzero(np.concatenate(segments).any(0))
    columns = np.arange(sounding.min(), sounding.max() + 1)  # the songs' range, every pitch in it alike
    noise = [[random_like(segments[i], columns, rng) for i in rows]]
    floor = overlaps(SegmentSet.of(noise, pitches, sixteenth), reference)
    return QualityReport(model=tuple(float(v) for v in model), ceiling=tuple(float(v) for v in ceiling),
                         floor=tuple(float(v) for v in floor), songs=len(by_song), segments=len(reference),
                         takes=takes, take_beats=take_beats, density=density, temperature=temperature,
                         seconds=time.perf_counter() - started,
                         key=f"{key_name(key, scale)} at key strength {key_strength:g}"
                         if key is not None and key_strength > 0 else "",
                         played=takes_set.summary(), sung=reference.summary())


def _counted(name: str, value: float) -> str:
    return f"{100 * value:.0f} %" if name == "one sixteenth long" else f"{value:.1f}"
