#!/usr/bin/env python3
"""Does the pad steer after `vrae-live train`, on music of different character? A table.

For each corpus (a folder of .mid files), each size (all songs, or N spread over the sorted
paths) and each setting (extra `vrae-live train` options; none is the default training a
musician gets), this trains a model with the command line a musician types, then measures
what the musician would: the pad's steering along its weakest direction and the seams
(`vrae-live info --steering --seams`), whether the pad plays what its map shows
(`--faithfulness`, on the songs it trained on), for a pad of named axes (`--pad-axes`) Spearman's
rho of each axis's attribute along it and the other's leak (`measure/axes.py`), the validation bound, the minutes it took here,
and how much the training songs differ among themselves (`measure/contrast.py`: about the
most a pad faithful to them can steer).

    python scripts/export_corpus.py --composer bach --out ~/corpora/bach
    python scripts/export_corpus.py --composer ryansMammoth --out ~/corpora/fiddle
    python scripts/export_corpus.py --composer palestrina --limit 200 --out ~/corpora/palestrina
    python scripts/synthetic_corpus.py --out ~/corpora/synthetic
    python scripts/steering_study.py --corpus bach=~/corpora/bach --corpus fiddle=~/corpora/fiddle \\
        --size 8 --size all --setting default= --setting "dropout=--input-dropout 0.25" --out study.md

Every run writes its checkpoint under --work, so a table can be re-measured without
training again (--measure-only); a run already trained with the same options is not trained again.
"""

from __future__ import annotations

import argparse
import json
import shlex
import shutil
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))  # this checkout's vrae_live

import torch  # noqa: E402

from vrae_live.checkpoint import load_checkpoint  # noqa: E402
from vrae_live.data.corpus import load_songs  # noqa: E402
from vrae_live.machine import machine_line  # noqa: E402
from vrae_live.measure.axes import measure_axes  # noqa: E402
from vrae_live.measure.contrast import measure_contrast  # noqa: E402
from vrae_live.measure.faithfulness import measure_faithfulness  # noqa: E402
from vrae_live.measure.quality import measure_quality, song_marks  # noqa: E402
from vrae_live.measure.seams import measure_seams  # noqa: E402
from vrae_live.measure.steering import measure_steering  # noqa: E402
from vrae_live.training.run import read_metrics  # noqa: E402


def subset(corpus: Path, size: str, into: Path) -> Path:
    """``corpus`` itself, or a folder of links to ``size`` of its songs, spread evenly over the
    sorted paths (so a corpus in folders, e.g. the synthetic styles, gives some of each)."""
    if size == "all":
        return corpus
    every = sorted(p for p in corpus.rglob("*") if p.suffix.lower() in (".mid", ".midi"))
    if len(every) < int(size):
        raise SystemExit(f"{corpus}: {len(every)} MIDI files, fewer than the {size} asked for")
    songs = [every[i] for i in sorted({round(i * len(every) / int(size)) for i in range(int(size))})]
    links = {f"{i:03d}-{song.name}": song.resolve() for i, song in enumerate(songs)}
    if into.exists():
        if {p.name: p.resolve() for p in into.iterdir()} == links:
            return into  # as a study running beside this one left it: not rebuilt under its feet
        shutil.rmtree(into)
    into.mkdir(parents=True)
    for name, song in links.items():
        (into / name).symlink_to(song)
    return into


def train(songs: Path, run: Path, options: list[str]) -> float:
    """Minutes `vrae-live train SONGS --out RUN OPTIONS` took."""
    if run.exists():
        shutil.rmtree(run)
    started = time.perf_counter()
    subprocess.run([sys.executable, "-m", "vrae_live", "train", str(songs), "--out", str(run), "-q", *options],
                   check=True, cwd=ROOT)
    return (time.perf_counter() - started) / 60


HELD_OUT = 40  # songs of the corpus the run never saw, at most, for the quality measure


def held_out_rolls(ckpt, corpus: Path, seen: set[str]) -> list:
    """Rolls of up to HELD_OUT songs of ``corpus`` the run neither trained nor validated on (spread
    over the sorted paths); the run's validation songs when it took the whole corpus."""
    seen_files = {path.name.split("-", 1)[-1] for path in map(Path, seen)} | {Path(name).name for name in seen}
    others = sorted(p for p in corpus.rglob("*") if p.suffix.lower() in (".mid", ".midi") and p.name not in seen_files)
    names = [str(p.relative_to(corpus)) for p in others[::max(1, len(others) // HELD_OUT)][:HELD_OUT]]
    return song_marks(load_songs(corpus, ckpt.timing, names=names), ckpt) if names else []


def measure(run: Path, songs: Path, corpus: Path) -> dict:
    ckpt = load_checkpoint(run)
    steering, seams = measure_steering(ckpt), measure_seams(ckpt)
    every = load_songs(songs, ckpt.timing)
    faithful = measure_faithfulness(ckpt, every)
    t = ckpt.training  # as it stood when the kept epoch was saved
    trained_on = set(t["train_songs"])
    contrast = measure_contrast([s.roll for s in every if s.name in trained_on], ckpt.pitches)
    epochs_done = read_metrics(run)[-1]["epoch"]
    reference = held_out_rolls(ckpt, corpus, trained_on | set(t["val_songs"]))
    if len(reference) < 2:
        reference = song_marks([s for s in every if s.name in set(t["val_songs"])], ckpt)
    quality = measure_quality(ckpt, reference)
    axes = measure_axes(ckpt)
    return {"axes": "-" if axes is None else " / ".join(f"{o:+.2f} ({leak:.2f})" for o, leak in zip(axes.own, axes.leak)),
            "directions": " ".join(f"{r:.2f}" for r in steering.axes + steering.diagonals),
            "bound": t["best_bound"], "epochs": f"{t['best_epoch']}/{epochs_done}", "steps": t.get("steps"),
            "copy": t.get("copy_bound", float("nan")), "quality": quality.ratio, "overlap": quality.overall,
            "windows": t["train_windows"], "songs": len(t["train_songs"]) + len(t["val_songs"]),
            "steering": steering.ratio, "weaker": steering.weaker, "other": max(steering.axes),
            "seams": seams.ratio, "faithfulness": faithful.score, "chance": faithful.chance,
            "contrast": contrast.ratio if contrast is not None else float("nan")}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--corpus", action="append", required=True, metavar="NAME=DIR")
    parser.add_argument("--size", action="append", metavar="N|all", help="songs per corpus (repeatable) [default: all]")
    parser.add_argument("--setting", action="append", metavar="NAME=OPTIONS",
                        help="extra train options, e.g. 'dropout=--input-dropout 0.25' [default: default=]")
    parser.add_argument("--work", type=Path, default=Path("/tmp/steering-study"), help="where runs are kept")
    parser.add_argument("--out", type=Path, help="also write the table (markdown) here")
    parser.add_argument("--measure-only", action="store_true", help="measure the runs in --work again, train nothing")
    args = parser.parse_args(argv)
    corpora = [item.split("=", 1) for item in args.corpus]
    settings = [item.split("=", 1) for item in args.setting or ["default="]]
    sizes = args.size or ["all"]

    lines = [machine_line(torch.device("cpu")) + " (training runs on the CPU unless --device is among the options)", "",
             "| corpus | songs | setting | epochs kept/done | windows | minutes | bound | copying | quality (x ceiling) "
             "| steering | weakest direction | strongest axis | x, y, diagonals | axes' rho x / y (leak) | seams "
             "| faithfulness (chance) | songs' own contrast |",
             "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|"]
    print("\n".join(lines), flush=True)
    for name, folder in corpora:
        for size in sizes:
            for setting, options in settings:
                run = args.work / f"{name}-{size}-{setting}"
                songs = Path(folder).expanduser() if size == "all" else args.work / f"songs-{name}-{size}"
                done = run / "study.json"
                if args.measure_only or (done.exists() and json.loads(done.read_text())["options"] == options):
                    minutes = json.loads(done.read_text())["minutes"]  # trained before with these options
                else:
                    songs = subset(Path(folder).expanduser(), size, songs)
                    minutes = train(songs, run, shlex.split(options))
                    (run / "study.json").write_text(json.dumps({"minutes": minutes, "options": options}))
                m = measure(run, songs, Path(folder).expanduser())
                line = (f"| {name} | {m['songs']} | {setting} | {m['epochs']} | {m['windows']} | {minutes:.1f} | "
                        f"{m['bound']:.3f} | {m['copy']:.3f} | {m['overlap']:.2f} ({m['quality']:.2f}x) | {m['steering']:.2f} | "
                        f"{m['weaker']:.2f} | {m['other']:.2f} | {m['directions']} | {m['axes']} | {m['seams']:.2f} | "
                        f"{m['faithfulness']:.2f} ({m['chance']:.2f}) | {m['contrast']:.2f} |")
                lines.append(line)
                print(line, flush=True)
    if args.out:
        args.out.write_text("\n".join(lines) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
