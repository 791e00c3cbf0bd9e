#!/usr/bin/env python3
"""How the live stream's hop (and so its context, window - hop) changes steering and seams.

`serve --hop N` decodes a new window every N steps, teacher-forced through the last
window - N steps played. A short hop keeps more of what was played in each window's
context, a long one lets the decoder run further on its own. For a model fed z at every
step (live-2d) a pad move reaches the next step whatever the hop, so the hop trades the
pad's steering against the joins only. One table row per hop:

    python scripts/hop_study.py checkpoints/default --hop 8 --hop 16 --hop 32 --hop 48
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))  # this checkout's vrae_live

import torch  # noqa: E402

from vrae_live.checkpoint import load_checkpoint  # noqa: E402
from vrae_live.machine import machine_line  # noqa: E402
from vrae_live.measure.seams import measure_seams  # noqa: E402
from vrae_live.measure.steering import measure_steering  # noqa: E402


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("checkpoint", type=Path)
    parser.add_argument("--hop", type=int, action="append", help="steps per hop (repeatable) [default: 8, 16, 32]")
    args = parser.parse_args(argv)
    ckpt = load_checkpoint(args.checkpoint)
    window = ckpt.config.data.window
    print(machine_line(torch.device("cpu")))
    print(f"{args.checkpoint}: windows of {window} steps, trained at hop {ckpt.config.data.hop}\n")
    print("| hop | context | steering | weakest direction | across | up and down | diagonals | seams |")
    print("|---|---|---|---|---|---|---|---|")
    for hop in args.hop or [8, 16, 32]:
        s, seams = measure_steering(ckpt, hop=hop), measure_seams(ckpt, hop=hop)
        print(f"| {hop} | {window - hop} | {s.ratio:.2f} | {s.weaker:.2f} | {s.axes[0]:.2f} | {s.axes[1]:.2f} | "
              f"{s.diagonals[0]:.2f}, {s.diagonals[1]:.2f} | {seams.ratio:.2f} |", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
