"""Playing in key: a key and a scale, the chord someone holds, and how hard the notes lean to them.

Pure (numpy only). The stream leans each voice's frame before the gate decides it
(``stream.py``); this module says by how much, pitch by pitch.

A *lean* multiplies the odds of a note starting on each pitch (``p / (1 - p)``), which is
adding ``log(weight)`` to the decoder's logit: the model's own line, with the pitches outside
the key made rarer. At key strength ``s``:

- a pitch in the chord held (``serve --follow``) keeps its odds: weight 1;
- a pitch in the scale: weight 1 without a chord, ``1 - CHORD_LEAN * s`` beside a chord
  (the chord is leaned on hardest, the scale next); with no key the scale is chromatic;
- any other pitch: weight ``1 - s``, so 0 plays the model as it is and 1 never starts it.

Only the start of a note leans: a note already sounding ends as it would have (the stream
leans a sounding pitch's chance of going on not at all, and its chance of being struck again
as a start), unless ``--key-cut`` asks for the notes outside a new key or chord to end at once.
The pitch classes are those of the notes sent, after the voice's transpose.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import numpy as np

from ..errors import ConfigError

# Semitones above the tonic of each scale a musician can name (serve --scale, /vrae/scale).
SCALES: dict[str, tuple[int, ...]] = {
    "major": (0, 2, 4, 5, 7, 9, 11),
    "minor": (0, 2, 3, 5, 7, 8, 10),  # natural minor
    "harmonic-minor": (0, 2, 3, 5, 7, 8, 11),
    "melodic-minor": (0, 2, 3, 5, 7, 9, 11),  # ascending
    "ionian": (0, 2, 4, 5, 7, 9, 11),
    "dorian": (0, 2, 3, 5, 7, 9, 10),
    "phrygian": (0, 1, 3, 5, 7, 8, 10),
    "lydian": (0, 2, 4, 6, 7, 9, 11),
    "mixolydian": (0, 2, 4, 5, 7, 9, 10),
    "aeolian": (0, 2, 3, 5, 7, 8, 10),
    "locrian": (0, 1, 3, 5, 6, 8, 10),
    "major-pentatonic": (0, 2, 4, 7, 9),
    "minor-pentatonic": (0, 3, 5, 7, 10),
    "blues": (0, 3, 5, 6, 7, 10),
    "chromatic": tuple(range(12)),
}
SCALE_ALIASES = {"natural-minor": "minor", "pentatonic": "major-pentatonic"}
# Semitones from a scale's tonic up to the tonic of the major key with its key signature (D dorian: C).
_SIGNATURE = {"minor": 3, "harmonic-minor": 3, "melodic-minor": 3, "aeolian": 3, "minor-pentatonic": 3, "blues": 3,
              "dorian": 10, "phrygian": 8, "lydian": 7, "mixolydian": 5, "locrian": 1}
_FLAT_MAJORS = frozenset({5, 10, 3, 8, 1})  # F, Bb, Eb, Ab, Db: their key signatures have flats

NOTE_NAMES = ("C", "C#", "D", "D#", "E", "F", "F#", "G", "G#", "A", "A#", "B")
FLAT_NAMES = ("C", "Db", "D", "Eb", "E", "F", "Gb", "G", "Ab", "A", "Bb", "B")
_LETTERS = {"C": 0, "D": 2, "E": 4, "F": 5, "G": 7, "A": 9, "B": 11}
_ACCIDENTALS = {"#": 1, "♯": 1, "s": 1, "b": -1, "♭": -1, "": 0}
KEY_SPELLINGS = "C, C#, Db, D, D#, Eb, E, F, F#, Gb, G, G#, Ab, A, A#, Bb, B (or 0..11)"

CHORD_LEAN = 0.5  # beside a chord, a scale tone's odds at key strength 1 (its pitch classes lean hardest)
DEFAULT_KEY_STRENGTH = 0.95  # measured by scripts/key_study.py (README, "Play in key")


def parse_key(name: str | int) -> int:
    """A key's pitch class 0..11 from ``C``, ``F#``, ``Bb``, ``eb`` (any case), or an integer 0..11."""
    if isinstance(name, (int, np.integer)) and not isinstance(name, bool):
        if 0 <= int(name) <= 11:
            return int(name)
        raise ConfigError(f"key {name}: a pitch class is 0..11 (0 is C)")
    text = str(name).strip()
    if text.isdigit():
        return parse_key(int(text))
    letter, accidental = text[:1].upper(), text[1:]
    if letter not in _LETTERS or accidental not in _ACCIDENTALS:
        raise ConfigError(f"unknown key {name!r}; a key is a note name: {KEY_SPELLINGS}")
    return (_LETTERS[letter] + _ACCIDENTALS[accidental]) % 12


def parse_scale(name: str) -> str:
    """The scale's name in :data:`SCALES` (case and spaces forgiven, ``natural minor`` is ``minor``)."""
    text = str(name).strip().lower().replace(" ", "-").replace("_", "-")
    text = SCALE_ALIASES.get(text, text)
    if text not in SCALES:
        raise ConfigError(f"unknown scale {name!r}; known: {', '.join(SCALES)}")
    return text


def signature(key: int, scale: str) -> int:
    """The major key with the key signature of ``key`` in ``scale`` (A minor and D dorian: 0, C major's):
    what a decoder told the key is told (``models/keys.py``)."""
    return (key + _SIGNATURE.get(scale, 0)) % 12


def key_name(key: int, scale: str) -> str:
    """``Eb major``, ``D# minor``, ``C minor``: the tonic spelt as the key signature spells it (flats
    where the major key of the same signature is F, Bb, Eb, Ab or Db)."""
    flats = signature(key, scale) in _FLAT_MAJORS
    return f"{(FLAT_NAMES if flats else NOTE_NAMES)[key]} {scale}"


def scale_classes(key: int, scale: str) -> frozenset[int]:
    """The pitch classes of ``scale`` on tonic ``key``."""
    return frozenset((key + step) % 12 for step in SCALES[scale])


@dataclass(frozen=True)
class Lean:
    """How one voice's notes lean this frame: ``weights (P,)`` multiply the odds of a note starting,
    ``barred (P,)`` may not start at all (a weight of 0), ``outside (P,)`` are neither in the
    chord nor in the scale (what ``--key-cut`` ends at a change)."""

    weights: np.ndarray
    barred: np.ndarray
    outside: np.ndarray


def lean_for(pitches: Sequence[int], transpose: int, key: int | None, scale: str, strength: float,
             chord: frozenset[int] = frozenset()) -> Lean | None:
    """The lean of a voice playing MIDI notes ``pitches + transpose``; None where nothing leans
    (no key and no chord, or strength 0)."""
    if (key is None and not chord) or strength <= 0.0:
        return None
    classes = (np.asarray(pitches, dtype=np.int64) + int(transpose)) % 12
    in_scale = np.isin(classes, sorted(scale_classes(key, scale))) if key is not None else np.ones(len(classes), bool)
    in_chord = np.isin(classes, sorted(chord)) if chord else np.zeros(len(classes), bool)
    s = min(float(strength), 1.0)
    scale_weight = 1.0 - CHORD_LEAN * s if chord else 1.0
    outside = ~in_scale & ~in_chord
    weights = np.where(in_chord, 1.0, np.where(in_scale, scale_weight, 1.0 - s))
    return Lean(weights=weights, barred=weights <= 0.0, outside=outside)


def lean_probabilities(probs: np.ndarray, weights: np.ndarray) -> np.ndarray:
    """``probs`` with their odds multiplied by ``weights`` (broadcast): ``p w / (p w + 1 - p)``."""
    leaned = probs * weights
    return leaned / (leaned + (1.0 - probs))
