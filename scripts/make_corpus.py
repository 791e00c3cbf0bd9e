"""A large MIDI corpus made offline: transposed and cut copies of a few real songs.

For scale figures only (docs/scale.md): 1k, 10k or 50k files from, say, the Bach chorales
music21 exports. Copy ``i`` takes source file ``i % S``, transposes it by one of -5..+6
semitones, and keeps a random stretch of it (60-100 % of its length, from a random start
in its first third), shifted to start at tick 0; so no two copies have the same bytes (the
roll cache and the store key on content) while every copy is music as real as its source.

    python3 scripts/export_corpus.py --composer bach --limit 120 --out /tmp/bach
    python3 scripts/make_corpus.py /tmp/bach --songs 10000 --out /tmp/corpus-10k
"""

from __future__ import annotations

import argparse
import sys
from multiprocessing import Pool
from pathlib import Path

import numpy as np


def make_copy(job: tuple[str, str, int, int]) -> bool:
    import symusic

    source, target, transpose, seed = job
    if Path(target).exists():
        return True
    rng = np.random.default_rng(seed)
    try:
        score = symusic.Score.from_file(source)
    except Exception:  # noqa: BLE001 -- a source symusic cannot read: no copy
        return False
    end = score.end()
    start = int(end * rng.uniform(0, 1 / 3))
    stop = min(end, start + int(end * rng.uniform(0.6, 1.0)))
    copy = score.shift_pitch(transpose).clip(start, stop, clip_end=True).shift_time(-start)
    Path(target).parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(target).with_suffix(".tmp")
    tmp.write_bytes(copy.dumps_midi())
    tmp.replace(target)
    return True


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("source", type=Path, help="folder of .mid files to copy (searched recursively)")
    parser.add_argument("--songs", type=int, required=True, help="how many files to make")
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--jobs", type=int, default=2)
    args = parser.parse_args(argv)

    sources = sorted(p for p in args.source.rglob("*") if p.suffix.lower() in (".mid", ".midi"))
    if not sources:
        parser.error(f"no MIDI files in {args.source}")
    jobs = []
    for i in range(args.songs):
        source = sources[i % len(sources)]
        transpose = (i // len(sources)) * 7 % 12 - 5  # -5..+6, a different one for each round of sources
        folder = f"{i // 1000:03d}"  # a thousand files a folder
        jobs.append((str(source), str(args.out / folder / f"{source.stem}_t{transpose:+d}_{i}.mid"), transpose, i))
    with Pool(args.jobs) as pool:
        made = sum(pool.imap_unordered(make_copy, jobs, chunksize=64))
    print(f"{made} of {args.songs} files in {args.out} (copies of {len(sources)} files in {args.source})")
    return 0 if made == args.songs else 1


if __name__ == "__main__":
    sys.exit(main())
