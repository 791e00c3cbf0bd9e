"""A corpus of piano rolls on disk, and training windows cut from it on demand.

A store is a folder: ``rolls.u8``, every song's roll and onsets bit-packed (``(T, 32)`` uint8,
eight pitches a byte: 32 bytes a frame, a sixteenth of the bool arrays) one after the other and read
through a memory map, so only the frames a batch touches are in memory; and ``index.npz``,
the songs' names, their first frames (``offsets``, ``(S + 1,)``, song ``i`` is frames
``offsets[i]:offsets[i + 1]``) and, per song and pitch, the notes (runs of on-frames) it
plays, from which pitches and dropped notes are counted without reading a roll. ``store.json``
says what was stored and which files were skipped, and why.

A store is written once, to a temporary folder renamed into place, and keyed by its songs'
names and contents and the frame timing: the same folder of songs finds its store again and
parses nothing, while a changed song makes a new store (from the roll cache, so only the
changed song is parsed). Stores live under the roll cache, in ``<cache>/stores/<key>/``.

:class:`StoredWindows` is the ``(N, W, P)`` uint8 array of a list of stored songs cut into
windows, as ``windows.make_windows`` would cut them, without holding it: ``windows[indices]``
reads and unpacks those windows only. Its memory is a few numbers per song, not per window.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import shutil
import tempfile
from pathlib import Path
from typing import Iterable, Sequence

import numpy as np

from ..config import MAX_BAR_BEATS, DataConfig, FrameTiming
from ..errors import DataError
from .meter import bar_steps, meter_columns
from .parsing import PACKED_WIDTH, Parsed, parse_files, unpack_onsets, unpack_roll
from .pianoroll import N_MIDI_PITCHES, run_starts

log = logging.getLogger("vrae_live")

STORE_FORMAT = "store-v3"  # part of every store's key: bump it when the layout changes
ROLLS_FILE, INDEX_FILE, META_FILE = "rolls.u8", "index.npz", "store.json"
GATHER_CHUNK = 2048  # windows unpacked at once: (2048, W, 256) bytes of scratch at most


_BITS_SET = np.array([bin(byte).count("1") for byte in range(256)], dtype=np.int64)  # a packed byte's notes


class RollStore:
    """The rolls of a corpus, memory-mapped. ``len(store)`` songs, ``store.names[i]`` each."""

    def __init__(self, folder: str | Path) -> None:
        self.folder = Path(folder)
        try:
            meta = json.loads((self.folder / META_FILE).read_text())
            with np.load(self.folder / INDEX_FILE, allow_pickle=False) as index:
                self.names = [str(n) for n in index["names"]]
                self.offsets = index["offsets"].astype(np.int64)  # (S + 1,)
                self.notes = index["onsets"]  # (S, 128) int32: notes per pitch
                self.bars = index["bars"].astype(np.float64)  # (S,) quarter notes in a bar of each song
            frames = int(self.offsets[-1])
            self.frames = (np.memmap(self.folder / ROLLS_FILE, dtype=np.uint8, mode="r", shape=(frames, PACKED_WIDTH))
                           if frames else np.zeros((0, PACKED_WIDTH), np.uint8))  # (F, 32)
        except Exception as err:  # a missing file, a wrong size: the store is rebuilt
            raise DataError(f"roll store {self.folder} is damaged ({type(err).__name__}: {err})") from err
        if meta.get("format") != STORE_FORMAT or len(self.names) + 1 != len(self.offsets):
            raise DataError(f"roll store {self.folder} has another format or a wrong index")
        self.timing = FrameTiming(**meta["timing"])
        self.skipped: list[tuple[str, str]] = [tuple(s) for s in meta.get("skipped", [])]
        self.files = int(meta.get("files", len(self.names)))

    def __len__(self) -> int:
        return len(self.names)

    @property
    def lengths(self) -> np.ndarray:
        """``(S,)`` frames of each song."""
        return np.diff(self.offsets)

    def roll(self, song: int) -> np.ndarray:
        """Song ``song``'s full roll, ``(T, 128)`` bool."""
        return unpack_roll(np.asarray(self.frames[self.offsets[song]:self.offsets[song + 1]]))

    def onsets(self, song: int) -> np.ndarray:
        """Song ``song``'s onsets, ``(T, 128)`` bool."""
        return unpack_onsets(np.asarray(self.frames[self.offsets[song]:self.offsets[song + 1]]))

    def pitches_used(self, songs: Sequence[int]) -> np.ndarray:
        """``(128,)`` bool: the pitches any of ``songs`` plays."""
        return self.notes[np.asarray(songs, dtype=np.int64)].sum(axis=0) > 0

    def notes_at_once(self, songs: Sequence[int]) -> np.ndarray:
        """``(129,)`` int64: the frames of ``songs`` where 0, 1, ... 128 notes sound at once."""
        counts = np.zeros(N_MIDI_PITCHES + 1, dtype=np.int64)
        for song in songs:
            packed = np.asarray(self.frames[self.offsets[song]:self.offsets[song + 1], :PACKED_WIDTH // 2])
            counts += np.bincount(_BITS_SET[packed].sum(axis=1, dtype=np.int64), minlength=len(counts))
        return counts

    def notes_outside(self, songs: Sequence[int], pitches: Sequence[int]) -> int:
        """Notes of ``songs`` on pitches not in ``pitches`` (``pianoroll.project_roll``'s dropped notes)."""
        outside = np.ones(N_MIDI_PITCHES, dtype=bool)
        outside[list(pitches)] = False
        return int(self.notes[np.asarray(songs, dtype=np.int64)][:, outside].sum())


def store_key(names: Sequence[str], content_keys: Sequence[str], timing: FrameTiming) -> str:
    digest = hashlib.sha256()
    digest.update(STORE_FORMAT.encode())
    digest.update(json.dumps(timing.to_dict(), sort_keys=True).encode())
    for name, key in zip(names, content_keys):
        digest.update(f"\0{name}\0{key}".encode())
    return digest.hexdigest()[:32]


def open_or_build(stores: Path, names: Sequence[str], paths: Sequence[Path], content_keys: Sequence[str],
                  timing: FrameTiming, roll_cache: Path, workers: int | None = None) -> RollStore:
    """The store of these songs under ``stores``: found by its key, else parsed (``workers``) and written."""
    folder = stores / store_key(names, content_keys, timing)
    if (folder / META_FILE).is_file():
        try:
            store = RollStore(folder)
            log.info("roll store %s: %d songs, parsed before", folder, len(store))
            return store
        except DataError as err:
            log.warning("%s; writing it again", err)
            shutil.rmtree(folder, ignore_errors=True)
    parsed = parse_files(paths, content_keys, timing, roll_cache, workers)
    return write_store(folder, names, parsed, timing)


def write_store(folder: Path, names: Sequence[str], parsed: Iterable[Parsed], timing: FrameTiming) -> RollStore:
    """Write each usable song's packed roll as it comes (one in memory at a time), then the index."""
    folder.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(dir=folder.parent, prefix=".tmp-"))
    try:
        kept, offsets, onsets, bars, skipped, frames = [], [0], [], [], [], 0
        with open(tmp / ROLLS_FILE, "wb") as rolls:
            for song, name in zip(parsed, names):  # parsed first: its end closes the pool
                if song.packed is None:
                    log.warning("skipping %s: %s", name, song.reason)
                    skipped.append((name, song.reason))
                    continue
                rolls.write(np.ascontiguousarray(song.packed, dtype=np.uint8).tobytes())
                frames += len(song.packed)
                kept.append(name)
                offsets.append(frames)
                onsets.append(_onsets_per_pitch(song.packed))
                bars.append(song.bar)
        np.savez(tmp / INDEX_FILE, names=np.array(kept, dtype=str), offsets=np.array(offsets, dtype=np.int64),
                 onsets=np.array(onsets, dtype=np.int32).reshape(len(kept), N_MIDI_PITCHES),
                 bars=np.array(bars, dtype=np.float64))
        meta = {"format": STORE_FORMAT, "timing": timing.to_dict(), "songs": len(kept), "files": len(names),
                "frames": frames, "skipped": skipped}
        (tmp / META_FILE).write_text(json.dumps(meta, indent=1))
        try:
            os.replace(tmp, folder)
        except OSError:  # another run wrote the same store meanwhile: theirs is as good
            shutil.rmtree(tmp, ignore_errors=True)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    store = RollStore(folder)
    log.info("roll store %s: %d songs, %.1f MB", folder, len(store), store.frames.nbytes / 1e6)
    return store


def _onsets_per_pitch(packed: np.ndarray) -> np.ndarray:
    """``(128,)`` runs of on-frames per pitch of a packed roll (``pianoroll.count_onsets`` by column):
    a note struck again while it sounds counts once, as a model without onsets sees it."""
    return run_starts(unpack_roll(packed)).sum(axis=0)


class StoredWindows:
    """The windows of some stored songs, an ``(N, W, C)`` uint8 array read on demand.

    Song ``songs[j]`` of the store gives windows of ``data.window`` frames every ``data.hop``
    frames (the first ``data.max_windows_per_song``), projected onto ``pitches`` (``C = P``
    columns, or ``2P`` with ``data.onsets``: the pitches' onsets after them), in song order:
    the array ``corpus.windows_for`` makes, window for window. Indexing with an int array or a
    slice reads those windows from the memory map; ``np.asarray`` reads them all (small sets,
    tests). ``song[i]``: the position in ``songs`` of window ``i``'s song; ``starts(i)``: its first
    frame in that song.
    """

    def __init__(self, store: RollStore, songs: Sequence[int], pitches: Sequence[int], data: DataConfig) -> None:
        self.store = store
        self.songs = np.asarray(songs, dtype=np.int64)  # (S',) store indices
        self.pitches = np.asarray(pitches, dtype=np.int64)  # (P,)
        self.columns = np.concatenate([self.pitches, N_MIDI_PITCHES + self.pitches]) if data.onsets else self.pitches
        self.width = data.inputs(len(self.pitches))  # the columns, then the next step's meter with data.fed_meter
        self.steps_per_beat = data.steps_per_beat if data.fed_meter else None
        self.bar_steps = np.array([bar_steps(store.bars[i], data.steps_per_beat) for i in self.songs]) if data.fed_meter \
            else None
        self.window, self.hop = data.window, data.hop
        lengths = store.lengths[self.songs]
        counts = np.where(lengths < self.window, 0, (lengths - self.window) // self.hop + 1)
        if data.max_windows_per_song is not None:
            counts = np.minimum(counts, data.max_windows_per_song)
        self.first = np.concatenate([[0], np.cumsum(counts)]).astype(np.int64)  # (S' + 1,) first window of each
        self.song = _SongOfWindow(self.first)

    @property
    def shape(self) -> tuple[int, int, int]:
        return (int(self.first[-1]), self.window, self.width)

    def __len__(self) -> int:
        return int(self.first[-1])

    def _locate(self, indices: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        indices = np.asarray(indices, dtype=np.int64)
        if indices.size and (indices.min() < 0 or indices.max() >= len(self)):
            raise IndexError(f"window index out of range 0..{len(self) - 1}")
        position = np.searchsorted(self.first, indices, side="right") - 1  # song of each window
        return position, (indices - self.first[position]) * self.hop

    def starts(self, indices) -> np.ndarray:
        """First frame of each window in its song."""
        return self._locate(np.arange(len(self))[indices] if isinstance(indices, slice) else indices)[1]

    def __getitem__(self, indices) -> np.ndarray:
        if isinstance(indices, slice):
            indices = np.arange(len(self))[indices]
        indices = np.asarray(indices, dtype=np.int64)
        single = indices.ndim == 0
        indices = indices.reshape(-1)
        out = np.empty((len(indices), self.window, self.width), dtype=np.uint8)  # (n, W, C [+ M])
        steps = np.arange(self.window)
        steps_after = steps + 1
        for at in range(0, len(indices), GATHER_CHUNK):
            position, start = self._locate(indices[at:at + GATHER_CHUNK])
            rows = (self.store.offsets[self.songs[position]] + start)[:, None] + steps  # (n, W) frame numbers
            packed = self.store.frames[rows]  # (n, W, 32)
            out[at:at + len(rows), :, :len(self.columns)] = np.unpackbits(packed, axis=2)[:, :, self.columns]
            if self.bar_steps is not None:  # each frame with the meter of the step after it
                after = (start[:, None] + steps_after[None, :]).reshape(-1)  # (n * W,) the steps after each frame
                bars = np.repeat(self.bar_steps[position], self.window)
                meter = _meter_of(after, self.steps_per_beat, bars)
                out[at:at + len(rows), :, len(self.columns):] = meter.reshape(len(rows), self.window, -1)
        return out[0] if single else out

    def __array__(self, dtype=None, copy=None) -> np.ndarray:
        x = self[np.arange(len(self))]
        return x if dtype is None else x.astype(dtype)


def _meter_of(steps: np.ndarray, steps_per_beat: int, bars: np.ndarray) -> np.ndarray:
    """``meter_columns`` of steps whose songs have bars of ``bars (N,)`` steps each."""
    out = np.empty((len(steps), steps_per_beat + MAX_BAR_BEATS), dtype=np.uint8)
    for bar in np.unique(bars):
        mine = bars == bar
        out[mine] = meter_columns(steps[mine], steps_per_beat, int(bar))
    return out


class _SongOfWindow:
    """``song[i]``: which of the songs window ``i`` comes from, computed, not stored per window."""

    def __init__(self, first: np.ndarray) -> None:
        self.first = first

    def __len__(self) -> int:
        return int(self.first[-1])

    def __getitem__(self, indices) -> np.ndarray:
        if isinstance(indices, slice):
            indices = np.arange(len(self))[indices]
        return np.searchsorted(self.first, np.asarray(indices, dtype=np.int64), side="right") - 1

    def __array__(self, dtype=None, copy=None) -> np.ndarray:
        song = np.repeat(np.arange(len(self.first) - 1), np.diff(self.first))
        return song if dtype is None else song.astype(dtype)
