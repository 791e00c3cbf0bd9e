"""Parsing speed: pretty_midi (the reference) against symusic (the fast path), same files, same run.

Each file of FOLDER is read to a full piano roll by ``pianoroll.load_roll`` (pretty_midi) and by
``fastroll.load_roll_fast`` (symusic, handing a file to pretty_midi where the two would differ),
one process, one core, from bytes already in the page cache, no roll cache. Runs alternate
(reference, fast, reference, ...) so a noisy shared machine slows both alike; the figure of a
run is files per second on that one core, medians over the runs are printed, and ``ratio`` =
fast / reference. Every roll is also compared frame by frame: the count of files whose rolls
differ must be 0.

    python3 scripts/export_corpus.py --composer bach --limit 120 --out /tmp/bach
    python3 scripts/bench_parse.py /tmp/bach --repeats 3
    python3 scripts/bench_parse.py /tmp/bach --steps-per-beat 4     # the beat grid
    python3 scripts/bench_parse.py /tmp/bach --workers 2            # also: the whole folder in 2 processes
"""

from __future__ import annotations

import argparse
import collections
import os
import platform
import statistics
import sys
import tempfile
import time
import warnings
from pathlib import Path

import numpy as np

from vrae_live.config import FrameTiming
from vrae_live.data.corpus import find_songs, load_songs
from vrae_live.data.fastroll import load_roll_fast
from vrae_live.data.pianoroll import UnusableSongError, load_roll


def machine_line() -> str:
    import pretty_midi
    import symusic

    from vrae_live.machine import cpu_model

    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    return (f"machine: {cpu_model()}, {cores} cores, load {os.getloadavg()[0]:.2f}; python "
            f"{platform.python_version()}, pretty_midi {pretty_midi.__version__}, symusic {symusic.__version__}")


def read_all(paths, load) -> tuple[float, list]:
    """Seconds to read every file, and each outcome (roll or reason)."""
    outcomes = []
    started = time.perf_counter()
    for path in paths:
        try:
            outcomes.append(load(path))
        except UnusableSongError as err:
            outcomes.append(err.reason)
    return time.perf_counter() - started, outcomes


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("folder", type=Path, help="MIDI files (searched recursively)")
    parser.add_argument("--fs", type=float, default=20.0)
    parser.add_argument("--steps-per-beat", type=int)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--limit", type=int, help="the first N files only")
    parser.add_argument("--workers", type=int, help="also time load_songs of the folder with this many processes")
    args = parser.parse_args(argv)
    warnings.simplefilter("ignore")  # pretty_midi's warnings about odd files, once per file and run

    timing = FrameTiming(fs=None, steps_per_beat=args.steps_per_beat) if args.steps_per_beat \
        else FrameTiming(fs=args.fs)
    paths = find_songs(args.folder)[: args.limit]
    print(machine_line())
    print(f"{len(paths)} files in {args.folder}, {timing.describe()}, {args.repeats} runs of each parser, one core")
    for path in paths:
        path.read_bytes()  # into the page cache before any timing

    fallbacks: collections.Counter = collections.Counter()

    def fast(path):
        roll, fallback = load_roll_fast(path, timing)
        fallbacks[fallback or "symusic"] += 1
        return roll

    rates = {"pretty_midi": [], "symusic": []}
    outcomes = {}
    for _ in range(args.repeats):
        for name, load in (("pretty_midi", lambda p: load_roll(p, timing)), ("symusic", fast)):
            seconds, outcomes[name] = read_all(paths, load)
            rates[name].append(len(paths) / seconds)
    differ = sum(
        not (isinstance(a, str) and a == b if isinstance(a, str) else
             not isinstance(b, str) and a.shape == b.shape and np.array_equal(a, b))
        for a, b in zip(outcomes["pretty_midi"], outcomes["symusic"]))
    for name, runs in rates.items():
        print(f"{name:>12}: {statistics.median(runs):9.1f} files/s/core ({statistics.median(1e3 / np.array(runs)):.2f} ms "
              f"a file; runs {', '.join(f'{r:.1f}' for r in runs)})")
    ratio = statistics.median(rates["symusic"]) / statistics.median(rates["pretty_midi"])
    print(f"ratio = {ratio:.1f} (symusic / pretty_midi, files per second)")
    read_by = ", ".join(f"{name} {n // args.repeats}" for name, n in fallbacks.most_common())
    print(f"fast path read by: {read_by}")
    print(f"rolls that differ from pretty_midi's: {differ} of {len(paths)}")
    if args.workers:
        with tempfile.TemporaryDirectory() as cache:
            started = time.perf_counter()
            songs = load_songs(args.folder, timing, cache_dir=cache, workers=args.workers)
            seconds = time.perf_counter() - started
        print(f"load_songs --workers {args.workers}: {len(paths) / seconds:.1f} files/s ({len(songs)} songs, "
              f"hashing, parsing, caching; {seconds:.1f} s, pool start included)")
    return 1 if differ else 0


if __name__ == "__main__":
    sys.exit(main())
