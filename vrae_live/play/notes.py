"""Frames to notes: a probability frame becomes a binary frame, binary frames become note events.

Pure (numpy only, no IO). Two steps, kept apart so each is tested on its own:

- :class:`FrameGate` turns a frame of note probabilities ``(P,)`` into a binary
  frame ``(P,)`` with hysteresis, minimum and maximum note lengths and a
  polyphony limit.
- :class:`NoteEmitter` turns consecutive binary frames into note on/off events,
  remembering the MIDI note and channel each sounding note was started with.

``P = len(pitches)``; index ``i`` of a frame is MIDI note ``pitches[i]``. A frame
lasts one step of the frame clock (``1/fs`` seconds, or a grid step in beats);
lengths below are counted in frames.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import numpy as np

from ..errors import ConfigError

# Probabilities are clipped this far from 0 and 1 before the logit, so a
# decoder that outputs exactly 0 or 1 gives a finite logit.
_PROB_EPS = 1e-6


@dataclass(frozen=True)
class NoteSettings:
    """How probability frames become notes.

    on_threshold: a silent pitch starts when its probability reaches this
        (temperature 0).
    off_threshold: a sounding pitch stops when its probability falls below
        this; lower than ``on_threshold``, so a probability wavering between
        the two neither starts nor stops a note (hysteresis, no flicker).
    min_len: frames a note sounds at least, whatever its probability.
    max_len: frames after which a note is released, or None for no limit.
        A pitch released this way is locked until its probability falls below
        ``off_threshold``: a decoder stuck on a fixed point would otherwise
        turn a stuck note into a stuck repeated note.
    polyphony: most pitches sounding at once, or None for no limit; the most
        probable win (see :meth:`FrameGate.step`).
    velocity_range: (low, high) MIDI velocities for velocity-from-probability:
        probability 0 maps to low, 1 to high, linearly.
    """

    on_threshold: float = 0.5
    off_threshold: float = 0.35
    min_len: int = 1
    max_len: int | None = None
    polyphony: int | None = 8
    velocity_range: tuple[int, int] = (40, 110)

    def __post_init__(self) -> None:
        if not 0.0 < self.on_threshold <= 1.0:
            raise ConfigError(f"on_threshold must be in (0, 1], not {self.on_threshold}")
        if not 0.0 <= self.off_threshold < self.on_threshold:
            raise ConfigError(
                f"off_threshold must be in [0, on_threshold={self.on_threshold}), not {self.off_threshold}"
            )
        if self.min_len < 1:
            raise ConfigError(f"min_len must be at least 1 frame, not {self.min_len}")
        if self.max_len is not None and self.max_len < self.min_len:
            raise ConfigError(f"max_len ({self.max_len}) must be at least min_len ({self.min_len})")
        if self.polyphony is not None and self.polyphony < 1:
            raise ConfigError(f"polyphony must be at least 1 (or None for no limit), not {self.polyphony}")
        low, high = self.velocity_range
        if not 1 <= low <= high <= 127:
            raise ConfigError(f"velocity range {low}-{high} must satisfy 1 <= LOW <= HIGH <= 127")


def temper(probs: np.ndarray, temperature: float) -> np.ndarray:
    """``sigmoid(logit(p) / temperature)``: below 1 sharpens towards 0/1, above 1 flattens towards 0.5."""
    p = np.clip(np.asarray(probs, dtype=np.float64), _PROB_EPS, 1.0 - _PROB_EPS)
    logits = np.log(p) - np.log1p(-p)
    return 1.0 / (1.0 + np.exp(-logits / temperature))


class FrameGate:
    """Probability frames ``(P,)`` to binary frames ``(P,)``, one frame per :meth:`step`.

    Stateful: it remembers which pitches sound, for how many frames, and which
    are locked after reaching ``max_len``. The number of pitches is fixed by
    the first frame.
    """

    def __init__(self, settings: NoteSettings | None = None, *, seed: int | None = None) -> None:
        self.settings = settings or NoteSettings()
        self._default_rng = np.random.default_rng(seed)
        self._on: np.ndarray | None = None  # (P,) bool, sounding
        self._age: np.ndarray | None = None  # (P,) int, frames sounded so far
        self._locked: np.ndarray | None = None  # (P,) bool, released by max_len, waiting to fall

    def reset(self) -> None:
        """Forget every sounding note (after a panic, or a jump in the stream)."""
        self._on = self._age = self._locked = None

    @property
    def sounding(self) -> np.ndarray:
        """(P,) bool: pitches on after the last step (all False before the first)."""
        return np.zeros(0, bool) if self._on is None else self._on.copy()

    def step(self, probs: np.ndarray, temperature: float = 0.0, rng: np.random.Generator | None = None) -> np.ndarray:
        """The binary frame ``(P,)`` for one probability frame ``(P,)``.

        The gate works on ``q = probs`` at temperature 0 and on
        ``q = temper(probs, temperature)`` above it. Rules, in order:

        1. A sounding pitch younger than ``min_len`` frames keeps sounding.
        2. A sounding pitch that has sounded ``max_len`` frames stops and is
           locked. A locked pitch unlocks on a frame where ``q < off_threshold``;
           from that frame on it may start again by rule 4 (at temperature 0
           that needs ``q >= on_threshold``, so a later frame).
        3. Any other sounding pitch keeps sounding while ``q >= off_threshold``.
        4. A silent, unlocked pitch is a candidate to start when
           ``q >= on_threshold`` (temperature 0), or when ``u < q`` with
           ``u = rng.random(P)`` drawn once per step for all pitches
           (temperature > 0), so the random stream, and with it the output,
           depends only on the rng and the inputs.
        5. Polyphony: pitches of rule 1 keep their voices; the remaining voices
           go to the pitches of rules 3 and 4 in order of falling ``q``. On a
           tie a sounding pitch beats a candidate, then the lower index wins,
           so a candidate must be strictly more probable to take a voice.

        ``rng`` defaults to the gate's own generator (``seed`` at construction).
        """
        q = np.asarray(probs, dtype=np.float64)
        if q.ndim != 1:
            raise ValueError(f"a probability frame has shape (P,), not {q.shape}")
        if temperature < 0 or not np.isfinite(temperature):
            raise ValueError(f"temperature must be 0 or positive, not {temperature}")
        n = q.shape[0]
        if self._on is None:
            self._on = np.zeros(n, bool)
            self._age = np.zeros(n, np.int64)
            self._locked = np.zeros(n, bool)
        elif n != self._on.shape[0]:
            raise ValueError(f"frame has {n} pitches; this gate was started with {self._on.shape[0]}")

        s = self.settings
        sampling = temperature > 0
        if sampling:
            q = temper(q, temperature)
            draws = (rng if rng is not None else self._default_rng).random(n)

        on, age = self._on, self._age
        protected = on & (age < s.min_len)
        if s.max_len is None:
            expired = np.zeros(n, bool)
        else:
            expired = on & (age >= s.max_len)  # max_len >= min_len, so never a protected one
        self._locked = (self._locked | expired) & ~(q < s.off_threshold)
        sustaining = on & ~protected & ~expired & (q >= s.off_threshold)
        if sampling:
            starting = ~on & ~self._locked & (draws < q)
        else:
            starting = ~on & ~self._locked & (q >= s.on_threshold)

        new_on = protected | sustaining | starting
        if s.polyphony is not None and new_on.sum() > s.polyphony:
            free_voices = max(s.polyphony - int(protected.sum()), 0)
            competing = np.flatnonzero(sustaining | starting)
            # lexsort sorts by the last key first: falling q, then sounding first, then index.
            order = np.lexsort((competing, ~on[competing], -q[competing]))
            winners = competing[order[:free_voices]]
            new_on = protected.copy()
            new_on[winners] = True

        self._age = np.where(new_on, np.where(on, age + 1, 1), 0)
        self._on = new_on
        return new_on.copy()


class GateBank:
    """:class:`FrameGate`'s rules for several gates at once, one row each (a voice each).

    ``step(rows, probs)`` steps the gates ``rows`` (ascending row numbers, or None for all)
    on probability frames ``(B, P)``, one row each, in one set of array operations; row r
    gives what a FrameGate with the same settings, stepped on that row's frames alone, gives.
    ``draws (B, P)``: the uniform draws of each row at temperature > 0, what FrameGate's
    ``rng.random(P)`` would draw for it. ``tests/test_notes.py`` checks the rows against
    FrameGates, polyphony ties and all.
    """

    def __init__(self, count: int, n_pitches: int, settings: NoteSettings | None = None) -> None:
        self.settings = settings or NoteSettings()
        self.on = np.zeros((count, n_pitches), bool)  # sounding
        self.age = np.zeros((count, n_pitches), np.int64)  # frames sounded so far
        self.locked = np.zeros((count, n_pitches), bool)  # released by max_len, waiting to fall

    def reset(self, row: int) -> None:
        """Gate ``row`` forgets every sounding note."""
        self.on[row], self.age[row], self.locked[row] = False, 0, False

    def step(self, rows: np.ndarray | None, probs: np.ndarray, temperature: float = 0.0,
             draws: np.ndarray | None = None) -> np.ndarray:
        """The binary frames ``(B, P)`` of gates ``rows`` for probability frames ``probs (B, P)``."""
        q = np.asarray(probs, dtype=np.float64)
        if temperature < 0 or not np.isfinite(temperature):
            raise ValueError(f"temperature must be 0 or positive, not {temperature}")
        s = self.settings
        every = rows is None
        on, age, locked = (self.on, self.age, self.locked) if every else (self.on[rows], self.age[rows],
                                                                          self.locked[rows])
        if q.shape != on.shape:
            raise ValueError(f"probability frames of shape {q.shape} for gates of shape {on.shape}")
        sampling = temperature > 0
        if sampling:
            if draws is None:
                raise ValueError("sampling (temperature > 0) needs a draw for every pitch of every row")
            q = temper(q, temperature)
        protected = on & (age < s.min_len)
        falling = q < s.off_threshold
        if s.max_len is None:
            locked = locked & ~falling
            sustaining = on & ~protected & ~falling
        else:
            expired = on & (age >= s.max_len)
            locked = (locked | expired) & ~falling
            sustaining = on & ~protected & ~expired & ~falling
        starting = ~on & ~locked & ((draws < q) if sampling else (q >= s.on_threshold))
        new_on = protected | sustaining | starting
        if s.polyphony is not None:
            for r in np.flatnonzero(new_on.sum(axis=1) > s.polyphony):  # falling q, then sounding first, then index
                free = max(s.polyphony - int(protected[r].sum()), 0)
                competing = np.flatnonzero(sustaining[r] | starting[r])
                order = np.lexsort((competing, ~on[r, competing], -q[r, competing]))
                new_on[r] = protected[r]
                new_on[r, competing[order[:free]]] = True
        age = np.where(new_on, np.where(on, age + 1, 1), 0)
        if every:
            self.on, self.age, self.locked = new_on, age, locked
        else:
            self.on[rows], self.age[rows], self.locked[rows] = new_on, age, locked
        return new_on.copy()


@dataclass(frozen=True)
class NoteEvent:
    """One note on or off. ``velocity`` is 0 for an off; ``channel`` is 0..15."""

    kind: str  # "on" or "off"
    note: int
    velocity: int
    channel: int


class NoteEmitter:
    """Consecutive binary frames ``(P,)`` to :class:`NoteEvent` lists.

    A note remembers the MIDI note and channel it was started with, so changing
    ``transpose`` or ``channel`` while it sounds never leaves it hanging: its
    off goes to where its on went. A pitch whose note cannot be started (out
    of 0..127 after transposing, or its (channel, note) already sounding for
    another pitch) stays silent until the gate releases it, rather than
    starting in the middle of its frame run later.
    """

    def __init__(self, settings: NoteSettings | None = None) -> None:
        self.settings = settings or NoteSettings()
        # pitch index -> (channel, note) it sounds, or None when held silent
        self._held: dict[int, tuple[int, int] | None] = {}

    @property
    def sounding(self) -> frozenset[tuple[int, int]]:
        """The (channel, note) pairs switched on and not yet off."""
        return frozenset(v for v in self._held.values() if v is not None)

    def velocity_for(self, prob: float) -> int:
        """Velocity 1..127 from a probability: linear over ``settings.velocity_range``."""
        low, high = self.settings.velocity_range
        p = min(max(float(prob), 0.0), 1.0) if np.isfinite(prob) else 0.0
        return int(np.clip(round(low + p * (high - low)), 1, 127))

    def step(
        self,
        frame: np.ndarray,
        probs: np.ndarray,
        pitches: Sequence[int],
        *,
        velocity: int | None = None,
        transpose: int = 0,
        channel: int = 0,
        gain: float = 1.0,
        busy: frozenset[tuple[int, int]] = frozenset(),
    ) -> list[NoteEvent]:
        """Events that take the instrument from the previous frame to ``frame``: offs first, then ons.

        frame: (P,) bool from :meth:`FrameGate.step`.
        probs: (P,) probabilities, for velocity when ``velocity`` is None.
        pitches: P MIDI note numbers.
        velocity: a fixed velocity 1..127, or None for velocity from probability.
        transpose: semitones added to new notes.
        channel: MIDI channel 0..15 for new notes.
        gain: 0..1, scales the velocity of new notes (a voice coming in or fading out), at least 1.
        busy: (channel, note) pairs that other emitters hold (other voices): not started here.
        """
        frame = np.asarray(frame, dtype=bool)
        if frame.ndim != 1 or len(pitches) != frame.shape[0]:
            raise ValueError(f"frame of shape {frame.shape} does not match {len(pitches)} pitches")
        if velocity is not None and not 1 <= velocity <= 127:
            raise ValueError(f"velocity must be 1..127 or None, not {velocity}")
        if not 0 <= channel <= 15:
            raise ValueError(f"MIDI channel must be 0..15, not {channel}")

        events: list[NoteEvent] = []
        for index in sorted(i for i in self._held if not frame[i]):
            target = self._held.pop(index)
            if target is not None:
                events.append(NoteEvent("off", target[1], 0, target[0]))

        sounding = self.sounding | busy
        for index in np.flatnonzero(frame):
            index = int(index)
            if index in self._held:
                continue
            note = int(pitches[index]) + int(transpose)
            if not 0 <= note <= 127 or (channel, note) in sounding:
                self._held[index] = None
                continue
            vel = velocity if velocity is not None else self.velocity_for(probs[index])
            if gain != 1.0:
                vel = max(1, round(vel * gain))
            events.append(NoteEvent("on", note, int(vel), channel))
            self._held[index] = (channel, note)
            sounding = sounding | {(channel, note)}
        return events

    def all_off(self) -> list[NoteEvent]:
        """Offs for every sounding note; afterwards nothing sounds or is held."""
        events = [NoteEvent("off", note, 0, ch) for ch, note in sorted(self.sounding)]
        self._held.clear()
        return events
