"""MIDI files to piano rolls and back.

A full roll is a ``(T, 128)`` bool array, time first: ``roll[t, p]`` is True
while MIDI note number ``p`` sounds during frame ``t``. Its onsets are a second
``(T, 128)`` bool array, True on the frame where a note starts, so a note struck
again is told from one held (``with_onsets``: the two side by side, ``(T, 256)``).
The model sees a projection onto the list of pitches it uses (:func:`model_frames`):
a ``(T, P)`` roll whose column ``j`` is note number ``pitches[j]``, followed, for a
model of onsets, by the ``P`` onset columns of the same pitches.

How long a frame is comes from a :class:`~vrae_live.config.FrameTiming`:
``1 / fs`` seconds, or ``1 / steps_per_beat`` of a beat on a grid that follows
the file's tempo map (a beat is a quarter note, as in MIDI tempo and a DAW's
BPM).
"""

from __future__ import annotations

from pathlib import Path
from typing import Sequence

import numpy as np
import pretty_midi

from ..config import DEFAULT_BPM, FrameTiming
from ..errors import DataError

N_MIDI_PITCHES = 128

# Fine enough that frames of every usual grid (fs 10/16/20/25/30 at 120 BPM,
# 1/2/3/4/6/8 steps per beat) fall on whole ticks, so a written roll reads back exactly.
MIDI_RESOLUTION = 960


class UnusableSongError(DataError):
    """A MIDI file that gives no roll: unreadable, without notes, or drums only."""

    def __init__(self, path: str | Path, reason: str) -> None:
        super().__init__(f"{path}: {reason}")
        self.path = Path(path)
        self.reason = reason


# pretty_midi refuses a file whose last tick is past 10 million as "likely corrupt"; a long piece
# at a fine resolution gets there (music21 writes 10,080 ticks a beat: 17 minutes at 60 bpm),
# as do the Beethoven quartets music21 exports. Up to this many ticks such a file is read
# (pretty_midi then holds a float per tick: 400 MB at the limit, for the parse only).
MAX_TICKS = 50_000_000


def read_midi(path: str | Path) -> pretty_midi.PrettyMIDI:
    """``pretty_midi.PrettyMIDI(path)``, taking long files at fine resolutions up to ``MAX_TICKS``."""
    try:
        return pretty_midi.PrettyMIDI(str(path))
    except ValueError as err:
        if "largest tick" not in str(err):
            raise
    import pretty_midi.pretty_midi as module

    refused, module.MAX_TICK = module.MAX_TICK, MAX_TICKS
    try:
        return pretty_midi.PrettyMIDI(str(path))
    finally:
        module.MAX_TICK = refused


def load_roll(path: str | Path, timing: FrameTiming, with_onsets: bool = False) -> np.ndarray:
    """Read a MIDI file into a full piano roll.

    All pitched (non-drum) instruments are merged into one roll; drum tracks
    are left out. A note covers frames ``round(start)`` up to but excluding
    ``max(round(start) + 1, round(end))``, with times in frames, so even a
    note shorter than a frame keeps one frame.

    Parameters
    ----------
    path : str or Path
        The MIDI file.
    timing : FrameTiming
        ``fs``: each frame is ``1 / fs`` seconds. ``steps_per_beat``: each
        frame is ``1 / steps_per_beat`` quarter notes, following the file's
        tempo changes.
    with_onsets : bool
        Also the onsets, as columns 128..255.

    Returns
    -------
    roll : np.ndarray, shape (T, 128), or (T, 256) with onsets, dtype bool
        ``T`` is the end frame of the last note.

    Raises
    ------
    UnusableSongError
        The file cannot be parsed, has no notes, or has only drum notes.
    """
    try:
        midi = read_midi(path)
    except Exception as err:  # mido and pretty_midi raise many types for a bad file
        detail = f"{type(err).__name__}: {err}" if str(err) else type(err).__name__
        raise UnusableSongError(path, f"not a readable MIDI file ({detail})") from err

    pitched = [note for inst in midi.instruments if not inst.is_drum for note in inst.notes]
    if not pitched:
        has_drums = any(inst.notes for inst in midi.instruments if inst.is_drum)
        raise UnusableSongError(path, "only drum notes, no pitched instrument" if has_drums else "no notes")

    starts_s = np.array([note.start for note in pitched])
    ends_s = np.array([note.end for note in pitched])
    pitch = np.array([note.pitch for note in pitched])
    tempo_changes = midi.get_tempo_changes() if timing.steps_per_beat is not None else None
    return roll_of_notes(pitch, starts_s, ends_s, timing, tempo_changes, with_onsets)


def roll_of_notes(
    pitch: np.ndarray,
    starts_s: np.ndarray,
    ends_s: np.ndarray,
    timing: FrameTiming,
    tempo_changes: tuple[np.ndarray, np.ndarray] | None = None,
    with_onsets: bool = False,
) -> np.ndarray:
    """The full roll of notes given in seconds: what :func:`load_roll` makes of a file's pitched notes.

    Parameters
    ----------
    pitch, starts_s, ends_s : np.ndarray, shape (N,)
        MIDI note numbers, onsets and releases in seconds; at least one note.
    timing : FrameTiming
    tempo_changes : (np.ndarray, np.ndarray), each shape (K,), optional
        ``pretty_midi.PrettyMIDI.get_tempo_changes()``: seconds and quarter notes per minute;
        needed for a beat grid.
    with_onsets : bool
        Also each note's first frame, in columns 128..255.

    Returns
    -------
    roll : np.ndarray, shape (T, 128), or (T, 256) with onsets, dtype bool
    """
    if timing.fs is not None:
        starts, ends = starts_s * timing.fs, ends_s * timing.fs
    else:
        change_s, qpm = tempo_changes
        starts = beats_of_seconds(change_s, qpm, starts_s) * timing.steps_per_beat
        ends = beats_of_seconds(change_s, qpm, ends_s) * timing.steps_per_beat
    start_frames = np.rint(starts).astype(np.int64)
    end_frames = np.maximum(start_frames + 1, np.rint(ends).astype(np.int64))

    roll = np.zeros((int(end_frames.max()), N_MIDI_PITCHES * (2 if with_onsets else 1)), dtype=bool)
    for note_pitch, start, end in zip(pitch.tolist(), start_frames.tolist(), end_frames.tolist()):
        roll[start:end, note_pitch] = True
    if with_onsets:
        roll[start_frames, N_MIDI_PITCHES + pitch] = True
    return roll


def model_frames(roll: np.ndarray, pitches: Sequence[int], onsets: np.ndarray | None = None) -> np.ndarray:
    """What a model sees of a full roll ``(T, 128)``: the columns of ``pitches``, followed by
    their onset columns when ``onsets (T, 128)`` is given (a model of onsets): ``(T, P)`` or ``(T, 2P)``."""
    frames = roll[:, list(pitches)]
    return frames if onsets is None else np.concatenate([frames, onsets[:, list(pitches)]], axis=1)


def split_onsets(frames: np.ndarray, pitches: Sequence[int]) -> tuple[np.ndarray, np.ndarray | None]:
    """Model frames ``(..., P)`` or ``(..., 2P)`` to the sounding part and the onsets (None without)."""
    p = len(pitches)
    if frames.shape[-1] == p:
        return frames, None
    if frames.shape[-1] != 2 * p:
        raise ValueError(f"frames of {frames.shape[-1]} columns for {p} pitches")
    return frames[..., :p], frames[..., p:]


def seconds_to_beats(midi: pretty_midi.PrettyMIDI, seconds: np.ndarray) -> np.ndarray:
    """Times in seconds to fractional quarter-note beats, following the tempo map of ``midi``."""
    return beats_of_seconds(*midi.get_tempo_changes(), seconds)


def beats_of_seconds(change_s: np.ndarray, qpm: np.ndarray, seconds: np.ndarray) -> np.ndarray:
    """Times in seconds to fractional quarter-note beats, following a tempo map.

    ``change_s`` (K,) are the seconds where the tempo changes to ``qpm`` (K,) quarter notes per
    minute. The tempo is piecewise constant between tempo changes, so beats grow linearly inside
    each segment; past the last change the final tempo holds. (``get_beats()`` would count dotted
    quarters in 6/8, and stops at the file's end; MIDI tempo and a DAW's BPM count quarter notes.)
    """
    beats_per_s = qpm / 60.0
    beats_at_change = np.concatenate([[0.0], np.cumsum(np.diff(change_s) * beats_per_s[:-1])])
    segment = np.clip(np.searchsorted(change_s, seconds, side="right") - 1, 0, None)
    return beats_at_change[segment] + (seconds - change_s[segment]) * beats_per_s[segment]


def roll_to_midi(
    roll: np.ndarray,
    pitches: Sequence[int],
    timing: FrameTiming,
    bpm: float = DEFAULT_BPM,
    velocity: int = 80,
    program: int = 0,
    velocities: np.ndarray | None = None,
    onsets: np.ndarray | None = None,
) -> pretty_midi.PrettyMIDI:
    """Write a roll as one instrument; each run of on-frames becomes one note (a run is cut
    where ``onsets`` strikes its pitch again).

    Parameters
    ----------
    roll : np.ndarray, shape (T, P)
        Bool or 0/1 values; a cell is on when it is at least 0.5. Column ``j``
        is MIDI note number ``pitches[j]``.
    pitches : sequence of int, length P
    timing : FrameTiming
        Frame ``i`` starts at ``i * timing.frame_seconds(bpm)`` seconds.
    bpm : float
        The file's tempo in quarter notes per minute; for a beat grid it also
        sets the frame length.
    velocity : int
        Velocity of every note, unless ``velocities`` is given.
    program : int
        General MIDI program of the instrument.
    velocities : np.ndarray, shape (T, P), optional
        Per-cell velocities; a note takes the value at its onset frame,
        clipped to 1..127.
    onsets : np.ndarray, shape (T, P), optional
        Frames where a note starts: a sounding pitch struck there ends its
        note and starts another.

    Returns
    -------
    pretty_midi.PrettyMIDI
        Tempo ``bpm``, one pitched instrument.
    """
    on = np.asarray(roll) >= 0.5  # (T, P)
    if on.ndim != 2 or on.shape[1] != len(pitches):
        raise ValueError(f"roll of shape {on.shape} does not match {len(pitches)} pitches")
    if velocities is not None and np.shape(velocities) != on.shape:
        raise ValueError(f"velocities of shape {np.shape(velocities)} do not match roll {on.shape}")

    frame_s = timing.frame_seconds(bpm)
    midi = pretty_midi.PrettyMIDI(resolution=MIDI_RESOLUTION, initial_tempo=bpm)
    instrument = pretty_midi.Instrument(program=program)
    for column, pitch in enumerate(pitches):
        for start, end in _runs(on[:, column], None if onsets is None else onsets[:, column]):
            note_velocity = velocity if velocities is None else velocities[start, column]
            instrument.notes.append(pretty_midi.Note(
                velocity=int(np.clip(round(float(note_velocity)), 1, 127)),
                pitch=int(pitch),
                start=start * frame_s,
                end=end * frame_s,
            ))
    instrument.notes.sort(key=lambda note: (note.start, note.pitch))
    midi.instruments.append(instrument)
    return midi


def select_pitches(rolls: Sequence[np.ndarray], pitch_range: tuple[int, int] | None = None) -> list[int]:
    """The MIDI note numbers the model uses.

    Parameters
    ----------
    rolls : sequence of np.ndarray, each shape (T, 128)
    pitch_range : (lo, hi), optional
        Inclusive MIDI range; when given, the rolls are not looked at.

    Returns
    -------
    list of int
        ``lo..hi``, or else the sorted pitches that sound in any roll.
    """
    if pitch_range is not None:
        lo, hi = pitch_range
        return list(range(lo, hi + 1))
    used = np.zeros(N_MIDI_PITCHES, dtype=bool)
    for roll in rolls:
        used |= roll.any(axis=0)
    return [int(p) for p in np.flatnonzero(used)]


def project_roll(roll128: np.ndarray, pitches: Sequence[int]) -> tuple[np.ndarray, int]:
    """Keep only the columns of ``pitches``.

    Parameters
    ----------
    roll128 : np.ndarray, shape (T, 128)
    pitches : sequence of int, length P

    Returns
    -------
    roll : np.ndarray, shape (T, P), same dtype
    dropped_notes : int
        Notes (runs of on-frames) on pitches outside ``pitches``.
    """
    keep = np.zeros(N_MIDI_PITCHES, dtype=bool)
    keep[list(pitches)] = True
    dropped = int(count_onsets(roll128[:, ~keep]))
    return roll128[:, list(pitches)], dropped


def run_starts(roll: np.ndarray) -> np.ndarray:
    """``(T, P)`` bool: the first frame of each run of on-frames, the onsets of a roll that has none of its own."""
    on = np.asarray(roll, dtype=bool)
    starts = on.copy()
    starts[1:] &= ~on[:-1]
    return starts


def count_onsets(roll: np.ndarray) -> int:
    """Number of runs of on-frames in a ``(T, P)`` roll, summed over columns."""
    on = np.asarray(roll, dtype=bool)
    if on.size == 0:
        return 0
    previous = np.vstack([np.zeros((1, on.shape[1]), dtype=bool), on[:-1]])
    return int((on & ~previous).sum())


def _runs(column: np.ndarray, struck: np.ndarray | None = None) -> list[tuple[int, int]]:
    """``(start, end)`` frame pairs, end exclusive, of the runs of True in a (T,) bool array,
    a run cut where ``struck (T,)`` starts a note inside it."""
    column = np.asarray(column, dtype=bool)
    before = np.concatenate([[False], column[:-1]])
    starts = column & ~before
    if struck is not None:
        starts |= column & np.asarray(struck, dtype=bool)
    after = np.concatenate([column[1:], [False]])
    ends = column & (~after | np.concatenate([starts[1:], [False]]))
    return list(zip(np.flatnonzero(starts).tolist(), (np.flatnonzero(ends) + 1).tolist()))
