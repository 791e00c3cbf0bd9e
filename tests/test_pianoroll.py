import numpy as np
import pretty_midi
import pytest
from hypothesis import HealthCheck, given, settings, strategies as st
from hypothesis.extra.numpy import arrays

from tests.songs import Track, write_corrupt, write_drums_only, write_empty, write_song, write_song_in_beats, write_tracks
from vrae_live.config import FrameTiming
from vrae_live.data.pianoroll import (
    UnusableSongError,
    count_onsets,
    load_roll,
    model_frames,
    project_roll,
    roll_to_midi,
    run_starts,
    select_pitches,
    split_onsets,
)
from vrae_live.errors import DataError

FS20 = FrameTiming(fs=20.0)
QUARTERS = FrameTiming(fs=None, steps_per_beat=4)


def notes_of(midi: pretty_midi.PrettyMIDI) -> list[tuple[int, float, float]]:
    return sorted((n.pitch, round(n.start, 6), round(n.end, 6)) for inst in midi.instruments for n in inst.notes)


def on_frames(roll: np.ndarray, pitch: int) -> list[int]:
    return np.flatnonzero(roll[:, pitch]).tolist()


def test_fs_round_trip_keeps_notes_with_gaps_exactly(tmp_path):
    notes = [(60, 0.0, 0.5), (60, 0.6, 1.0), (64, 0.25, 0.3), (67, 1.0, 2.0), (48, 1.5, 1.55)]
    roll = load_roll(write_song(tmp_path / "a.mid", notes), FS20)

    assert roll.shape == (40, 128) and roll.dtype == bool
    assert on_frames(roll, 60) == list(range(0, 10)) + list(range(12, 20))
    assert on_frames(roll, 64) == [5]
    assert on_frames(roll, 48) == [30]

    pitches = select_pitches([roll])
    midi = roll_to_midi(project_roll(roll, pitches)[0], pitches, FS20)
    assert notes_of(midi) == sorted(notes)


def test_a_note_struck_again_survives_midi_to_roll_to_midi_with_onsets(tmp_path):
    # C struck three times without a gap (a repeated note), E held across them, G struck after a rest
    notes = [(60, 0.0, 0.5), (60, 0.5, 1.0), (60, 1.0, 1.25), (64, 0.0, 1.25), (67, 1.5, 1.75)]
    full = load_roll(write_song(tmp_path / "a.mid", notes), FS20, with_onsets=True)
    roll, onsets = full[:, :128], full[:, 128:]
    assert np.array_equal(roll, load_roll(tmp_path / "a.mid", FS20))  # the same frames sound
    assert on_frames(onsets, 60) == [0, 10, 20] and on_frames(onsets, 64) == [0] and on_frames(onsets, 67) == [30]
    assert on_frames(roll, 60) == list(range(25))  # one run: the binary roll alone merges the strikes

    pitches = [60, 64, 67]
    frames = model_frames(roll, pitches, onsets)
    assert frames.shape == (35, 6)
    sounding, struck = split_onsets(frames, pitches)
    assert np.array_equal(midi_notes := notes_of(roll_to_midi(sounding, pitches, FS20, onsets=struck)), sorted(notes))
    assert len(notes_of(roll_to_midi(sounding, pitches, FS20))) == len(midi_notes) - 2  # without: one long C
    assert np.array_equal(split_onsets(model_frames(roll, pitches), pitches)[0], roll[:, pitches])
    assert split_onsets(model_frames(roll, pitches), pitches)[1] is None
    assert np.array_equal(run_starts(roll)[:, 60], np.arange(35) == 0)  # a roll without onsets: runs start notes


def test_beat_grid_follows_tempo_changes_and_round_trips(tmp_path):
    # Beats 0-4 at 120 BPM (2 s), beats 4-8 at 60 BPM (4 s), then 240 BPM.
    tempos = [(0, 120), (4, 60), (8, 240)]
    notes_in_beats = [(60, 0, 1), (60, 1.5, 2), (62, 4, 5), (64, 6, 6.25), (65, 9, 10)]
    path = write_song_in_beats(tmp_path / "tempo.mid", notes_in_beats, tempos)

    roll = load_roll(path, QUARTERS)
    assert on_frames(roll, 60) == [0, 1, 2, 3, 6, 7]
    assert on_frames(roll, 62) == [16, 17, 18, 19]
    assert on_frames(roll, 64) == [24]
    assert on_frames(roll, 65) == [36, 37, 38, 39]

    # The same file on a seconds grid shows the tempo map really was written: beat 6 is 2 s + 2 s.
    seconds_roll = load_roll(path, FS20)
    assert on_frames(seconds_roll, 64)[0] == 80
    assert on_frames(seconds_roll, 65)[0] == round((2 + 4 + 0.25) * 20)

    pitches = [60, 62, 64, 65]
    back = tmp_path / "back.mid"
    roll_to_midi(project_roll(roll, pitches)[0], pitches, QUARTERS, bpm=90).write(str(back))
    # whole microseconds per beat
    assert pretty_midi.PrettyMIDI(str(back)).get_tempo_changes()[1] == pytest.approx([90.0], rel=1e-5)
    assert np.array_equal(load_roll(back, QUARTERS), roll)


def test_notes_shorter_than_a_frame_keep_one_frame(tmp_path):
    notes = [(60, 0.0, 0.01), (62, 0.52, 0.53), (64, 0.76, 0.77), (65, 0.74, 0.76)]
    roll = load_roll(write_song(tmp_path / "short.mid", notes), FS20)
    assert on_frames(roll, 60) == [0]
    assert on_frames(roll, 62) == [10]
    assert on_frames(roll, 64) == [15]
    assert on_frames(roll, 65) == [15]


def test_pitched_instruments_are_merged_and_drums_left_out(tmp_path):
    path = write_tracks(tmp_path / "band.mid", [
        Track([(60, 0.0, 0.5)], program=0),
        Track([(64, 0.5, 1.0)], program=48),
        Track([(36, 0.0, 1.5), (50, 1.0, 1.5)], is_drum=True),
    ])
    roll = load_roll(path, FS20)
    assert select_pitches([roll]) == [60, 64]
    assert roll.shape[0] == 20  # drums do not lengthen the song either


@pytest.mark.parametrize("write, reason", [
    (write_corrupt, "not a readable MIDI file"),
    (lambda p: p.write_bytes(b""), "not a readable MIDI file"),
    (write_empty, "no notes"),
    (write_drums_only, "only drum"),
])
def test_unusable_files_raise_naming_file_and_reason(tmp_path, write, reason):
    path = tmp_path / "bad.mid"
    write(path)
    with pytest.raises(UnusableSongError, match=reason) as caught:
        load_roll(path, FS20)
    assert isinstance(caught.value, DataError)
    assert str(path) in str(caught.value)
    assert caught.value.path == path and reason in caught.value.reason


def test_corrupt_file_error_keeps_the_parser_error_as_cause(tmp_path):
    with pytest.raises(UnusableSongError) as caught:
        load_roll(write_corrupt(tmp_path / "x.mid"), FS20)
    assert caught.value.__cause__ is not None


def test_select_pitches_from_rolls_or_range():
    a = np.zeros((5, 128), bool)
    b = np.zeros((3, 128), bool)
    a[0, 72] = a[4, 40] = b[1, 55] = True
    assert select_pitches([a, b]) == [40, 55, 72]
    assert select_pitches([a, b], pitch_range=(36, 38)) == [36, 37, 38]
    assert select_pitches([]) == []


def test_project_roll_counts_notes_it_drops():
    roll = np.zeros((10, 128), bool)
    roll[0:3, 30] = True
    roll[5:7, 30] = True  # a second note on the same pitch
    roll[2:4, 100] = True
    roll[0:10, 60] = True
    projected, dropped = project_roll(roll, [59, 60, 61])
    assert dropped == 3
    assert projected.shape == (10, 3)
    assert projected[:, 1].all() and not projected[:, [0, 2]].any()

    nothing_kept, all_dropped = project_roll(roll, [])
    assert nothing_kept.shape == (10, 0) and all_dropped == 4
    assert project_roll(roll, list(range(128)))[1] == 0


def test_count_onsets_counts_runs():
    column = np.array([[1], [1], [0], [1], [0], [0], [1]], dtype=bool)
    assert count_onsets(column) == 3


def test_roll_to_midi_velocities_program_and_shape_check():
    roll = np.array([[1, 0], [1, 1], [0, 1], [1, 0]], dtype=np.uint8)
    velocities = np.array([[30, 0], [99, 200], [0, 0], [64, 0]])
    midi = roll_to_midi(roll, [60, 67], FS20, program=33, velocities=velocities)
    (instrument,) = midi.instruments
    assert instrument.program == 33 and not instrument.is_drum
    got = sorted((n.pitch, round(n.start, 6), round(n.end, 6), n.velocity) for n in instrument.notes)
    assert got == [(60, 0.0, 0.1, 30), (60, 0.15, 0.2, 64), (67, 0.05, 0.15, 127)]

    plain = roll_to_midi(roll, [60, 67], FS20, velocity=50)
    assert {n.velocity for n in plain.instruments[0].notes} == {50}
    with pytest.raises(ValueError, match="3 pitches"):
        roll_to_midi(roll, [60, 61, 62], FS20)


def test_roll_to_midi_beat_grid_uses_the_tempo():
    roll = np.ones((4, 1), bool)
    midi = roll_to_midi(roll, [60], FrameTiming(fs=None, steps_per_beat=2), bpm=60)
    assert notes_of(midi) == [(60, 0.0, 2.0)]  # 4 half-beats at 1 beat per second


timings = st.sampled_from([FS20, FrameTiming(fs=25.0), FrameTiming(fs=None, steps_per_beat=3), QUARTERS])


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    roll=arrays(bool, st.tuples(st.integers(1, 40), st.just(4))),
    timing=timings,
    bpm=st.sampled_from([60.0, 120.0, 150.0]),
)
def test_any_roll_survives_midi_and_back(tmp_path, roll, timing, bpm):
    pitches = [21, 60, 61, 108]
    path = tmp_path / "prop.mid"
    roll_to_midi(roll, pitches, timing, bpm=bpm).write(str(path))
    if not roll.any():
        with pytest.raises(UnusableSongError, match="no notes"):
            load_roll(path, timing)
        return
    back, dropped = project_roll(load_roll(path, timing), pitches)
    assert dropped == 0
    last = np.flatnonzero(roll.any(axis=1))[-1]
    assert np.array_equal(back, roll[: last + 1])  # trailing silence has no end marker in MIDI


def test_a_long_piece_at_a_fine_resolution_is_read_not_called_corrupt(tmp_path):
    # 30,000 ticks a beat and a note 400 beats in: past pretty_midi's 10 million ticks
    import mido

    midi = mido.MidiFile(ticks_per_beat=30_000)
    track = mido.MidiTrack()
    midi.tracks.append(track)
    track += [mido.Message("note_on", note=60, velocity=80, time=0), mido.Message("note_off", note=60, time=30_000),
              mido.Message("note_on", note=64, velocity=80, time=12_000_000), mido.Message("note_off", note=64, time=30_000)]
    midi.save(tmp_path / "long.mid")
    with pytest.raises(ValueError, match="largest tick"):
        pretty_midi.PrettyMIDI(str(tmp_path / "long.mid"))
    roll = load_roll(tmp_path / "long.mid", FrameTiming(fs=None, steps_per_beat=4))
    assert roll.shape[0] == 4 * 402 and np.nonzero(roll[:, 64])[0].tolist() == list(range(4 * 401, 4 * 402))
    import pretty_midi.pretty_midi as module

    assert module.MAX_TICK == 1e7  # put back for everyone else
