"""Small MIDI files written in code, for the tests of the whole project.

Import as ``from tests.songs import write_song``.
Times are in seconds unless a name says beats; a note is ``(pitch, start, end)``.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import mido
import numpy as np
import pretty_midi

Note = tuple[int, float, float]  # (MIDI pitch, start, end)

# Divisible by the frame lengths the tests use (fs 10/20/25 at 120 BPM, 1-4/6/8 steps per beat).
RESOLUTION = 960


@dataclass
class Track:
    notes: Sequence[Note]
    program: int = 0
    is_drum: bool = False
    velocity: int = 100
    name: str = ""


def write_song(
    path: str | Path,
    notes: Sequence[Note] = ((60, 0.0, 0.5),),
    tempo_bpm: float = 120.0,
    program: int = 0,
    is_drum: bool = False,
) -> Path:
    """One instrument at a constant tempo; notes in seconds."""
    return write_tracks(path, [Track(notes, program=program, is_drum=is_drum)], tempo_bpm)


def write_tracks(path: str | Path, tracks: Sequence[Track], tempo_bpm: float = 120.0) -> Path:
    """Several instruments (e.g. piano + strings + drums) at a constant tempo; notes in seconds."""
    midi = pretty_midi.PrettyMIDI(resolution=RESOLUTION, initial_tempo=tempo_bpm)
    for track in tracks:
        instrument = pretty_midi.Instrument(program=track.program, is_drum=track.is_drum, name=track.name)
        for pitch, start, end in track.notes:
            instrument.notes.append(pretty_midi.Note(velocity=track.velocity, pitch=pitch, start=start, end=end))
        midi.instruments.append(instrument)
    return _save(midi, path)


def write_song_in_beats(
    path: str | Path,
    notes: Sequence[Note],
    tempos: Sequence[tuple[float, float]] = ((0.0, 120.0),),
    program: int = 0,
    time_signature: tuple[int, int] | None = (4, 4),
) -> Path:
    """One instrument under a tempo map; notes and tempo changes in quarter-note beats.

    ``tempos`` is ``[(beat, bpm), ...]`` from beat 0, e.g. ``[(0, 120), (4, 60)]``
    halves the tempo after the first bar of 4/4. ``time_signature``: None writes none.
    """
    conductor = mido.MidiTrack([mido.MetaMessage("time_signature", numerator=time_signature[0],
                                                 denominator=time_signature[1], time=0)] if time_signature else [])
    conductor += _at_beats([(beat, mido.MetaMessage("set_tempo", tempo=mido.bpm2tempo(bpm)))
                            for beat, bpm in tempos])
    events = []
    for pitch, start, end in notes:
        events.append((start, mido.Message("note_on", note=pitch, velocity=100)))
        events.append((end, mido.Message("note_off", note=pitch, velocity=0)))
    music = mido.MidiTrack([mido.Message("program_change", program=program, time=0)])
    music += _at_beats(events)
    midi = mido.MidiFile(type=1, ticks_per_beat=RESOLUTION, tracks=[conductor, music])
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    midi.save(str(path))
    return Path(path)


def write_empty(path: str | Path) -> Path:
    """A valid MIDI file with a tempo and no notes."""
    return _save(pretty_midi.PrettyMIDI(resolution=RESOLUTION), path)


def write_drums_only(path: str | Path) -> Path:
    """Kick, snare and hi-hat on the drum channel, nothing pitched."""
    return write_song(path, [(36, 0.0, 0.1), (38, 0.5, 0.6), (42, 0.25, 0.3)], is_drum=True)


def write_corrupt(path: str | Path, size: int = 256, seed: int = 0) -> Path:
    """Random bytes with a .mid name."""
    Path(path).write_bytes(np.random.default_rng(seed).bytes(size))
    return Path(path)


def _at_beats(events: Sequence[tuple[float, mido.Message]]) -> list[mido.Message]:
    """Messages placed at absolute beat positions, as mido's delta times in ticks.

    Note offs sort before note ons at the same tick, so back-to-back notes stay apart.
    """
    ordered = sorted(events, key=lambda e: (e[0], e[1].type != "note_off"))
    messages, last_tick = [], 0
    for beat, message in ordered:
        tick = round(beat * RESOLUTION)
        messages.append(message.copy(time=tick - last_tick))
        last_tick = tick
    return messages


def _save(midi: pretty_midi.PrettyMIDI, path: str | Path) -> Path:
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    midi.write(str(path))
    return Path(path)
