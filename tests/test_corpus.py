import logging
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pretty_midi
import pytest
import symusic

from tests.songs import write_corrupt, write_drums_only, write_empty, write_song
from vrae_live.config import DataConfig, FrameTiming
from vrae_live.data import corpus
from vrae_live.data.corpus import (
    Song,
    find_songs,
    load_songs,
    prepare_data,
    songs_polyphony,
    split_by_song,
    windows_for,
)
from vrae_live.errors import DataError

FS20 = FrameTiming(fs=20.0)


def write_scale(path: Path, pitches=(60, 62, 64, 65), seconds: float = 2.0) -> Path:
    """Notes of ``pitches`` one after another, repeated to fill ``seconds`` (20 frames per second)."""
    step = 0.25  # a one-frame rest before each note keeps repeated pitches apart; the last note ends at `seconds`
    notes = [(pitches[i % len(pitches)], i * step + 0.05, (i + 1) * step) for i in range(int(seconds / step))]
    return write_song(path, notes)


def song(name: str, steps: int = 10, pitch: int = 60) -> Song:
    roll = np.zeros((steps, 128), bool)
    roll[:, pitch] = True
    return Song(name=name, path=Path(name), roll=roll)


class BrokenParser:
    """Stands in for the parser (symusic, with pretty_midi behind it): any parse means the cache was missed."""

    calls = 0

    def __init__(self, *args, **kwargs):
        BrokenParser.calls += 1
        raise AssertionError("parsed MIDI although the roll was cached")

    @staticmethod
    def install(monkeypatch) -> None:
        BrokenParser.calls = 0
        monkeypatch.setattr(pretty_midi, "PrettyMIDI", BrokenParser)
        monkeypatch.setattr(symusic, "Score", SimpleNamespace(from_midi=BrokenParser))


# --- scanning and loading ---------------------------------------------------------------------


def test_find_songs_is_recursive_any_case_and_sorted(tmp_path):
    for name in ["b.mid", "a/z.MIDI", "a/y.Mid", "c.midi", "notes.txt", "d.mid.bak"]:
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_bytes(b"")
    found = [p.relative_to(tmp_path).as_posix() for p in find_songs(tmp_path)]
    assert found == ["a/y.Mid", "a/z.MIDI", "b.mid", "c.midi"]


def test_find_songs_names_a_missing_folder(tmp_path):
    with pytest.raises(DataError, match="nowhere.*does not exist"):
        find_songs(tmp_path / "nowhere")


def test_unusable_files_are_skipped_with_a_warning_naming_each(tmp_path, caplog):
    write_scale(tmp_path / "good.mid")
    write_scale(tmp_path / "sub" / "deeper.MIDI", pitches=(70,))
    bad = [
        write_corrupt(tmp_path / "corrupt.mid"),
        write_empty(tmp_path / "empty.mid"),
        write_drums_only(tmp_path / "drums.mid"),
    ]
    (tmp_path / "zero.mid").write_bytes(b"")
    bad.append(tmp_path / "zero.mid")

    with caplog.at_level(logging.WARNING, logger="vrae_live"):
        songs = load_songs(tmp_path, FS20, cache_dir=tmp_path / "cache")

    assert [s.name for s in songs] == ["good.mid", "sub/deeper.MIDI"]
    assert songs[1].roll.shape == (40, 128) and songs[1].roll[:, 70].any()
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == len(bad)
    for path in bad:
        assert any(str(path) in w and w.startswith("skipping") for w in warnings), path
    assert any("only drum" in w for w in warnings)
    assert any("no notes" in w for w in warnings)


def test_second_load_reads_rolls_from_the_cache(tmp_path, monkeypatch):
    songs_dir, cache = tmp_path / "songs", tmp_path / "cache"
    write_scale(songs_dir / "a.mid")
    write_scale(songs_dir / "b.mid", pitches=(40, 41))
    first = load_songs(songs_dir, FS20, cache_dir=cache)
    assert len(list(cache.glob("*.npz"))) == 2
    assert not list(cache.glob("*.tmp"))

    BrokenParser.install(monkeypatch)
    second = load_songs(songs_dir, FS20, cache_dir=cache)
    assert BrokenParser.calls == 0
    assert [s.name for s in second] == ["a.mid", "b.mid"]
    for before, after in zip(first, second):
        assert after.roll.dtype == bool and np.array_equal(before.roll, after.roll)
    only = load_songs(songs_dir, FS20, cache_dir=cache, names=["b.mid"])  # the songs a checkpoint names
    assert [s.name for s in only] == ["b.mid"] and np.array_equal(only[0].roll, first[1].roll)

    # The key holds the timing: another grid must parse again, which the broken parser refuses.
    assert load_songs(songs_dir, FrameTiming(fs=10.0), cache_dir=cache) == []
    assert BrokenParser.calls == 4  # symusic, then pretty_midi, for each


def test_changed_file_content_misses_the_cache(tmp_path, monkeypatch):
    write_scale(tmp_path / "a.mid")
    load_songs(tmp_path, FS20, cache_dir=tmp_path / "cache")
    write_scale(tmp_path / "a.mid", pitches=(50,))  # same name, new notes
    BrokenParser.install(monkeypatch)
    assert load_songs(tmp_path, FS20, cache_dir=tmp_path / "cache") == []
    assert BrokenParser.calls == 2  # symusic, then pretty_midi


def truncate(cache_file: Path) -> None:
    cache_file.write_bytes(cache_file.read_bytes()[:40])  # a half-written zip


def drop_frames(cache_file: Path) -> None:
    with np.load(cache_file) as stored:
        steps, bits = stored["steps"], stored["bits"]
    with open(cache_file, "wb") as f:  # np.savez would add .npz to a str path
        np.savez(f, steps=steps, bits=bits[:-16])  # a valid file one frame short


@pytest.mark.parametrize("damage", [truncate, drop_frames])
def test_damaged_cache_file_is_ignored_and_rewritten(tmp_path, monkeypatch, caplog, damage):
    songs_dir, cache = tmp_path / "songs", tmp_path / "cache"
    write_scale(songs_dir / "a.mid")
    (expected,) = load_songs(songs_dir, FS20, cache_dir=cache)
    (cache_file,) = cache.glob("*.npz")
    damage(cache_file)

    with caplog.at_level(logging.WARNING, logger="vrae_live"):
        (reparsed,) = load_songs(songs_dir, FS20, cache_dir=cache)
    assert np.array_equal(reparsed.roll, expected.roll)
    assert any("damaged" in r.getMessage() and str(cache_file) in r.getMessage() for r in caplog.records)

    BrokenParser.install(monkeypatch)
    (cached,) = load_songs(songs_dir, FS20, cache_dir=cache)
    assert np.array_equal(cached.roll, expected.roll)


def test_cache_dir_defaults_to_the_environment(tmp_path, monkeypatch):
    monkeypatch.setenv("VRAE_LIVE_CACHE", str(tmp_path / "env-cache"))
    write_scale(tmp_path / "songs" / "a.mid")
    load_songs(tmp_path / "songs", FS20)
    assert len(list((tmp_path / "env-cache").glob("*.npz"))) == 1
    monkeypatch.delenv("VRAE_LIVE_CACHE")
    assert corpus.default_cache_dir() == Path.home() / ".cache" / "vrae-live" / "rolls"


# --- splitting and windows --------------------------------------------------------------------


def test_split_is_by_song_and_deterministic():
    songs = [song(f"s{i:02d}.mid") for i in range(20)]
    train, val = split_by_song(songs, 0.2, seed=3)
    assert len(val) == 4 and len(train) == 16
    assert {s.name for s in train} | {s.name for s in val} == {s.name for s in songs}
    assert not {s.name for s in train} & {s.name for s in val}

    again = split_by_song(list(reversed(songs)), 0.2, seed=3)
    assert [s.name for s in again[1]] == [s.name for s in val]
    other_seeds = {tuple(s.name for s in split_by_song(songs, 0.2, seed)[1]) for seed in range(10)}
    assert len(other_seeds) > 1


def test_split_keeps_at_least_one_song_on_each_side():
    two = [song("a.mid"), song("b.mid")]
    assert [len(part) for part in split_by_song(two, 0.01, seed=0)] == [1, 1]
    assert [len(part) for part in split_by_song(two * 2, 0.99, seed=0)] == [1, 3]
    assert [len(part) for part in split_by_song(two, 0.0, seed=0)] == [2, 0]
    assert [len(part) for part in split_by_song(two[:1], 0.5, seed=0)] == [1, 0]


def test_windows_for_projects_counts_drops_and_tracks_songs():
    a, b, short = song("a.mid", steps=12, pitch=60), song("b.mid", steps=8, pitch=62), song("c.mid", steps=3)
    b.roll[0:2, 100] = True  # one note outside the pitches
    data = DataConfig(window=4, hop=4)
    windows = windows_for([a, b, short], [60, 61, 62], data)
    assert windows.x.shape == (5, 4, 3) and windows.x.dtype == np.uint8
    assert windows.song.dtype == np.int64 and windows.song.tolist() == [0, 0, 0, 1, 1]
    assert windows.song_names == ["a.mid", "b.mid", "c.mid"]
    assert windows.dropped_notes == 1
    assert windows.x[:3, :, 0].all() and not windows.x[:3, :, 1:].any()
    assert windows_for([], [60], data).x.shape == (0, 4, 1)


# --- prepare_data -----------------------------------------------------------------------------


def test_prepare_data_splits_songs_and_takes_pitches_from_training_songs(tmp_path, caplog):
    for i in range(4):
        write_scale(tmp_path / f"song{i}.mid", pitches=(60 + i, 72))
    write_corrupt(tmp_path / "broken.mid")
    data = DataConfig(window=10, hop=5, val_fraction=0.25)

    result = prepare_data(tmp_path, data, seed=0, batch_size=8, cache_dir=tmp_path / "cache")

    assert (result.songs_found, result.songs_used) == (5, 4)
    assert len(result.train.song_names) == 3 and len(result.val.song_names) == 1
    assert not set(result.train.song_names) & set(result.val.song_names)
    (val_name,) = result.val.song_names
    val_pitch = 60 + int(val_name[4])
    assert val_pitch not in result.pitches  # chosen from the training songs only
    assert result.pitches == sorted({60, 61, 62, 63, 72} - {val_pitch})
    assert result.val.dropped_notes == 4 and result.train.dropped_notes == 0
    assert result.train.x.shape == (3 * 7, 10, len(result.pitches))  # 40 steps, window 10, hop 5

    again = prepare_data(tmp_path, data, seed=0, batch_size=8, cache_dir=tmp_path / "cache")
    assert again.val.song_names == result.val.song_names
    assert np.array_equal(again.train.x, result.train.x)


def test_the_songs_polyphony_is_the_notes_at_once_of_nine_in_ten_sounding_frames():
    assert songs_polyphony(np.array([50, 100])) == 1
    assert songs_polyphony(np.array([0, 91, 9])) == 1  # a fiddle tune's double stops
    assert songs_polyphony(np.array([0, 89, 11])) == 2
    assert songs_polyphony(np.array([7, 2, 0, 10, 80, 6, 2])) == 4  # a chorale's four voices, now and then more
    assert songs_polyphony(np.array([5, 0])) is None  # silence


def test_prepare_data_counts_the_training_songs_notes_at_once(tmp_path):
    """A melody (with one frame of two notes) and a song of chords: the training songs keep to one note
    at once where the melody alone trains, to the chords' three where they do."""
    melody = [(60 + i % 5, i * 0.5, i * 0.5 + 0.5) for i in range(20)] + [(72, 0.0, 0.05)]
    write_song(tmp_path / "melodies" / "a.mid", melody)
    write_song(tmp_path / "melodies" / "b.mid", melody[:-1])
    chords = [(p + 2 * (i % 3), i * 1.0, i * 1.0 + 1.0) for i in range(10) for p in (60, 64, 67)]
    write_song(tmp_path / "both" / "a.mid", melody)
    write_song(tmp_path / "both" / "b.mid", chords)
    data = DataConfig(window=10, hop=5, val_fraction=0.0)
    melodies = prepare_data(tmp_path / "melodies", data, seed=0, batch_size=1, cache_dir=tmp_path / "cache")
    both = prepare_data(tmp_path / "both", data, seed=0, batch_size=1, cache_dir=tmp_path / "cache")
    assert (melodies.polyphony, both.polyphony) == (1, 3)


def test_prepare_data_uses_a_given_pitch_range(tmp_path):
    write_scale(tmp_path / "a.mid", pitches=(60, 90))
    write_scale(tmp_path / "b.mid", pitches=(61,))
    data = DataConfig(window=10, hop=10, pitch_range=(55, 70), val_fraction=0.0)
    result = prepare_data(tmp_path, data, seed=0, batch_size=1, cache_dir=tmp_path / "cache")
    assert result.pitches == list(range(55, 71))
    assert result.val is None
    assert result.train.dropped_notes == 4  # the 90s of a.mid


def test_one_usable_song_trains_without_validation(tmp_path, caplog):
    write_scale(tmp_path / "only.mid")
    write_drums_only(tmp_path / "drums.mid")
    with caplog.at_level(logging.WARNING, logger="vrae_live"):
        result = prepare_data(tmp_path, DataConfig(window=10, hop=10), seed=0, batch_size=2,
                              cache_dir=tmp_path / "cache")
    assert result.val is None and result.train.song_names == ["only.mid"]
    assert any("only one usable song" in r.getMessage() and "only.mid" in r.getMessage() for r in caplog.records)


def test_no_midi_files_is_an_error_naming_the_folder(tmp_path):
    (tmp_path / "readme.txt").write_text("no songs here")
    with pytest.raises(DataError, match=r"no \.mid or \.midi files") as caught:
        prepare_data(tmp_path, DataConfig(), seed=0, batch_size=1, cache_dir=tmp_path / "cache")
    assert str(tmp_path) in str(caught.value)


def test_no_usable_song_says_how_many_were_skipped(tmp_path):
    write_corrupt(tmp_path / "a.mid")
    write_drums_only(tmp_path / "b.mid")
    write_empty(tmp_path / "c.midi")
    with pytest.raises(DataError, match="none of the 3 MIDI file") as caught:
        prepare_data(tmp_path, DataConfig(), seed=0, batch_size=1, cache_dir=tmp_path / "cache")
    assert "all 3 were skipped" in str(caught.value)


def test_too_few_windows_says_what_was_found_and_what_to_change(tmp_path):
    write_scale(tmp_path / "short.mid", seconds=2.0)  # 40 steps at 20 frames per second
    write_scale(tmp_path / "tiny.mid", seconds=0.5)  # 10 steps
    data = DataConfig(window=30, hop=30, val_fraction=0.0)
    with pytest.raises(DataError) as caught:
        prepare_data(tmp_path, data, seed=0, batch_size=16, cache_dir=tmp_path / "cache")
    message = str(caught.value)
    assert "only 1 training window" in message
    assert "30 steps" in message and "16" in message
    assert "short.mid 40" in message and "tiny.mid 10" in message
    assert "--batch-size" in message and "--window" in message and "more songs" in message
