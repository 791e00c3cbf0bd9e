#!/usr/bin/env python3
"""Export public-domain music from music21's corpus (installed offline with pip) to .mid files.

    python scripts/export_corpus.py --out songs/bach                 # Bach's chorales (433 pieces)
    python scripts/export_corpus.py --composer bach --composer monteverdi --out songs/mixed

Each piece becomes ``OUT/COMPOSER/NAME.mid``. Files that exist are kept, so a second
run is quick. Pieces music21 cannot parse or write are reported and skipped, and so is a file
it writes that ``train`` could not read (one of O'Neill's tunes came out with a tick past 61
million): the rest of a book of tunes is still written.
Needs ``pip install music21`` (in the ``dev`` extra).
"""

from __future__ import annotations

import argparse
import sys
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path


def export_one(job: tuple[str, str]) -> tuple[str, int, list[str]]:
    """Parse one corpus file and write each score in it; returns (source, files written, what
    went wrong: one line for the file, or one for each score that could not be written)."""
    from music21 import converter, stream

    source, target = job
    try:
        parsed = converter.parse(source)
    except Exception as err:  # noqa: BLE001 -- music21 raises many kinds of errors on odd corpus files
        return source, 0, [f"{type(err).__name__}: {err}"]
    scores = list(parsed.scores) if isinstance(parsed, stream.Opus) else [parsed]
    written, errors = 0, []
    for i, score in enumerate(scores):
        path = Path(target) if len(scores) == 1 else Path(target).with_name(f"{Path(target).stem}-{i + 1}.mid")
        tmp = path.with_name(f".{path.name}.tmp")
        try:
            score.write("midi", fp=str(tmp))
            check_readable(tmp)
        except Exception as err:  # noqa: BLE001 -- music21's writer fails in as many ways as its parser
            tmp.unlink(missing_ok=True)
            errors.append(f"{path.name}: {type(err).__name__}: {err}")
            continue
        tmp.replace(path)
        written += 1
    return source, written, errors


def piece_names(paths: list[str], composer: str) -> dict[str, str]:
    """Each corpus file's name for its .mid: its stem (a piece in two formats is exported once),
    with the folders under the composer's where files in two folders share a stem (Beethoven's
    quartets are ``opus18no1/movement1.mxl``, ``opus59no1/movement1.mxl``, ...)."""
    def under(path: Path) -> tuple[str, ...]:
        parts = path.with_suffix("").parts
        return parts[len(parts) - parts[::-1].index(composer):] if composer in parts else parts[-1:]

    folders: dict[str, set] = {}
    for path in map(Path, paths):
        folders.setdefault(path.stem, set()).add(path.parent)
    return {path: "-".join(under(Path(path))) if len(folders[Path(path).stem]) > 1 else Path(path).stem
            for path in paths}


def check_readable(path: Path) -> None:
    """Raise ValueError if ``train`` could not read the MIDI file at ``path``."""
    from vrae_live.data.pianoroll import read_midi

    try:
        read_midi(path)
    except Exception as err:
        raise ValueError(f"music21 wrote a file that cannot be read back ({err})") from err


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--composer", action="append", help="music21 corpus composer (repeatable) [default: bach]")
    parser.add_argument("--out", type=Path, required=True, help="Output folder.")
    parser.add_argument("--limit", type=int, help="At most this many pieces per composer (the first, sorted).")
    parser.add_argument("--match", help="Only the corpus files whose path contains this, e.g. 'han' for the Essen "
                                        "collection's books of Chinese folk songs.")
    parser.add_argument("--jobs", type=int, default=2, help="Parallel processes.")
    args = parser.parse_args(argv)

    from music21 import corpus

    jobs = []
    for composer in args.composer or ["bach"]:
        paths = sorted(p for p in corpus.getComposer(composer) if args.match is None or args.match in str(p))
        if not paths:
            parser.error(f"music21's corpus has no pieces by {composer!r}" + (f" matching {args.match!r}" if args.match else ""))
        folder = args.out / composer
        folder.mkdir(parents=True, exist_ok=True)
        names = piece_names([str(path) for path in paths[: args.limit]], composer)
        for path, name in names.items():
            target = folder / f"{name}.mid"
            if not target.exists() and str(target) not in {t for _, t in jobs}:
                jobs.append((str(path), str(target)))

    written = skipped = 0
    with ProcessPoolExecutor(max_workers=max(1, args.jobs)) as pool:
        for source, count, errors in pool.map(export_one, jobs, chunksize=4):
            written += count
            skipped += len(errors)
            for error in errors:
                print(f"skipped {source}: {error}", file=sys.stderr)
    total = sum(1 for _ in args.out.rglob("*.mid"))
    print(f"{total} .mid files in {args.out} ({written} written now, {skipped} skipped)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
