"""A folder of MIDI songs to training and validation windows.

Songs, never windows, are split between training and validation, so no
validation window shares a song with a training window. Parsed rolls are
cached on disk, keyed by the file's content and the frame timing, so a second
run over the same folder does not parse MIDI again. Files are parsed in worker
processes (``data.parsing``). Training reads its windows from a roll store on
disk (``data.store``), so a corpus of any size fits in memory.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import numpy as np

from ..config import DataConfig, FrameTiming
from ..errors import DataError
from .meter import DEFAULT_BAR_QUARTERS, bar_steps, meter_columns
from .parsing import parse_files, unpack_onsets, unpack_roll
from .pianoroll import model_frames, project_roll, run_starts, select_pitches
from .store import RollStore, StoredWindows, open_or_build
from .windows import make_windows

log = logging.getLogger("vrae_live")

MIDI_SUFFIXES = {".mid", ".midi"}
CACHE_ENV = "VRAE_LIVE_CACHE"
# Part of every cache key: bump it when load_roll's output changes for the same file.
CACHE_FORMAT = "roll-v3"  # v2: with the onsets; v3: and the bar


@dataclass
class Song:
    name: str  # path relative to the song folder, posix style
    path: Path
    roll: np.ndarray  # (T, 128) bool
    onsets: np.ndarray | None = None  # (T, 128) bool: where a note starts; None: where a run of frames starts
    bar: float = DEFAULT_BAR_QUARTERS  # quarter notes in a bar (data/meter.py)

    def frames(self, pitches: Sequence[int], onsets: bool = False) -> np.ndarray:
        """What a model of ``pitches`` sees of this song: ``(T, P)``, or ``(T, 2P)`` with onsets."""
        if not onsets:
            return model_frames(self.roll, pitches)
        return model_frames(self.roll, pitches, run_starts(self.roll) if self.onsets is None else self.onsets)

    def inputs(self, pitches: Sequence[int], data: DataConfig) -> np.ndarray:
        """What a model of ``data`` is fed of this song, ``(T, data.inputs(P))``: its frames, each with the
        meter of the step after it for a model of the meter."""
        frames = self.frames(pitches, data.onsets)
        if not data.fed_meter:
            return frames
        steps_per_beat = data.steps_per_beat
        meter = meter_columns(np.arange(1, len(frames) + 1), steps_per_beat, bar_steps(self.bar, steps_per_beat))
        return np.concatenate([frames.astype(np.uint8), meter], axis=1)


@dataclass
class WindowSet:
    x: np.ndarray | StoredWindows  # (N, W, P) uint8, in memory or read from a roll store on demand
    song: np.ndarray  # (N,) int64, index into song_names (computed per window for a StoredWindows)
    song_names: list[str]
    dropped_notes: int  # notes on pitches outside the model's pitches


@dataclass
class TrainingData:
    train: WindowSet
    val: WindowSet | None
    pitches: list[int]
    songs_found: int
    songs_used: int
    bar_quarters: float = DEFAULT_BAR_QUARTERS  # the training songs' most common bar: what a model of the meter plays in live
    polyphony: int | None = None  # notes at once the training songs keep to (songs_polyphony): the live gate's limit


# The share of the sounding frames whose notes at once the songs' polyphony covers: a chorale's four
# voices (4 in 81 % of its frames, 5 or more in 6 %), a fiddle tune's one (2 in 6 %).
POLYPHONY_SHARE = 0.9


def songs_polyphony(notes_at_once: np.ndarray) -> int | None:
    """The fewest notes at once that ``POLYPHONY_SHARE`` of the sounding frames keep to, from the counts
    of frames with 0, 1, 2, ... notes (``RollStore.notes_at_once``); None where no note sounds."""
    sounding = np.asarray(notes_at_once[1:], dtype=np.float64)
    if not sounding.sum():
        return None
    return int(np.searchsorted(np.cumsum(sounding) / sounding.sum(), POLYPHONY_SHARE - 1e-9)) + 1


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


def load_songs(folder: str | Path, timing: FrameTiming, cache_dir: str | Path | None = None,
               workers: int | None = None, names: Sequence[str] | None = None) -> list[Song]:
    """Every usable song under ``folder``; unusable files are skipped with a warning.

    ``cache_dir`` defaults to ``$VRAE_LIVE_CACHE``, else ``~/.cache/vrae-live/rolls``.
    ``workers``: processes that parse (default: the cores; 1: this one).
    ``names``: only these songs (paths relative to ``folder``, as a checkpoint records them).
    """
    paths = find_songs(folder) if names is None else [Path(folder) / name for name in names]
    return _load_paths(Path(folder), paths, timing, cache_dir, workers)


def _load_paths(folder: Path, paths: Sequence[Path], timing: FrameTiming, cache_dir: str | Path | None,
                workers: int | None = None) -> list[Song]:
    cache = Path(cache_dir) if cache_dir is not None else default_cache_dir()
    readable, keys = _content_keys(paths, timing)
    songs, from_cache = [], 0
    # the generator first: zip then runs it to its end, which closes the pool and logs the parsers
    for parsed, path in zip(parse_files(readable, keys, timing, cache, workers), readable):
        if parsed.packed is None:
            log.warning("skipping %s: %s", path, parsed.reason)
            continue
        from_cache += parsed.from_cache
        songs.append(Song(name=path.relative_to(folder).as_posix(), path=path, roll=unpack_roll(parsed.packed),
                          onsets=unpack_onsets(parsed.packed), bar=parsed.bar))
    log.info("loaded %d of %d MIDI files from %s (%d from cache)", len(songs), len(paths), folder, from_cache)
    return songs


def _content_keys(paths: Sequence[Path], timing: FrameTiming) -> tuple[list[Path], list[str]]:
    """The readable files and their cache keys; a file that cannot be read is skipped with a warning."""
    readable, keys = [], []
    for path in paths:
        try:
            content = path.read_bytes()
        except OSError as err:
            log.warning("skipping %s: %s", path, f"cannot read it ({err.strerror or err})")
            continue
        readable.append(path)
        keys.append(_cache_key(content, timing))
    return readable, keys


def _cache_key(content: bytes, timing: FrameTiming) -> str:
    digest = hashlib.sha256()
    digest.update(CACHE_FORMAT.encode())
    digest.update(json.dumps(timing.to_dict(), sort_keys=True).encode())
    digest.update(b"\0")
    digest.update(content)
    return digest.hexdigest()


def store_songs(folder: str | Path, timing: FrameTiming, cache_dir: str | Path | None = None,
                workers: int | None = None) -> RollStore:
    """The roll store of the songs under ``folder`` (``data.store``), written once, found again after.

    It lives in ``<cache_dir>/stores/``; unusable files are skipped with a warning naming each,
    again each time the store is opened.

    Raises
    ------
    DataError
        No MIDI files under ``folder``.
    """
    folder = Path(folder)
    paths = find_songs(folder)
    if not paths:
        raise DataError(f"no .mid or .midi files in {folder} (searched recursively); add MIDI songs there")
    cache = Path(cache_dir) if cache_dir is not None else default_cache_dir()
    readable, keys = _content_keys(paths, timing)
    names = [p.relative_to(folder).as_posix() for p in readable]
    store = open_or_build(cache / "stores", names, readable, keys, timing, cache, workers)
    store.files = len(paths)
    if store.skipped and store.folder.exists():
        for name, reason in store.skipped:
            log.warning("skipping %s: %s", folder / name, reason)
    log.info("%d of %d MIDI files in %s usable", len(store), len(paths), folder)
    return store


def split_by_song(songs: Sequence[Song], val_fraction: float, seed: int) -> tuple[list[Song], list[Song]]:
    """Shuffle songs by ``seed`` and hold out ``round(len * val_fraction)`` for validation.

    At least one validation song when there are two or more songs and
    ``val_fraction > 0``, and always at least one training song. The result
    depends only on the songs' names, the fraction and the seed, not on the
    order of ``songs``; both lists come back sorted by name.
    """
    ordered = sorted(songs, key=lambda s: s.name)
    val_idx = _held_out(len(ordered), val_fraction, seed)
    return [s for i, s in enumerate(ordered) if i not in val_idx], [s for i, s in enumerate(ordered) if i in val_idx]


def split_names(names: Sequence[str], val_fraction: float, seed: int) -> tuple[list[str], list[str]]:
    """:func:`split_by_song` of song names."""
    ordered = sorted(names)
    val_idx = _held_out(len(ordered), val_fraction, seed)
    return [s for i, s in enumerate(ordered) if i not in val_idx], [s for i, s in enumerate(ordered) if i in val_idx]


def _held_out(count: int, val_fraction: float, seed: int) -> set[int]:
    """Positions in the name-sorted songs held out for validation."""
    if count < 2 or val_fraction <= 0:
        return set()
    n_val = min(max(1, round(count * val_fraction)), count - 1)
    return set(np.random.default_rng(seed).permutation(count)[:n_val].tolist())


def windows_for(songs: Sequence[Song], pitches: Sequence[int], data: DataConfig) -> WindowSet:
    """Project each song onto ``pitches`` and cut it into windows.

    ``x`` is (N, data.window, data.inputs(len(pitches))) uint8 (``Song.inputs``); ``song[i]`` is the
    index in ``song_names`` of the song window ``i`` came from.
    """
    parts, owners, dropped = [], [], 0
    for index, song in enumerate(songs):
        dropped += project_roll(song.roll, pitches)[1]
        windows = make_windows(song.inputs(pitches, data).astype(np.uint8), data.window, data.hop,
                               data.max_windows_per_song)
        parts.append(windows)
        owners.append(np.full(len(windows), index, dtype=np.int64))
    if parts:
        x, song_of = np.concatenate(parts), np.concatenate(owners)
    else:
        x = np.zeros((0, data.window, data.inputs(len(pitches))), dtype=np.uint8)
        song_of = np.zeros(0, dtype=np.int64)
    return WindowSet(x=x, song=song_of, song_names=[s.name for s in songs], dropped_notes=dropped)


def prepare_data(
    folder: str | Path,
    data: DataConfig,
    seed: int,
    batch_size: int,
    cache_dir: str | Path | None = None,
    workers: int | None = None,
) -> TrainingData:
    """Songs under ``folder`` to training and validation windows, read from a roll store.

    The windows are :class:`~vrae_live.data.store.StoredWindows`: cut from the store on
    demand, so memory does not grow with the corpus. Pitches come from the training songs
    only (or ``data.pitch_range``), so validation measures what the model would do on a song
    it has not seen. ``workers``: processes that parse (default: the cores; 1: this one).

    Raises
    ------
    DataError
        No MIDI files, no usable song, or fewer training windows than one batch.
    """
    folder = Path(folder)
    store = store_songs(folder, data.timing, cache_dir, workers)
    if not len(store):
        raise DataError(
            f"none of the {store.files} MIDI file(s) in {folder} is usable: all {store.files} were skipped "
            "(unreadable, without notes, or drums only; see the warnings above); "
            "at least one song with pitched notes is needed"
        )

    index = {name: i for i, name in enumerate(store.names)}
    train_names, val_names = split_names(store.names, data.val_fraction, seed)
    if len(store) == 1 and data.val_fraction > 0:
        log.warning("only one usable song (%s): training without a validation set", store.names[0])
    train_songs, val_songs = [index[n] for n in train_names], [index[n] for n in val_names]
    if data.pitch_range is not None:
        pitches = select_pitches([], data.pitch_range)
    else:
        pitches = [int(p) for p in np.flatnonzero(store.pitches_used(train_songs))]

    train = _stored_windows(store, train_songs, pitches, data)
    if len(train.x) < batch_size:
        raise DataError(_too_few_windows_message(train, store, train_songs, data, batch_size))
    if train.dropped_notes:
        log.info("dropped %d training notes outside pitches %d-%d", train.dropped_notes, pitches[0], pitches[-1])

    val = _stored_windows(store, val_songs, pitches, data) if val_songs else None
    if val is not None and len(val.x) == 0:
        log.warning("the %d validation song(s) are shorter than one window of %d steps: no validation set",
                    len(val_songs), data.window)
        val = None
    if val is not None and val.dropped_notes:
        log.info("dropped %d validation notes on pitches the training songs do not use", val.dropped_notes)

    bars, counts = np.unique(store.bars[train_songs], return_counts=True)
    return TrainingData(train=train, val=val, pitches=pitches, songs_found=store.files, songs_used=len(store),
                        bar_quarters=float(bars[np.argmax(counts)]),
                        polyphony=songs_polyphony(store.notes_at_once(train_songs)))


def _stored_windows(store: RollStore, songs: list[int], pitches: list[int], data: DataConfig) -> WindowSet:
    x = StoredWindows(store, songs, pitches, data)
    return WindowSet(x=x, song=x.song, song_names=[store.names[i] for i in songs],
                     dropped_notes=store.notes_outside(songs, pitches))


def _too_few_windows_message(train: WindowSet, store: RollStore, songs: Sequence[int], data: DataConfig,
                             batch_size: int) -> str:
    shown = 8
    lengths = ", ".join(f"{store.names[i]} {store.lengths[i]}" for i in songs[:shown])
    if len(songs) > shown:
        lengths += f", and {len(songs) - shown} more"
    return (
        f"only {len(train.x)} training window(s) of {data.window} steps (hop {data.hop}, "
        f"{data.timing.describe()}) from {len(songs)} training song(s), but one batch needs {batch_size}; "
        f"song lengths in steps: {lengths}. "
        "Use a smaller --batch-size or --window, or add more songs"
    )
