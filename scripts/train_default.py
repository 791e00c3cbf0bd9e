#!/usr/bin/env python3
"""Reproduce the shipped model, checkpoints/default, from a clean machine.

    python scripts/train_default.py                 # about 50 s export + 1,224 steps (8 minutes on two CPU cores)

1. exports Bach's chorales from music21's corpus (installed offline with the ``dev``
   extra) to ``--songs`` (not to the repository: the corpus is made, not committed);
2. trains the default preset (presets/live-2d.toml) on them into ``--out``;
3. evaluates it on the held-out songs, measures how well the pad steers it, and draws
   its latent map (docs/figures/default-map.png, the README's picture).

Training is deterministic on the CPU with the preset's seed, so the same corpus gives
the same weights.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def run(*args: str) -> None:
    print("+", " ".join(args), flush=True)
    subprocess.run(args, check=True)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--songs", type=Path, default=Path.home() / ".cache" / "vrae-live" / "songs" / "bach")
    parser.add_argument("--out", type=Path, default=ROOT / "checkpoints" / "default")
    parser.add_argument("--map", type=Path, default=ROOT / "docs" / "figures" / "default-map.png")
    parser.add_argument("--epochs", type=int, help="Override the preset's epochs (for a quick try).")
    parser.add_argument("--device", default="auto", choices=["auto", "cpu", "cuda"])
    args = parser.parse_args(argv)

    vrae_live = [sys.executable, "-m", "vrae_live"]
    run(sys.executable, str(ROOT / "scripts" / "export_corpus.py"), "--composer", "bach", "--out", str(args.songs))
    epochs = ["--epochs", str(args.epochs)] if args.epochs else []
    run(*vrae_live, "train", str(args.songs), "--preset", "live-2d", "--out", str(args.out), "--overwrite",
        "--device", args.device, "-q", *epochs)
    run(*vrae_live, "eval", str(args.out), str(args.songs), "--split", "validation", "--samples", "10")
    run(*vrae_live, "info", str(args.out), "--steering")
    run(*vrae_live, "map", str(args.out), str(args.songs), "--out", str(args.map))
    return 0


if __name__ == "__main__":
    sys.exit(main())
