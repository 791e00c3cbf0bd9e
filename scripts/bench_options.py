#!/usr/bin/env python3
"""What the decoder's options cost to train: the live-2d preset as it is, against it with each of
``--own-frames 0.25`` (a teacher-forced pass more, without gradient), ``--hold-gate`` and ``--z-skip``.

Each is trained one epoch by the project's own Trainer on the same synthetic windows as
``bench_frames.py`` (50 pitches, density 0.1, seed 0, onsets and the meter). Runs alternate
(preset, own frames, hold gate, skip, preset, ...) so a noisy shared machine slows all alike; the
figure is the median of the training seconds of the batches (the metrics' "seconds", without the
end-of-epoch figures), and the ratio is against the preset's in the same run.

    python3 scripts/bench_options.py                 # 3 repeats of one epoch each
    python3 scripts/bench_options.py --quick         # a toy size: checks the script runs
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))  # this checkout's vrae_live
sys.path.insert(0, str(ROOT / "scripts"))

from bench_frames import PITCHES, synthetic_rolls, trained_epoch_seconds, windows_of  # noqa: E402

from vrae_live.machine import machine_line  # noqa: E402

OPTIONS = {"live-2d": {}, "--own-frames 0.25": {"own_frames": 0.25}, "--hold-gate": {"hold_gate": True},
           "--z-skip": {"z_skip": True}}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--windows", type=int, default=1000)
    parser.add_argument("--batch-size", type=int, default=100)
    parser.add_argument("--quick", action="store_true", help="a toy size: checks the script runs")
    args = parser.parse_args(argv)
    if args.quick:
        args.repeats, args.windows, args.batch_size = 1, 20, 10
    torch.set_num_threads(1)
    x = windows_of({"onsets": True, "meter": True}, *synthetic_rolls(args.windows))
    print(machine_line(torch.device("cpu")))
    print(f"live-2d, batch {args.batch_size}, {args.windows} windows of 64 steps, {len(PITCHES)} pitches; "
          f"one thread; {args.repeats} repeats, interleaved")
    seconds: dict[str, list[float]] = {name: [] for name in OPTIONS}
    with tempfile.TemporaryDirectory(prefix="bench-options-") as tmp:
        for run in range(args.repeats):
            for k, (name, option) in enumerate(OPTIONS.items()):
                settings = {"batch_size": args.batch_size, **({"hidden": 16} if args.quick else {}), **option}
                seconds[name].append(trained_epoch_seconds(settings, x, Path(tmp) / f"{run}-{k}"))
    base = statistics.median(seconds["live-2d"])
    for name in OPTIONS:
        median = statistics.median(seconds[name])
        print(f"{name:18s} {median:7.2f} s/epoch  x{median / base:.2f} of the preset's")
    return 0


if __name__ == "__main__":
    sys.exit(main())
