"""Frames to notes: a probability frame becomes a binary frame, binary frames become note events.

Pure (numpy only, no IO). Two steps, kept apart so each is tested on its own:

- :class:`Gate` turns frames of note probabilities ``(B, P)``, one row a voice, into
  binary frames ``(B, P)`` with hysteresis, minimum and maximum note lengths and a
  polyphony limit; one voice is a gate of one row. For a model of onsets the frames are
  ``(B, 2P)``: each pitch's chance of sounding, then its chance of a note starting; a note
  starts only on an onset, holds while the model holds it, and is struck again only on an
  onset (the returned frames are ``(B, 2P)`` too: what sounds, then what was struck).
- :class:`NoteEmitter` turns consecutive binary frames into note on/off events,
  remembering the MIDI note and channel each sounding note was started with; a note
  struck again is an off and an on in the same frame.

``P = len(pitches)``; index ``i`` of a frame is MIDI note ``pitches[i]``. A frame
lasts one step of the frame clock (``1/fs`` seconds, or a grid step in beats);
lengths below are counted in frames.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace
from typing import Literal, NamedTuple, Sequence

import numpy as np

from ..errors import ConfigError

# Probabilities are clipped this far from 0 and 1 before the logit, so a
# decoder that outputs exactly 0 or 1 gives a finite logit.
_PROB_EPS = 1e-6

DEFAULT_POLYPHONY = 8  # most notes at once where no songs say how many (a checkpoint that does not)
SONGS: Literal["songs"] = "songs"  # polyphony: as many as the model's training songs keep to (live_stream)


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
    polyphony: most pitches sounding at once, or None for no limit; notes struck
        now win over held ones, then the most probable (see :meth:`Gate.step`).
        ``SONGS`` (the default): as many as the model's training songs keep to, which
        ``live_stream`` reads from the checkpoint (``DEFAULT_POLYPHONY`` where nothing says).
    velocity_range: (low, high) MIDI velocities for velocity-from-probability:
        probability 0 maps to low, 1 to high, linearly.
    """

    on_threshold: float = 0.5
    off_threshold: float = 0.35
    min_len: int = 1
    max_len: int | None = None
    polyphony: int | Literal["songs"] | None = SONGS
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
        if self.polyphony not in (None, SONGS) and self.polyphony < 1:
            raise ConfigError(f"polyphony must be at least 1 (or None for no limit), not {self.polyphony}")
        low, high = self.velocity_range
        if not 1 <= low <= high <= 127:
            raise ConfigError(f"velocity range {low}-{high} must satisfy 1 <= LOW <= HIGH <= 127")

    @property
    def voice_limit(self) -> int | None:
        """The polyphony the gate keeps to: ``DEFAULT_POLYPHONY`` for ``SONGS`` where no songs are known."""
        return DEFAULT_POLYPHONY if self.polyphony == SONGS else self.polyphony

    def for_songs(self, polyphony: int) -> "NoteSettings":
        """These settings, with ``SONGS`` read as ``polyphony``: the notes at once of a model's songs."""
        return replace(self, polyphony=polyphony) if self.polyphony == SONGS else self


def temper(probs: np.ndarray, temperature: float) -> np.ndarray:
    """``sigmoid(logit(p) / temperature)``: below 1 sharpens towards 0/1, above 1 flattens towards 0.5."""
    p = np.minimum(np.maximum(np.asarray(probs, dtype=np.float64), _PROB_EPS), 1.0 - _PROB_EPS)  # np.clip, at half its cost
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
        self.n_pitches = n_pitches
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
            raise ValueError(f"a probability frame has shape (P,) or (2P,), not {q.shape}")
        draws = (rng if rng is not None else self._rng).random(self.n_pitches)[None] if temperature > 0 else None
        return self.step(None, q[None], temperature, draws)[0]

    def step(self, rows: np.ndarray | None, probs: np.ndarray, temperature: float = 0.0,
             draws: np.ndarray | None = None, barred: np.ndarray | None = None,
             cut: np.ndarray | None = None) -> np.ndarray:
        """The binary frames ``(B, C)`` of voices ``rows`` for probability frames ``probs (B, C)``.

        rows: ascending voice numbers, or None for every voice.
        probs: ``C = P`` chances of sounding; or ``C = 2P``, those and then the chances of a note
            starting (a model of onsets).
        draws: ``(B, P)`` uniform draws in [0, 1), needed at temperature > 0: one a pitch.

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
           go first to the pitches that start now (rule 4), then to those that
           hold (rule 3), each in order of falling ``q``, the lower index first
           on a tie: a new note takes the voice of a held one, as a synthesizer
           steals its oldest voice, so a model of melodies at one voice plays a
           line, each note ending where the next begins.

        With onsets, rule 4 reads the chance of a note starting, ``o``, in place of ``q``, and
        a sounding pitch past rule 1 and not stopped by rule 2 is struck again on the same test
        (``draw < o``, or ``o >= on_threshold``): it sounds on with a new note, and ranks in
        rule 5 with the pitches that start. Candidates are ranked by ``o``, sounding pitches by ``q``.

        barred: ``(B, P)`` pitches that may not start, nor be struck again (a key at strength 1,
            ``key.py``); a barred pitch already sounding goes on by rules 1-3.
        cut: ``(B, P)`` sounding pitches that stop now, whatever rules 1-3 say (``--key-cut``).
        """
        q = np.asarray(probs, dtype=np.float64)
        s = self.settings
        on, age, locked = self._rows(rows)
        p = self.n_pitches
        onsets = q.ndim == 2 and q.shape[1] == 2 * p
        if q.shape[:1] != on.shape[:1] or q.shape[-1] != (2 * p if onsets else p):
            raise ValueError(f"probability frames of shape {q.shape} for gates of shape {on.shape}")
        if self._check(temperature, draws):
            q = temper(q, temperature)
            struck_now = draws < (q[:, p:] if onsets else q)
        else:
            struck_now = (q[:, p:] if onsets else q) >= s.on_threshold
        sound, strike = (q[:, :p], q[:, p:]) if onsets else (q, q)
        if barred is not None:
            struck_now &= ~barred
        kept = on if cut is None else on & ~cut
        protected = kept & (age < s.min_len)  # rule 1
        falling = sound < s.off_threshold
        expired = on & (age >= s.max_len) if s.max_len is not None else np.zeros_like(on)  # rule 2
        locked = (locked | expired) & ~falling
        open_ = kept & ~protected & ~expired
        again = open_ & struck_now if onsets else np.zeros_like(on)  # struck again: a model of onsets
        sustaining = open_ & ~falling & ~again  # rule 3
        starting = ~on & ~locked & struck_now  # rule 4
        new_on = protected | sustaining | again | starting
        self._limit(new_on, protected, sustaining, again | starting, np.where(on, sound, strike))  # rule 5
        struck = new_on & (starting | again)
        age = np.where(new_on, np.where(on & ~struck, age + 1, 1), 0)
        return self._keep(rows, on, age, locked, new_on, np.concatenate([new_on, struck], axis=1) if onsets else new_on)

    def _rows(self, rows: np.ndarray | None) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        if rows is None:
            return self.on, self.age, self.locked
        return self.on[rows], self.age[rows], self.locked[rows]

    @staticmethod
    def _check(temperature: float, draws: np.ndarray | None) -> bool:
        """Whether the gate samples; a bad temperature, or sampling without draws, raises."""
        if temperature < 0 or not math.isfinite(temperature):
            raise ValueError(f"temperature must be 0 or positive, not {temperature}")
        if temperature > 0 and draws is None:
            raise ValueError("sampling (temperature > 0) needs a draw for every pitch of every row")
        return temperature > 0

    def _limit(self, new_on: np.ndarray, protected: np.ndarray, holding: np.ndarray, struck: np.ndarray,
               q: np.ndarray) -> None:
        """Rule 5, polyphony, in place on ``new_on``."""
        limit = self.settings.voice_limit
        if limit is None:
            return
        over = np.flatnonzero(new_on.sum(axis=1) > limit)
        if not len(over):
            return
        rows = slice(None) if len(over) == len(new_on) else over  # every row over (one voice): views, not copies
        free = limit - protected[rows].sum(axis=1)  # voices left past rule 1, a row (none below 0)
        row, col = np.nonzero(holding[rows] | struck[rows])  # the competing pitches of the rows over the limit
        r = over[row]
        keys = (col, -q[r, col], ~struck[r, col])
        # every row at once: lexsort sorts by the last key first: the row (of several), struck first, falling q, index.
        order = np.lexsort(keys + (row,) if len(over) > 1 else keys)
        row, col = row[order], col[order]
        win = np.arange(len(row)) - np.searchsorted(row, row) < free[row]  # its place among the row's competitors
        new_on[rows] = protected[rows]
        new_on[over[row[win]], col[win]] = True

    def _keep(self, rows: np.ndarray | None, on: np.ndarray, age: np.ndarray, locked: np.ndarray,
              new_on: np.ndarray, out: np.ndarray) -> np.ndarray:
        """Remember the rows' new state; ``out`` (a copy) is what the step returns."""
        if rows is None:
            self.on, self.age, self.locked = new_on, age, locked
        else:
            self.on[rows], self.age[rows], self.locked[rows] = new_on, age, locked
        return out.copy()


class NoteEvent(NamedTuple):
    """One note on or off. ``velocity`` is 0 for an off; ``channel`` is 0..15. A tuple: made for every
    note of every voice, it costs a third of a frozen dataclass."""

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
        self._sounding: set[tuple[int, int]] = set()  # the pairs of _held that are not None

    @property
    def sounding(self) -> frozenset[tuple[int, int]]:
        """The (channel, note) pairs switched on and not yet off."""
        return frozenset(self._sounding)

    def velocity_for(self, prob: float) -> int:
        """Velocity 1..127 from a probability: linear over ``settings.velocity_range``."""
        low, high = self.settings.velocity_range
        p = float(prob)  # plain floats: numpy's scalar calls cost more than the rest of a note
        p = min(max(p, 0.0), 1.0) if math.isfinite(p) else 0.0
        return min(max(round(low + p * (high - low)), 1), 127)

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
        struck: np.ndarray | None = None,
    ) -> list[NoteEvent]:
        """Events that take the instrument from the previous frame to ``frame``: offs first, then ons.

        frame: (P,) bool, what sounds: the first ``P`` of a row of :meth:`Gate.step`.
        struck: (P,) bool, where a note starts (a model of onsets: the row's last ``P``); a
            sounding note struck again is switched off and on. None: a note starts where its pitch
            begins to sound.
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
        held, own = self._held, self._sounding
        kept = (frame if struck is None else frame & ~np.asarray(struck, dtype=bool)).tolist()
        for index in sorted(i for i in held if not kept[i]):
            target = held.pop(index)
            if target is not None:
                own.discard(target)
                events.append(NoteEvent("off", target[1], 0, target[0]))

        sounding = own | busy
        transpose = int(transpose)
        for index in np.flatnonzero(frame).tolist():
            if index in held:
                continue
            note = int(pitches[index]) + transpose
            if not 0 <= note <= 127 or (channel, note) in sounding:
                held[index] = None
                continue
            vel = velocity if velocity is not None else self.velocity_for(probs[index])
            if gain != 1.0:
                vel = max(1, round(vel * gain))
            events.append(NoteEvent("on", note, int(vel), channel))
            held[index] = (channel, note)
            own.add((channel, note))
            sounding.add((channel, note))
        return events

    def all_off(self) -> list[NoteEvent]:
        """Offs for every sounding note; afterwards nothing sounds or is held."""
        events = [NoteEvent("off", note, 0, ch) for ch, note in sorted(self._sounding)]
        self._held.clear()
        self._sounding.clear()
        return events
