#!/usr/bin/env python3
"""Export public-domain music from music21's corpus (installed offline with pip) to .mid files.

    python scripts/export_corpus.py --out songs/bach                 # Bach's chorales (433 pieces)
    python scripts/export_corpus.py --composer bach --composer monteverdi --out songs/mixed

Each piece becomes ``OUT/COMPOSER/NAME.mid``. Files that exist are kept, so a second
run is quick. Pieces music21 cannot parse or write are reported and skipped.
Needs ``pip install music21`` (in the ``dev`` extra).
"""

from __future__ import annotations

import argparse
import sys
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path


def export_one(job: tuple[str, str]) -> tuple[str, str | None]:
    """Parse one corpus file and write each score in it; returns (source, error or None)."""
    from music21 import converter, stream

    source, target = job
    try:
        parsed = converter.parse(source)
        scores = list(parsed.scores) if isinstance(parsed, stream.Opus) else [parsed]
        for i, score in enumerate(scores):
            path = Path(target) if len(scores) == 1 else Path(target).with_name(f"{Path(target).stem}-{i + 1}.mid")
            tmp = path.with_name(f".{path.name}.tmp")
            score.write("midi", fp=str(tmp))
            tmp.replace(path)
    except Exception as err:  # music21 raises many kinds of errors on odd corpus files
        return source, f"{type(err).__name__}: {err}"
    return source, None


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--composer", action="append", help="music21 corpus composer (repeatable) [default: bach]")
    parser.add_argument("--out", type=Path, required=True, help="Output folder.")
    parser.add_argument("--limit", type=int, help="At most this many pieces per composer (the first, sorted).")
    parser.add_argument("--jobs", type=int, default=2, help="Parallel processes.")
    args = parser.parse_args(argv)

    from music21 import corpus

    jobs = []
    for composer in args.composer or ["bach"]:
        paths = sorted(corpus.getComposer(composer))
        if not paths:
            parser.error(f"music21's corpus has no pieces by {composer!r}")
        folder = args.out / composer
        folder.mkdir(parents=True, exist_ok=True)
        for path in paths[: args.limit]:
            target = folder / f"{Path(path).stem}.mid"  # a piece in two formats is exported once
            if not target.exists() and str(target) not in {t for _, t in jobs}:
                jobs.append((str(path), str(target)))

    failed = 0
    with ProcessPoolExecutor(max_workers=max(1, args.jobs)) as pool:
        for source, error in pool.map(export_one, jobs, chunksize=4):
            if error:
                failed += 1
                print(f"skipped {source}: {error}", file=sys.stderr)
    total = sum(1 for _ in args.out.rglob("*.mid"))
    print(f"{total} .mid files in {args.out} ({len(jobs) - failed} written now, {failed} skipped)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
