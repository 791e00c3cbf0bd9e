#!/usr/bin/env python3
"""Playing in key, measured: what each key strength does to the notes and to the music.

For each model, takes at random points of the pad (the quality measure's: 48 takes of 32 beats,
13 minutes of music at 120 bpm) are played through the stream and gate `serve` plays, at each
key strength, side by side in one run. For each strength the table gives the share of note-ons in
the key's scale and the quality of the takes against songs the model did not train on
(`vrae-live info --quality`: the MGEval overlap, as a share of the songs' own). The key is the
major key the model itself plays most in at strength 0 (its own), and, with --far, the one a
tritone from it (a band in the key furthest from the model's). The quality of takes in another
key than the model's own is measured against the songs moved by as much (the pitch-class
histogram is one of the measure's features: takes in C# major are no less like fiddle tunes in G
for it than G-major takes are like them).

    python3 scripts/key_study.py --model shipped checkpoints/default ~/corpora/chorales \\
        --model fiddle runs/fiddle ~/corpora/fiddle
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))  # this checkout's vrae_live

import numpy as np  # noqa: E402
import torch  # noqa: E402

from vrae_live.checkpoint import load_checkpoint  # noqa: E402
from vrae_live.data.corpus import load_songs  # noqa: E402
from vrae_live.machine import machine_line  # noqa: E402
from vrae_live.measure.quality import measure_quality, song_marks  # noqa: E402
from vrae_live.play.key import DEFAULT_KEY_STRENGTH, key_name, parse_key, parse_scale, scale_classes  # noqa: E402

HELD_OUT = 40  # songs the model never trained on, at most


def note_ons(frames: np.ndarray, struck: np.ndarray | None, pitches) -> np.ndarray:
    """MIDI note numbers of the notes a take of ``frames (T, P)`` started (``struck``, for a model of onsets)."""
    starts = struck if struck is not None else frames & ~np.vstack([np.zeros_like(frames[:1]), frames[:-1]])
    return np.asarray(pitches)[np.nonzero(starts)[1]]


def held_out(ckpt, songs: Path) -> list:
    """Up to HELD_OUT songs of ``songs`` the model did not train on (its validation songs among them)."""
    trained = {Path(name).name for name in ckpt.training.get("train_songs", [])}
    paths = sorted(p for p in songs.rglob("*") if p.suffix.lower() in (".mid", ".midi"))
    names = [str(p.relative_to(songs)) for p in paths if p.name not in trained]
    names = names[::max(1, len(names) // HELD_OUT)][:HELD_OUT]
    return song_marks(load_songs(songs, ckpt.timing, names=names), ckpt)


def moved(rolls: list, pitches, semitones: int) -> list:
    """The songs' rolls ``(T, P)`` moved by ``semitones`` (up, or down an octave less when that keeps
    more of their notes on the model's pitches); notes that land off them are dropped."""
    def shift(by: int) -> list:
        column = {p: j for j, p in enumerate(pitches)}
        to = np.array([column.get(p + by, -1) for p in pitches])
        out = []
        for roll in rolls:
            new = np.zeros_like(roll)
            new[:, to[to >= 0]] = roll[:, to >= 0]
            out.append(new)
        return out
    if semitones % 12 == 0:
        return rolls
    up, down = shift(semitones % 12), shift(semitones % 12 - 12)
    return up if sum(int(r.astype(bool).sum()) for r in up) >= sum(int(r.astype(bool).sum()) for r in down) else down


def play(ckpt, rolls, key, scale, strength, seed):
    """Quality of the takes in ``key`` at ``strength``, and the note-ons they played."""
    played = []
    report = measure_quality(ckpt, rolls, seed=seed, key=key, scale=scale, key_strength=strength,
                             on_take=lambda frames, struck: played.append(note_ons(frames, struck, ckpt.pitches)))
    return report, np.concatenate(played) if played else np.zeros(0, int)


def share_in(notes: np.ndarray, key: int, scale: str) -> float:
    return float(np.isin(notes % 12, sorted(scale_classes(key, scale))).mean()) if len(notes) else float("nan")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", nargs=3, action="append", required=True, metavar=("NAME", "CHECKPOINT", "SONGS"),
                        help="a model, and a folder of songs of its corpus (those it did not train on are the reference)")
    parser.add_argument("--strengths", default=f"0,0.5,0.8,0.9,{DEFAULT_KEY_STRENGTH:g},1",
                        help="key strengths, comma-separated [default: %(default)s]")
    parser.add_argument("--key", default="auto", help="a key for every model, or auto: each model's own")
    parser.add_argument("--scale", default="major")
    parser.add_argument("--far", action="store_true", help="also the key a tritone from it")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    torch.set_num_threads(1)
    strengths = [float(s) for s in args.strengths.split(",")]
    scale = parse_scale(args.scale)
    print(machine_line(torch.device("cpu")))
    print("| model | key (the songs moved to it) | strength | note-ons | in the scale | quality | against strength 0 |")
    print("|---|---|---|---|---|---|---|")
    for name, checkpoint, songs in args.model:
        started = time.perf_counter()
        ckpt = load_checkpoint(Path(checkpoint))
        rolls = held_out(ckpt, Path(songs))
        plain, notes = play(ckpt, rolls, None, scale, 0.0, args.seed)
        own = (max(range(12), key=lambda k: share_in(notes, k, scale)) if args.key == "auto" else parse_key(args.key))
        for key in [own, (own + 6) % 12] if args.far else [own]:
            reference = moved(rolls, ckpt.pitches, key - own)
            base = plain if key == own else play(ckpt, reference, None, scale, 0.0, args.seed)[0]
            for strength in strengths:
                report, ons = (base, notes) if strength == 0 else play(ckpt, reference, key, scale, strength, args.seed)
                print(f"| {name} | {key_name(key, scale)} | {strength:g} | {len(ons)} | "
                      f"{100 * share_in(ons, key, scale):.1f} % | {report.ratio:.3f}x ({report.overall:.3f}) | "
                      f"{report.ratio - base.ratio:+.3f} |", flush=True)
        print(f"({name}: {len(rolls)} songs it did not train on, {plain.takes} takes of {plain.take_beats} beats a "
              f"strength; {time.perf_counter() - started:.0f} s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
