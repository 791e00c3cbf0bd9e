"""The roll store: what goes in comes out, windows are cut as in memory, and training reads only its batches."""

from __future__ import annotations

import logging
from types import SimpleNamespace

import numpy as np
import pretty_midi
import pytest
import symusic
import torch

from tests.songs import write_corrupt, write_drums_only, write_song, write_song_in_beats
from vrae_live.config import DataConfig, FrameTiming, load_config
from vrae_live.data import parsing
from vrae_live.data.corpus import load_songs, prepare_data, store_songs, windows_for
from vrae_live.data.pianoroll import load_roll
from vrae_live.data.store import INDEX_FILE, StoredWindows
from vrae_live.songmap import window_starts
from vrae_live.training import batches
from vrae_live.training.run import read_metrics
from vrae_live.training.trainer import Trainer

FS20 = FrameTiming(fs=20.0)


def write_corpus(folder, songs: int = 6):
    """Songs of different lengths and pitches, a tempo map, and two unusable files."""
    for i in range(songs):
        notes = [(48 + (i * 5 + k) % 30, k * 0.3, k * 0.3 + 0.25 + 0.1 * (k % 3)) for k in range(8 + 6 * i)]
        write_song(folder / f"s{i}.mid", notes)
    write_song_in_beats(folder / "sub" / "tempo.mid", [(60 + k % 5, k * 0.75, k * 0.75 + 1.1) for k in range(30)],
                        [(0, 120), (5, 70), (13.3, 150)])
    write_corrupt(folder / "corrupt.mid")
    write_drums_only(folder / "drums.mid")
    return folder


def test_rolls_come_back_from_the_store_as_parsed(tmp_path):
    songs = write_corpus(tmp_path / "songs")
    for timing in (FS20, FrameTiming(fs=None, steps_per_beat=4)):
        store = store_songs(songs, timing, cache_dir=tmp_path / "cache", workers=1)
        assert store.names == ["s0.mid", "s1.mid", "s2.mid", "s3.mid", "s4.mid", "s5.mid", "sub/tempo.mid"]
        assert store.files == 9
        for i, name in enumerate(store.names):
            assert np.array_equal(store.roll(i), load_roll(songs / name, timing)), name
            assert np.array_equal(store.onsets(i), load_roll(songs / name, timing, with_onsets=True)[:, 128:]), name


@pytest.mark.parametrize("window, hop, cap, onsets", [(10, 5, None, False), (16, 16, None, True), (12, 7, 3, False),
                                                     (8, 20, None, True)])
def test_stored_windows_are_the_windows_cut_in_memory(tmp_path, window, hop, cap, onsets):
    songs = write_corpus(tmp_path / "songs")
    data = DataConfig(window=window, hop=hop, max_windows_per_song=cap, onsets=onsets)
    store = store_songs(songs, data.timing, cache_dir=tmp_path / "cache", workers=1)
    in_memory = load_songs(songs, data.timing, cache_dir=tmp_path / "cache", workers=1)
    pick = [3, 0, 6, 5]  # any songs, in any order
    pitches = [50, 51, 55, 60, 61, 62, 63, 70, 77]
    expected = windows_for([in_memory[i] for i in pick], pitches, data)
    stored = StoredWindows(store, pick, pitches, data)

    assert stored.shape == expected.x.shape == (len(stored), window, len(pitches) * (2 if onsets else 1))
    assert len(stored) > 10
    assert np.array_equal(np.asarray(stored), expected.x)
    assert np.array_equal(np.asarray(stored.song), expected.song)
    shuffled = np.random.default_rng(0).permutation(len(stored))
    assert np.array_equal(stored[shuffled], expected.x[shuffled])  # a batch: windows by index, in any order
    assert np.array_equal(stored.song[shuffled], expected.song[shuffled])
    assert np.array_equal(stored.starts(shuffled), window_starts(expected.song, hop)[shuffled])
    assert np.array_equal(stored[4:9], expected.x[4:9])
    assert store.notes_outside(pick, pitches) == expected.dropped_notes


def test_the_store_is_found_again_and_a_changed_song_makes_a_new_one(tmp_path, monkeypatch, caplog):
    songs, cache = write_corpus(tmp_path / "songs"), tmp_path / "cache"
    first = store_songs(songs, FS20, cache_dir=cache, workers=1)

    def broken(*args, **kwargs):
        raise AssertionError("parsed although stored")

    monkeypatch.setattr(pretty_midi, "PrettyMIDI", broken)
    monkeypatch.setattr(symusic, "Score", SimpleNamespace(from_midi=broken))
    with caplog.at_level(logging.WARNING, logger="vrae_live"):
        again = store_songs(songs, FS20, cache_dir=cache, workers=1)
    assert again.folder == first.folder and again.names == first.names
    warned = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    # the unusable files are named again, though nothing was parsed
    assert any("corrupt.mid" in w for w in warned) and any("drums.mid" in w for w in warned)

    monkeypatch.undo()
    write_song(songs / "s0.mid", [(90, 0.0, 2.0)])
    changed = store_songs(songs, FS20, cache_dir=cache, workers=1)
    assert changed.folder != first.folder
    assert changed.roll(0)[:, 90].all()


def test_a_damaged_store_is_written_again(tmp_path, caplog):
    songs, cache = write_corpus(tmp_path / "songs"), tmp_path / "cache"
    first = store_songs(songs, FS20, cache_dir=cache, workers=1)
    expected = [first.roll(i) for i in range(len(first))]
    (first.folder / INDEX_FILE).write_bytes(b"not a zip")
    with caplog.at_level(logging.WARNING, logger="vrae_live"):
        again = store_songs(songs, FS20, cache_dir=cache, workers=1)
    assert any("damaged" in r.getMessage() for r in caplog.records)
    assert all(np.array_equal(again.roll(i), roll) for i, roll in enumerate(expected))


def test_parsing_in_worker_processes_gives_what_one_process_gives(tmp_path, monkeypatch, caplog):
    songs = write_corpus(tmp_path / "songs")
    one = load_songs(songs, FS20, cache_dir=tmp_path / "one", workers=1)
    monkeypatch.setattr(parsing, "FILES_PER_WORKER", 1)  # a pool even for a few files
    caplog.clear()
    with caplog.at_level(logging.INFO, logger="vrae_live"):
        many = load_songs(songs, FS20, cache_dir=tmp_path / "many", workers=2)
    assert any("in 2 process(es)" in r.getMessage() for r in caplog.records)
    assert [s.name for s in many] == [s.name for s in one]
    assert all(np.array_equal(a.roll, b.roll) for a, b in zip(one, many))
    skipped = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert len(skipped) == 2 and any(str(songs / "corrupt.mid") in w for w in skipped)


def test_training_reads_only_its_batches_from_the_store(tmp_path, monkeypatch):
    """No step of training holds every window: the store is read a batch (or the bounded subsample) at a time."""
    songs = write_corpus(tmp_path / "songs", songs=10)
    config = load_config(None, dict(hidden=8, latent=2, window=8, hop=2, batch_size=8, epochs=2, fs=20))
    data = prepare_data(songs, config.data, config.train.seed, config.train.batch_size,
                        cache_dir=tmp_path / "cache", workers=1)
    windows = len(data.train.x)
    limit = 20
    assert windows > 5 * limit

    gathered = []
    real_getitem = StoredWindows.__getitem__

    def counting(self, indices):
        gathered.append(len(np.arange(len(self))[indices]) if isinstance(indices, slice) else np.size(indices))
        return real_getitem(self, indices)

    def refuse(self, *args, **kwargs):
        raise AssertionError("every window was read at once")

    monkeypatch.setattr(StoredWindows, "__getitem__", counting)
    monkeypatch.setattr(StoredWindows, "__array__", refuse)
    monkeypatch.setattr(batches, "MEASURED_WINDOWS", limit)
    trainer = Trainer(config, data, tmp_path / "run")
    assert trainer.batches.x is None and len(trainer.measured_train) == limit
    summary = trainer.fit()

    assert summary["epochs_done"] == 2 and summary["train_windows"] == windows
    assert max(gathered) <= max(limit, config.train.batch_size)
    assert len(read_metrics(tmp_path / "run")) == 2


def test_a_batch_drawn_from_the_store_is_the_batch_in_memory(tmp_path):
    songs = write_corpus(tmp_path / "songs")
    config = load_config(None, dict(window=8, hop=4, batch_size=4))
    data = prepare_data(songs, config.data, 0, 4, cache_dir=tmp_path / "cache", workers=1)
    stored = batches.WindowBatches(data.train.x, torch.device("cpu"))
    in_memory = batches.WindowBatches(np.asarray(data.train.x), torch.device("cpu"))
    indices = torch.randperm(len(stored), generator=torch.Generator().manual_seed(1))[:13]
    assert torch.equal(stored.draw(indices), in_memory.draw(indices))
    assert stored.draw(indices).dtype == torch.float32
