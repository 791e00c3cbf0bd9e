"""Shared fixtures: a folder of small songs written in code, and a private roll cache."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.songs import write_song
from vrae_live.config import load_config
from vrae_live.data.corpus import prepare_data
from vrae_live.training.trainer import Trainer

pytest_plugins = ["tests.jack"]  # the jack_server fixture, for every test module


@pytest.fixture(autouse=True)
def _private_cache(tmp_path_factory, monkeypatch):
    """No test writes to the user's ~/.cache."""
    monkeypatch.setenv("VRAE_LIVE_CACHE", str(tmp_path_factory.getbasetemp() / "roll-cache"))


def motif_notes(song: int, seconds: float, step: float = 0.25) -> list[tuple[int, float, float]]:
    """A song of its own: an arpeggio over a chord whose root and shape depend on ``song``."""
    root = 48 + 3 * song
    shape = [0, 4, 7, 12] if song % 2 == 0 else [0, 3, 7, 10]
    notes, t, i = [], 0.0, 0
    while t + step <= seconds:
        notes.append((root + shape[i % len(shape)], t, t + step * 0.8))
        if i % 4 == 0:
            notes.append((root - 12, t, t + step * 3.5))  # a bass note under each bar
        t += step
        i += 1
    return notes


def write_motif_songs(folder: Path, count: int = 6, seconds: float = 10.0) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    for song in range(count):
        write_song(folder / f"song{song}.mid", motif_notes(song, seconds))
    return folder


@pytest.fixture
def songs_dir(tmp_path) -> Path:
    """Six distinct 10-second songs at 120 BPM: at 20 frames per second, 200 frames each."""
    return write_motif_songs(tmp_path / "songs")


@pytest.fixture(scope="session")
def beat_checkpoint(tmp_path_factory):
    """A small beat-based model, quick to start and to decode: for tests that run `serve`."""
    songs = write_motif_songs(tmp_path_factory.mktemp("songs"), count=4, seconds=8.0)
    config = load_config("live-2d", {"epochs": 2, "hidden": 32, "window": 16, "hop": 8, "batch_size": 8, "seed": 0})
    data = prepare_data(songs, config.data, seed=0, batch_size=config.train.batch_size)
    out = tmp_path_factory.mktemp("run")
    Trainer(config, data, out).fit()
    return out
