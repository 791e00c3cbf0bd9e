"""Parse many MIDI files at once: worker processes, the content-keyed roll cache, one result per file.

A file's roll is cached under a key of its bytes and the frame timing (``corpus.cache_key``),
so a second run over the same songs parses nothing. Files are parsed by
:func:`~vrae_live.data.fastroll.load_roll_fast` (symusic, with pretty_midi where the two
would differ). A worker returns the roll and its onsets bit-packed, ``(T, 32)`` uint8, eight
pitches a byte (the roll's 128 columns, then the onsets'): the form both the cache and the roll
store keep, and a sixteenth of the bool arrays.
"""

from __future__ import annotations

import logging
import math
import multiprocessing
import os
import tempfile
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator, Sequence

import numpy as np

from ..config import FrameTiming
from .fastroll import load_roll_fast
from .meter import DEFAULT_BAR_QUARTERS, bar_quarters_of
from .pianoroll import N_MIDI_PITCHES, UnusableSongError

log = logging.getLogger("vrae_live")

PACKED_WIDTH = 2 * N_MIDI_PITCHES // 8  # bytes a frame of a packed roll and its onsets
# A worker process costs about a second to start (its imports), the time symusic takes for some
# 900 files: each worker gets at least this many, so up to a thousand songs are parsed in this
# process (120 chorales: 0.2 s in this one, 1.4 s with a pool of two).
FILES_PER_WORKER = 500


def default_workers() -> int:
    """The cores this process may run on."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # macOS, Windows
        return os.cpu_count() or 1


@dataclass
class Parsed:
    """One file's result: its packed roll, or why it is unusable."""

    packed: np.ndarray | None  # (T, 32) uint8: np.packbits of the (T, 256) bool roll and onsets along pitch
    reason: str | None = None  # why the file is unusable (packed is None then)
    bar: float = DEFAULT_BAR_QUARTERS  # quarter notes in a bar of its first time signature (meter.py)
    from_cache: bool = False
    parser: str = "symusic"  # "symusic", "pretty_midi (<fallback>)", or "cache"


def unpack_roll(packed: np.ndarray) -> np.ndarray:
    """``(T, 32)`` uint8 to the ``(T, 128)`` bool roll."""
    return np.unpackbits(packed[:, :PACKED_WIDTH // 2], axis=1).astype(bool)


def unpack_onsets(packed: np.ndarray) -> np.ndarray:
    """``(T, 32)`` uint8 to the ``(T, 128)`` bool onsets: True where a note starts."""
    return np.unpackbits(packed[:, PACKED_WIDTH // 2:], axis=1).astype(bool)


def parse_one(job: tuple[str, str, str, dict]) -> Parsed:
    """Parse (or take from the cache) one file: ``(path, cache key, cache folder, timing dict)``."""
    path, key, cache_dir, timing = job
    cache_file = Path(cache_dir) / f"{key}.npz"
    cached = read_cached_roll(cache_file)
    if cached is not None:
        return Parsed(cached[0], bar=cached[1], from_cache=True, parser="cache")
    try:
        try:
            content = Path(path).read_bytes()
        except OSError as err:
            raise UnusableSongError(path, f"cannot read it ({err.strerror or err})") from err
        roll, fallback = load_roll_fast(path, FrameTiming(**timing), content, with_onsets=True)
    except UnusableSongError as err:
        return Parsed(None, err.reason, parser="")
    packed, bar = np.packbits(roll, axis=1), bar_quarters_of(content)
    write_cached_roll(cache_file, packed, bar)
    return Parsed(packed, bar=bar, parser="symusic" if fallback is None else f"pretty_midi ({fallback})")


def parse_files(paths: Sequence[Path], keys: Sequence[str], timing: FrameTiming, cache_dir: Path,
                workers: int | None = None) -> Iterator[Parsed]:
    """A :class:`Parsed` for each of ``paths``, in order, as they come.

    ``workers``: processes that parse (default: the cores); 1 parses in this process. Fewer
    are started for a few files (``FILES_PER_WORKER``). Results are yielded, not gathered, so
    a caller that writes each away holds one roll at a time.
    """
    workers = default_workers() if workers is None else workers
    jobs = [(str(p), k, str(cache_dir), timing.to_dict()) for p, k in zip(paths, keys)]
    workers = max(1, min(workers, math.ceil(len(jobs) / FILES_PER_WORKER)))
    parsers: Counter[str] = Counter()
    if workers == 1:
        results = map(parse_one, jobs)
        for parsed in results:
            parsers[parsed.parser] += 1
            yield parsed
    else:
        # forkserver (spawn where there is none): no fork of a process that runs torch's threads
        method = "forkserver" if "forkserver" in multiprocessing.get_all_start_methods() else "spawn"
        with multiprocessing.get_context(method).Pool(workers) as pool:
            for parsed in pool.imap(parse_one, jobs, chunksize=8):
                parsers[parsed.parser] += 1
                yield parsed
    parsers.pop("", None)
    if parsers:
        log.info("read %s in %d process(es)", ", ".join(f"{n} by {p}" for p, n in parsers.most_common()), workers)


def read_cached_roll(cache_file: Path) -> tuple[np.ndarray, float] | None:
    """The cached packed roll ``(T, 32)`` and bar, or None when absent or damaged (it is then rewritten)."""
    if not cache_file.is_file():
        return None
    try:
        with np.load(cache_file, allow_pickle=False) as stored:
            steps = int(stored["steps"])
            bits = stored["bits"]
            bar = float(stored["bar"])
        # a flat packbits of (T, 256) is the (T, 32) packing row by row; check the size first
        if steps < 1 or bits.dtype != np.uint8 or bits.size != steps * PACKED_WIDTH:
            raise ValueError(f"{bits.size} bytes do not hold {steps} frames")
        if not bar > 0:
            raise ValueError(f"a bar of {bar} quarter notes")
        return bits.reshape(steps, PACKED_WIDTH), bar
    except Exception as err:  # noqa: BLE001 -- a truncated zip, a missing key, a wrong size: parse again
        log.warning("ignoring damaged roll cache %s (%s); parsing the song again", cache_file, err)
        return None


def write_cached_roll(cache_file: Path, packed: np.ndarray, bar: float) -> None:
    """Store atomically (temp file, then rename) so a killed run leaves no half-written file."""
    tmp_path = None
    try:
        cache_file.parent.mkdir(parents=True, exist_ok=True)
        fd, name = tempfile.mkstemp(dir=cache_file.parent, suffix=".tmp")
        tmp_path = Path(name)
        with os.fdopen(fd, "wb") as tmp:
            np.savez(tmp, steps=np.int64(packed.shape[0]), bits=packed.reshape(-1), bar=np.float64(bar))
        os.replace(tmp_path, cache_file)
    except OSError as err:
        # A read-only or full disk costs only speed: the roll is already in memory.
        log.warning("cannot write roll cache %s (%s)", cache_file, err)
        if tmp_path is not None:
            tmp_path.unlink(missing_ok=True)
