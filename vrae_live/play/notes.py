"""Frames to notes: a probability frame becomes a binary frame, binary frames become note events.

Pure (numpy only, no IO). Two steps, kept apart so each is tested on its own:

- :class:`Gate` turns frames of note probabilities ``(B, P)``, one row a voice, into
  binary frames ``(B, P)`` with hysteresis, minimum and maximum note lengths and a
  polyphony limit; one voice is a gate of one row.
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
        probable win (see :meth:`Gate.step`).
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


class Gate:
    """Probability frames to binary frames, for one voice or several: row ``k`` is voice ``k``.

    Stateful: it remembers, per voice and pitch, which pitches sound, for how many frames,
    and which are locked after reaching ``max_len``. ``(B, P)``: the voices stepped together
    (``B <= voices``) and the model's pitches. One voice is a gate of one row, stepped with
    :meth:`step_frame` on ``(P,)`` frames. Rows never interact: a row gives what a gate of
    one voice, stepped on that row's frames and draws alone, gives.
    """

    def __init__(self, voices: int, n_pitches: int, settings: NoteSettings | None = None, *,
                 seed: int | None = None) -> None:
        self.settings = settings or NoteSettings()
        self._rng = np.random.default_rng(seed)  # step_frame's draws when it is given no rng
        self.on = np.zeros((voices, n_pitches), bool)  # sounding
        self.age = np.zeros((voices, n_pitches), np.int64)  # frames sounded so far
        self.locked = np.zeros((voices, n_pitches), bool)  # released by max_len, waiting to fall

    def reset(self, row: int | None = None) -> None:
        """Voice ``row`` (or every voice) forgets its sounding notes (a panic, a jump in the stream)."""
        rows = slice(None) if row is None else row
        self.on[rows], self.age[rows], self.locked[rows] = False, 0, False

    def step_frame(self, probs: np.ndarray, temperature: float = 0.0,
                   rng: np.random.Generator | None = None) -> np.ndarray:
        """The binary frame ``(P,)`` of a one-voice gate for one probability frame ``(P,)``.

        At temperature > 0 the draws are ``rng.random(P)``, the gate's own generator
        (``seed`` at construction) when ``rng`` is None.
        """
        q = np.asarray(probs, dtype=np.float64)
        if q.ndim != 1:
            raise ValueError(f"a probability frame has shape (P,), not {q.shape}")
        draws = (rng if rng is not None else self._rng).random(q.shape[0])[None] if temperature > 0 else None
        return self.step(None, q[None], temperature, draws)[0]

    def step(self, rows: np.ndarray | None, probs: np.ndarray, temperature: float = 0.0,
             draws: np.ndarray | None = None) -> np.ndarray:
        """The binary frames ``(B, P)`` of voices ``rows`` for probability frames ``probs (B, P)``.

        rows: ascending voice numbers, or None for every voice.
        draws: ``(B, P)`` uniform draws in [0, 1), needed at temperature > 0.

        The gate works on ``q = probs`` at temperature 0 and on
        ``q = temper(probs, temperature)`` above it. Rules, in order, for each row:

        1. A sounding pitch younger than ``min_len`` frames keeps sounding.
        2. A sounding pitch that has sounded ``max_len`` frames stops and is
           locked. A locked pitch unlocks on a frame where ``q < off_threshold``;
           from that frame on it may start again by rule 4 (at temperature 0
           that needs ``q >= on_threshold``, so a later frame).
        3. Any other sounding pitch keeps sounding while ``q >= off_threshold``.
        4. A silent, unlocked pitch is a candidate to start when
           ``q >= on_threshold`` (temperature 0), or when ``draw < q``
           (temperature > 0), so the output depends only on the draws and the inputs.
        5. Polyphony: pitches of rule 1 keep their voices; the remaining voices
           go to the pitches of rules 3 and 4 in order of falling ``q``. On a
           tie a sounding pitch beats a candidate, then the lower index wins,
           so a candidate must be strictly more probable to take a voice.
        """
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
            expired = on & (age >= s.max_len)  # max_len >= min_len, so never a protected one
            locked = (locked | expired) & ~falling
            sustaining = on & ~protected & ~expired & ~falling
        starting = ~on & ~locked & ((draws < q) if sampling else (q >= s.on_threshold))
        new_on = protected | sustaining | starting
        if s.polyphony is not None:
            for r in np.flatnonzero(new_on.sum(axis=1) > s.polyphony):
                free = max(s.polyphony - int(protected[r].sum()), 0)
                competing = np.flatnonzero(sustaining[r] | starting[r])
                # lexsort sorts by the last key first: falling q, then sounding first, then index.
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

        frame: (P,) bool, a row of :meth:`Gate.step`.
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
