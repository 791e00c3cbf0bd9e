"""A folder of MIDI songs to training and validation windows.

Songs, never windows, are split between training and validation, so no
validation window shares a song with a training window. Parsed rolls are
cached on disk, keyed by the file's content and the frame timing, so a second
run over the same folder does not parse MIDI again.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import numpy as np

from ..config import DataConfig, FrameTiming
from ..errors import DataError
from .pianoroll import N_MIDI_PITCHES, UnusableSongError, load_roll, project_roll, select_pitches
from .windows import make_windows

log = logging.getLogger("vrae_live")

MIDI_SUFFIXES = {".mid", ".midi"}
CACHE_ENV = "VRAE_LIVE_CACHE"
# Part of every cache key: bump it when load_roll's output changes for the same file.
CACHE_FORMAT = "roll-v1"


@dataclass
class Song:
    name: str  # path relative to the song folder, posix style
    path: Path
    roll: np.ndarray  # (T, 128) bool


@dataclass
class WindowSet:
    x: np.ndarray  # (N, W, P) uint8
    song: np.ndarray  # (N,) int64, index into song_names
    song_names: list[str]
    dropped_notes: int  # notes on pitches outside the model's pitches


@dataclass
class TrainingData:
    train: WindowSet
    val: WindowSet | None
    pitches: list[int]
    songs_found: int
    songs_used: int


def find_songs(folder: str | Path) -> list[Path]:
    """Every .mid or .midi file (any case) under ``folder``, recursively, sorted."""
    folder = Path(folder)
    if not folder.is_dir():
        problem = "is not a folder" if folder.exists() else "does not exist"
        raise DataError(f"song folder {folder} {problem}")
    found = [p for p in folder.rglob("*") if p.suffix.lower() in MIDI_SUFFIXES and p.is_file()]
    return sorted(found, key=lambda p: p.relative_to(folder).as_posix())


def default_cache_dir() -> Path:
    return Path(os.environ.get(CACHE_ENV) or Path.home() / ".cache" / "vrae-live" / "rolls")


def load_songs(folder: str | Path, timing: FrameTiming, cache_dir: str | Path | None = None) -> list[Song]:
    """Every usable song under ``folder``; unusable files are skipped with a warning.

    ``cache_dir`` defaults to ``$VRAE_LIVE_CACHE``, else ``~/.cache/vrae-live/rolls``.
    """
    return _load_paths(Path(folder), find_songs(folder), timing, cache_dir)


def _load_paths(folder: Path, paths: Sequence[Path], timing: FrameTiming, cache_dir: str | Path | None) -> list[Song]:
    cache = Path(cache_dir) if cache_dir is not None else default_cache_dir()
    songs, from_cache = [], 0
    for path in paths:
        try:
            content = path.read_bytes()
        except OSError as err:
            log.warning("skipping %s: %s", path, f"cannot read it ({err.strerror or err})")
            continue
        cache_file = cache / f"{_cache_key(content, timing)}.npz"
        roll = _read_cached_roll(cache_file)
        if roll is not None:
            from_cache += 1
            log.debug("roll of %s from cache %s", path, cache_file)
        else:
            try:
                roll = load_roll(path, timing)
            except UnusableSongError as err:
                log.warning("skipping %s: %s", path, err.reason)
                continue
            _write_cached_roll(cache_file, roll)
        songs.append(Song(name=path.relative_to(folder).as_posix(), path=path, roll=roll))
    log.info("loaded %d of %d MIDI files from %s (%d from cache)", len(songs), len(paths), folder, from_cache)
    return songs


def _cache_key(content: bytes, timing: FrameTiming) -> str:
    digest = hashlib.sha256()
    digest.update(CACHE_FORMAT.encode())
    digest.update(json.dumps(timing.to_dict(), sort_keys=True).encode())
    digest.update(b"\0")
    digest.update(content)
    return digest.hexdigest()


def _read_cached_roll(cache_file: Path) -> np.ndarray | None:
    """The cached (T, 128) roll, or None when absent or damaged (it is then rewritten)."""
    if not cache_file.is_file():
        return None
    try:
        with np.load(cache_file, allow_pickle=False) as stored:
            steps = int(stored["steps"])
            bits = stored["bits"]
        # unpackbits would pad a short array with zeros, so check the size first
        if steps < 1 or bits.dtype != np.uint8 or bits.size * 8 != steps * N_MIDI_PITCHES:
            raise ValueError(f"{bits.size} bytes do not hold {steps} frames")
        return np.unpackbits(bits).reshape(steps, N_MIDI_PITCHES).astype(bool)
    except Exception as err:  # a truncated zip, a missing key, a wrong size: parse again
        log.warning("ignoring damaged roll cache %s (%s); parsing the song again", cache_file, err)
        return None


def _write_cached_roll(cache_file: Path, roll: np.ndarray) -> None:
    """Store atomically (temp file, then rename) so a killed run leaves no half-written file."""
    tmp_path = None
    try:
        cache_file.parent.mkdir(parents=True, exist_ok=True)
        fd, name = tempfile.mkstemp(dir=cache_file.parent, suffix=".tmp")
        tmp_path = Path(name)
        with os.fdopen(fd, "wb") as tmp:
            np.savez(tmp, steps=np.int64(roll.shape[0]), bits=np.packbits(roll))
        os.replace(tmp_path, cache_file)
    except OSError as err:
        # A read-only or full disk costs only speed: the roll is already in memory.
        log.warning("cannot write roll cache %s (%s)", cache_file, err)
        if tmp_path is not None:
            tmp_path.unlink(missing_ok=True)


def split_by_song(songs: Sequence[Song], val_fraction: float, seed: int) -> tuple[list[Song], list[Song]]:
    """Shuffle songs by ``seed`` and hold out ``round(len * val_fraction)`` for validation.

    At least one validation song when there are two or more songs and
    ``val_fraction > 0``, and always at least one training song. The result
    depends only on the songs' names, the fraction and the seed, not on the
    order of ``songs``; both lists come back sorted by name.
    """
    ordered = sorted(songs, key=lambda s: s.name)
    if len(ordered) < 2 or val_fraction <= 0:
        return ordered, []
    n_val = min(max(1, round(len(ordered) * val_fraction)), len(ordered) - 1)
    shuffled = np.random.default_rng(seed).permutation(len(ordered))
    val_idx = set(shuffled[:n_val].tolist())
    train = [s for i, s in enumerate(ordered) if i not in val_idx]
    val = [s for i, s in enumerate(ordered) if i in val_idx]
    return train, val


def windows_for(songs: Sequence[Song], pitches: Sequence[int], data: DataConfig) -> WindowSet:
    """Project each song onto ``pitches`` and cut it into windows.

    ``x`` is (N, data.window, len(pitches)) uint8; ``song[i]`` is the index in
    ``song_names`` of the song window ``i`` came from.
    """
    parts, owners, dropped = [], [], 0
    for index, song in enumerate(songs):
        roll, song_dropped = project_roll(song.roll, pitches)
        dropped += song_dropped
        windows = make_windows(roll.astype(np.uint8), data.window, data.hop, data.max_windows_per_song)
        parts.append(windows)
        owners.append(np.full(len(windows), index, dtype=np.int64))
    if parts:
        x, song_of = np.concatenate(parts), np.concatenate(owners)
    else:
        x, song_of = np.zeros((0, data.window, len(pitches)), dtype=np.uint8), np.zeros(0, dtype=np.int64)
    return WindowSet(x=x, song=song_of, song_names=[s.name for s in songs], dropped_notes=dropped)


def prepare_data(
    folder: str | Path,
    data: DataConfig,
    seed: int,
    batch_size: int,
    cache_dir: str | Path | None = None,
) -> TrainingData:
    """Songs under ``folder`` to training and validation windows.

    Pitches come from the training songs only (or ``data.pitch_range``), so
    validation measures what the model would do on a song it has not seen.

    Raises
    ------
    DataError
        No MIDI files, no usable song, or fewer training windows than one batch.
    """
    folder = Path(folder)
    paths = find_songs(folder)
    if not paths:
        raise DataError(f"no .mid or .midi files in {folder} (searched recursively); add MIDI songs there")
    songs = _load_paths(folder, paths, data.timing, cache_dir)
    if not songs:
        raise DataError(
            f"none of the {len(paths)} MIDI file(s) in {folder} is usable: all {len(paths)} were skipped "
            "(unreadable, without notes, or drums only; see the warnings above); "
            "at least one song with pitched notes is needed"
        )

    train_songs, val_songs = split_by_song(songs, data.val_fraction, seed)
    if len(songs) == 1 and data.val_fraction > 0:
        log.warning("only one usable song (%s): training without a validation set", songs[0].name)
    pitches = select_pitches([s.roll for s in train_songs], data.pitch_range)

    train = windows_for(train_songs, pitches, data)
    if len(train.x) < batch_size:
        raise DataError(_too_few_windows_message(train, train_songs, data, batch_size))
    if train.dropped_notes:
        log.info("dropped %d training notes outside pitches %d-%d", train.dropped_notes, pitches[0], pitches[-1])

    val = windows_for(val_songs, pitches, data) if val_songs else None
    if val is not None and len(val.x) == 0:
        log.warning("the %d validation song(s) are shorter than one window of %d steps: no validation set",
                    len(val_songs), data.window)
        val = None
    if val is not None and val.dropped_notes:
        log.info("dropped %d validation notes on pitches the training songs do not use", val.dropped_notes)

    return TrainingData(train=train, val=val, pitches=pitches, songs_found=len(paths), songs_used=len(songs))


def _too_few_windows_message(train: WindowSet, songs: Sequence[Song], data: DataConfig, batch_size: int) -> str:
    shown = 8
    lengths = ", ".join(f"{s.name} {len(s.roll)}" for s in songs[:shown])
    if len(songs) > shown:
        lengths += f", and {len(songs) - shown} more"
    return (
        f"only {len(train.x)} training window(s) of {data.window} steps (hop {data.hop}, "
        f"{data.timing.describe()}) from {len(songs)} training song(s), but one batch needs {batch_size}; "
        f"song lengths in steps: {lengths}. "
        "Use a smaller --batch-size or --window, or add more songs"
    )
