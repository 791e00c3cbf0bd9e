"""The fast parser (symusic) against the reference (pretty_midi): the same roll, frame by frame.

Every file is read both ways under both frame timings (seconds and a beat grid that follows the
tempo map); the rolls must be equal in shape and in every cell, or both ways must refuse the
file for the same reason. Each case also says whether symusic read it or pretty_midi had to.
"""

from pathlib import Path

import mido
import numpy as np
import pytest

from tests.songs import (
    Track,
    write_corrupt,
    write_drums_only,
    write_empty,
    write_song,
    write_song_in_beats,
    write_tracks,
)
from vrae_live.config import FrameTiming
from vrae_live.data.fastroll import load_roll_fast
from vrae_live.data.pianoroll import UnusableSongError, load_roll

TIMINGS = [FrameTiming(fs=20.0), FrameTiming(fs=7.3), FrameTiming(fs=None, steps_per_beat=4),
           FrameTiming(fs=None, steps_per_beat=3)]


def outcome(load, path, timing):
    """The roll with its onsets, or the reason the file is unusable."""
    try:
        roll = load(path, timing, with_onsets=True)
    except UnusableSongError as err:
        return err.reason
    return roll[0] if isinstance(roll, tuple) else roll


def assert_same_rolls(path: Path) -> set:
    """The fallbacks load_roll_fast took for ``path`` (None: symusic read it), having checked identity."""
    fallbacks = set()
    for timing in TIMINGS:
        reference = outcome(load_roll, path, timing)
        try:
            fast, fallback = load_roll_fast(path, timing, with_onsets=True)
        except UnusableSongError as err:
            fast, fallback = err.reason, "unusable"
        fallbacks.add(fallback)
        if isinstance(reference, str):
            assert fast == reference, f"{path.name} {timing.describe()}"
            continue
        assert not isinstance(fast, str), f"{path.name} {timing.describe()}: fast path refused it: {fast}"
        assert fast.shape == reference.shape, f"{path.name} {timing.describe()}"
        differ = np.argwhere(fast != reference)
        assert len(differ) == 0, f"{path.name} {timing.describe()}: frames/pitches differ at {differ[:5].tolist()}"
    return fallbacks


def raw_midi(path: Path, tracks, ticks_per_beat: int = 480) -> Path:
    """Type-1 file from ``tracks``: lists of (absolute tick, message), kept in the given order within a tick."""
    midi = mido.MidiFile(type=1, ticks_per_beat=ticks_per_beat)
    for events in tracks:
        track, last = mido.MidiTrack(), 0
        for tick, message in sorted(events, key=lambda e: e[0]):
            track.append(message.copy(time=tick - last))
            last = tick
        midi.tracks.append(track)
    midi.save(str(path))
    return path


def on(pitch, channel=0, velocity=100):
    return mido.Message("note_on", note=pitch, velocity=velocity, channel=channel)


def off(pitch, channel=0):
    return mido.Message("note_off", note=pitch, channel=channel)


def tempo(bpm):
    return mido.MetaMessage("set_tempo", tempo=mido.bpm2tempo(bpm))


# -- the test corpus: files the tests of the project build --------------------------------------

READ_BY_SYMUSIC = {
    "scale": lambda p: write_song(p, [(60 + i % 7, i * 0.23, i * 0.23 + 0.2) for i in range(40)]),
    "odd_tempo": lambda p: write_song(p, [(64, 0.013, 0.377), (67, 0.377, 1.9), (72, 1.0, 1.01)], tempo_bpm=97.3),
    "chords_and_drums": lambda p: write_tracks(p, [
        Track([(60, 0, 1), (64, 0, 1), (67, 0.5, 2)]), Track([(48, 0.25, 3)], program=33),
        Track([(36, 0, 0.1), (38, 0.5, 0.6)], is_drum=True)]),
    "tempo_changes_mid_note": lambda p: write_song_in_beats(
        p, [(60, 0, 3.5), (64, 1.25, 6.75), (67, 5.9, 9.1), (71, 8.33, 8.34)],
        [(0, 120), (1.5, 60), (3.1, 143.7), (6, 200), (8.5, 41)]),
    "tempo_at_zero_twice": lambda p: raw_midi(p, [
        [(0, tempo(100)), (0, tempo(90)), (960, tempo(90)), (1000, tempo(150))],
        [(0, on(60)), (700, off(60)), (700, on(62)), (1900, off(62))]]),
    "zero_length_note": lambda p: raw_midi(p, [
        [(0, tempo(120))], [(0, on(60)), (0, off(60)), (10, on(62)), (500, off(62))]]),
    "unclosed_note": lambda p: raw_midi(p, [[], [(0, on(60)), (10, on(62)), (500, off(62))]]),
    "restrike_at_the_release": lambda p: raw_midi(p, [
        [], [(0, on(60)), (480, on(60)), (480, off(60)), (960, off(60))]]),
    "velocity_zero_as_off": lambda p: raw_midi(p, [[], [(0, on(60)), (333, on(60, velocity=0))]]),
    "program_change_mid_note": lambda p: raw_midi(p, [[], [
        (0, on(60)), (50, mido.Message("program_change", program=5)), (100, off(60)), (100, on(61)),
        (150, off(61))]]),
    "fine_resolution": lambda p: raw_midi(p, [[(0, tempo(77))], [(0, on(50)), (10079, off(50))]], 10080),
}

READ_BY_PRETTY_MIDI = {
    "overlap_on_one_key": ("overlap", lambda p: raw_midi(p, [
        [], [(0, on(60)), (100, on(60)), (200, off(60)), (300, off(60))]])),
    "tempo_on_track_1": ("tempo_off_track_0", lambda p: raw_midi(p, [
        [(0, tempo(120))], [(0, on(60)), (400, tempo(60)), (960, off(60)), (2000, on(62)), (2500, off(62))]])),
    "smpte_time": ("ticks", None),
    "damaged_track": ("damaged", None),
}


@pytest.mark.parametrize("name", sorted(READ_BY_SYMUSIC))
def test_symusic_reads_the_test_corpus_as_pretty_midi_does(tmp_path, name):
    path = READ_BY_SYMUSIC[name](tmp_path / f"{name}.mid")
    assert assert_same_rolls(path) == {None}


@pytest.mark.parametrize("name", sorted(READ_BY_PRETTY_MIDI))
def test_files_symusic_reads_otherwise_go_to_pretty_midi(tmp_path, name):
    fallback, write = READ_BY_PRETTY_MIDI[name]
    path = tmp_path / f"{name}.mid"
    if name == "smpte_time":
        write_song(path, [(60, 0, 1)])
        content = bytearray(path.read_bytes())
        content[12:14] = bytes([0xE7, 40])  # -25 frames per second, 40 ticks a frame
        path.write_bytes(bytes(content))
    elif name == "damaged_track":
        write_tracks(path, [Track([(60, 0, 1)]), Track([(64, 0, 2)])])
        content = path.read_bytes()
        second = content.index(b"MTrk", content.index(b"MTrk") + 4)
        path.write_bytes(content[:second] + b"XXXX" + content[second + 4:])
    else:
        write(path)
    assert assert_same_rolls(path) <= {fallback, "unusable"}


@pytest.mark.parametrize("write, reason", [
    (write_empty, "no notes"), (write_drums_only, "only drum notes"), (write_corrupt, "not a readable MIDI file"),
])
def test_unusable_files_are_refused_for_the_same_reason(tmp_path, write, reason):
    path = write(tmp_path / "bad.mid")
    with pytest.raises(UnusableSongError, match=reason):
        load_roll_fast(path, FrameTiming(fs=20.0))
    assert_same_rolls(path)


def test_truncated_files_are_refused_as_pretty_midi_refuses_them(tmp_path):
    whole = write_song_in_beats(tmp_path / "whole.mid", [(60 + i % 12, i * 0.5, i * 0.5 + 0.75) for i in range(30)],
                                [(0, 100), (7, 70)]).read_bytes()
    for cut in np.linspace(0, len(whole) - 1, 25).astype(int):
        path = tmp_path / f"cut{cut}.mid"
        path.write_bytes(whole[:cut])
        assert_same_rolls(path)


@pytest.mark.slow
def test_bach_chorales_from_music21_give_the_same_rolls(tmp_path):
    """Bach's chorales as music21 exports them (scripts/export_corpus.py): read by symusic, identical."""
    pytest.importorskip("music21")
    from music21 import corpus

    chorales = sorted(corpus.getComposer("bach"))[:12]
    for source in chorales:
        path = tmp_path / f"{Path(source).stem}.mid"
        corpus.parse(source).write("midi", fp=str(path))
        assert assert_same_rolls(path) == {None}, path.name
