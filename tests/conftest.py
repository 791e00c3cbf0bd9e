"""Shared fixtures: a folder of small songs written in code, and a private roll cache."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.songs import write_song

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
