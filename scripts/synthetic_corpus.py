#!/usr/bin/env python3
"""A small corpus of known styles, made in code: the map of a model trained on it must separate them.

    python scripts/synthetic_corpus.py --out songs/synthetic            # 4 styles x 8 songs
    vrae-live map RUN songs/synthetic --color-by folder --out map.png   # one colour per style

Each style is a folder (``OUT/STYLE/NN.mid``, 120 bpm, 32 bars) with its own register,
mode, density and rhythm, and each song varies the key and the melody within its style:

- ``high-major-arpeggios``: sixteenth-note major arpeggios two octaves up;
- ``low-minor-walk``: a walking bass in minor, quarter notes;
- ``mid-chords``: four-note chords held for half a bar, in the middle;
- ``chromatic-runs``: eighth-note chromatic lines up and down.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
import pretty_midi

BPM = 120.0
BEAT = 60.0 / BPM
BARS = 32


def _notes(style: str, rng: np.random.Generator) -> list[tuple[int, float, float]]:
    """(pitch, start, end) in seconds for one song of ``style``."""
    key = int(rng.integers(0, 12))
    notes = []
    if style == "high-major-arpeggios":
        shape = [0, 4, 7, 12, 16, 12, 7, 4]
        for step in range(BARS * 16):
            root = 72 + key + [0, 5, 7, 0][(step // 16) % 4]
            notes.append((root + shape[step % len(shape)], step * BEAT / 4, (step + 0.9) * BEAT / 4))
    elif style == "low-minor-walk":
        scale = [0, 2, 3, 5, 7, 8, 10]
        degree = 0
        for step in range(BARS * 4):
            degree = int(np.clip(degree + rng.choice([-1, 1, 1, 2]), -3, 9))
            pitch = 36 + key + scale[degree % 7] + 12 * (degree // 7)
            notes.append((pitch, step * BEAT, (step + 0.95) * BEAT))
    elif style == "mid-chords":
        chords = [[0, 4, 7, 11], [5, 9, 12, 16], [2, 5, 9, 12], [7, 11, 14, 17]]
        for half_bar in range(BARS * 2):
            chord = chords[int(rng.integers(0, len(chords)))]
            for interval in chord:
                notes.append((55 + key + interval, half_bar * 2 * BEAT, (half_bar + 1) * 2 * BEAT - 0.05))
    elif style == "chromatic-runs":
        pitch, direction = 60 + key, 1
        for step in range(BARS * 8):
            if not 54 <= pitch + direction <= 78 or rng.random() < 0.08:
                direction = -direction
            pitch += direction
            notes.append((pitch, step * BEAT / 2, (step + 0.8) * BEAT / 2))
    else:
        raise ValueError(f"unknown style {style!r}")
    return notes


STYLES = ("high-major-arpeggios", "low-minor-walk", "mid-chords", "chromatic-runs")


def write_corpus(out: Path, songs_per_style: int = 8, seed: int = 0) -> int:
    rng = np.random.default_rng(seed)
    written = 0
    for style in STYLES:
        folder = out / style
        folder.mkdir(parents=True, exist_ok=True)
        for song in range(songs_per_style):
            midi = pretty_midi.PrettyMIDI(initial_tempo=BPM)
            instrument = pretty_midi.Instrument(program=0, name=style)
            for pitch, start, end in _notes(style, rng):
                instrument.notes.append(pretty_midi.Note(velocity=90, pitch=pitch, start=start, end=end))
            midi.instruments.append(instrument)
            midi.write(str(folder / f"{song:02d}.mid"))
            written += 1
    return written


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", type=Path, required=True, help="Output folder (one subfolder per style).")
    parser.add_argument("--songs-per-style", type=int, default=8)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    count = write_corpus(args.out, args.songs_per_style, args.seed)
    print(f"{count} songs in {len(STYLES)} styles in {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
