#!/usr/bin/env python3
"""Mixed precision: speed and validation bound of the same run in fp32 and in bf16 (``--precision``).

What is measured: the project's Trainer on the synthetic corpus of scripts/synthetic_corpus.py
(4 styles x 8 songs, written to a temporary folder; 10 % of the songs held out), the live-2d
preset at a reduced size (hidden 128 by default), trained from the same seed for the same epochs
in each precision; each repeat takes the next seed (init, shuffles, noise), so the bounds of
repeats show how much training's own randomness moves them. bf16 is ``torch.autocast`` over the
forward pass (training/precision.py);
validation is always computed in fp32, so the two bounds compare the models, not the arithmetic.

Printed: the machine; whether bf16 is native on this device or emulated by torch (the command
line refuses emulated bf16, this script measures it anyway); the median training seconds per
epoch of each precision over every epoch of every repeat and their ratio (bf16 / fp32); the
last epoch's validation bound of each, median over repeats, and the difference (bf16 - fp32) per
seed with its median. Runs alternate
(fp32, bf16, fp32, ...) so that a noisy shared machine slows both alike.

    python3 scripts/bench_precision.py                  # on the CPU
    python3 scripts/bench_precision.py --device cuda    # on a GPU
    python3 scripts/bench_precision.py --quick          # tiny: checks the script runs
"""

from __future__ import annotations

import argparse
import importlib.util
import statistics
import sys
import tempfile
from pathlib import Path

import torch

from vrae_live.config import load_config
from vrae_live.data.corpus import prepare_data
from vrae_live.machine import machine_line
from vrae_live.training.precision import bf16_is_native
from vrae_live.training.run import read_metrics
from vrae_live.training.trainer import Trainer

SCRIPTS = Path(__file__).resolve().parent


def write_synthetic_corpus(out: Path, songs_per_style: int) -> None:
    spec = importlib.util.spec_from_file_location("synthetic_corpus", SCRIPTS / "synthetic_corpus.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    module.write_corpus(out, songs_per_style=songs_per_style)


def pick_device(name: str) -> torch.device:
    if name.startswith("cuda") and not torch.cuda.is_available():
        print(f"note: --device {name} asked for, but torch sees no CUDA GPU here; measuring on the CPU")
        return torch.device("cpu")
    return torch.device(name)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--device", default="cpu", help="cpu or cuda (default cpu)")
    parser.add_argument("--epochs", type=int, default=4, help="epochs per run (default 4)")
    parser.add_argument("--repeats", type=int, default=2, help="runs of each precision, interleaved (default 2)")
    parser.add_argument("--hidden", type=int, default=128)
    parser.add_argument("--batch-size", type=int, default=100)
    parser.add_argument("--songs-per-style", type=int, default=8)
    parser.add_argument("--threads", type=int, default=None, help="torch intra-op threads (default: torch's choice)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--quick", action="store_true", help="tiny run to check the script works")
    args = parser.parse_args(argv)
    if args.quick:
        args.hidden, args.batch_size, args.songs_per_style, args.epochs, args.repeats = 16, 50, 2, 1, 1
        args.threads = args.threads or 1
    if args.threads:
        torch.set_num_threads(args.threads)
    device = pick_device(args.device)

    with tempfile.TemporaryDirectory(prefix="bench-precision-") as tmp:
        songs = Path(tmp) / "songs"
        write_synthetic_corpus(songs, args.songs_per_style)
        settings = {"hidden": args.hidden, "batch_size": args.batch_size, "epochs": args.epochs, "seed": args.seed,
                    "device": str(device)}  # the split of songs follows --seed; each repeat's training, its own
        config = load_config("live-2d", settings)
        data = prepare_data(songs, config.data, config.train.seed, config.train.batch_size,
                            cache_dir=Path(tmp) / "cache")
        native = bf16_is_native(device)
        print(machine_line(device))
        print(f"bf16 on {device}: {'native' if native else 'emulated by torch (no bf16 arithmetic here)'}")
        print(f"model: live-2d, hidden {args.hidden}, latent 2, window {config.data.window}, batch {args.batch_size}; "
              f"data: synthetic corpus, {len(data.train.x)} training windows, {len(data.val.x)} validation windows; "
              f"{args.epochs} epoch(s) per run, {args.repeats} repeat(s), seeds {args.seed}-{args.seed + args.repeats - 1}")
        seconds: dict[str, list[float]] = {"fp32": [], "bf16": []}
        bounds: dict[str, list[float]] = {"fp32": [], "bf16": []}
        for repeat in range(args.repeats):
            for precision in ("fp32", "bf16"):
                run_config = load_config("live-2d", {**settings, "precision": precision, "seed": args.seed + repeat})
                Trainer(run_config, data, Path(tmp) / f"{precision}{repeat}", device).fit()
                rows = read_metrics(Path(tmp) / f"{precision}{repeat}")
                seconds[precision] += [row["seconds"] for row in rows]
                bounds[precision].append(rows[-1]["val_bound"])
                median = statistics.median(row['seconds'] for row in rows)
                print(f"  seed {args.seed + repeat} {precision}: {median:.3f} s/epoch, "
                      f"validation bound {rows[-1]['val_bound']:.4f} nats/step")

    s32, s16 = statistics.median(seconds["fp32"]), statistics.median(seconds["bf16"])
    b32, b16 = statistics.median(bounds["fp32"]), statistics.median(bounds["bf16"])
    windows = len(data.train.x)
    print(f"fp32: {s32:.3f} s/epoch  {windows / s32:.1f} seq/s  bound {b32:.4f}  (medians of {len(seconds['fp32'])} epochs)")
    print(f"bf16: {s16:.3f} s/epoch  {windows / s16:.1f} seq/s  bound {b16:.4f}  (medians of {len(seconds['bf16'])} epochs)")
    print(f"ratio = {s16 / s32:.3f}  (bf16 / fp32 seconds per epoch; < 1 is faster)")
    differences = [b - a for a, b in zip(bounds["fp32"], bounds["bf16"])]
    print(f"bound difference = {statistics.median(differences):+.4f} nats/step  (bf16 - fp32, validation, after "
          f"{args.epochs} epoch(s), median over seeds; per seed {', '.join(f'{d:+.4f}' for d in differences)}; "
          f"fp32 bounds of the seeds span {max(bounds['fp32']) - min(bounds['fp32']):.4f})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
