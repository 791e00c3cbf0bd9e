#!/usr/bin/env python3
"""torchrun and DDP: seconds per epoch and validation bound of one process against N, same global batch.

What is measured: ``vrae-live train`` on the synthetic corpus of scripts/synthetic_corpus.py
(4 styles x 8 songs, written to a temporary folder), the live-2d preset at a reduced size
(hidden 128 by default), run once as one process (``python -m vrae_live train``) and once
under ``torchrun --standalone --nproc-per-node N -m vrae_live train`` with the same
``--batch-size`` (the global batch: each process trains on its share of it), the same seed
and the same epochs, on the CPU (gloo) or on GPUs (NCCL, ``--device cuda``). Both runs take
the epoch's training seconds from metrics.jsonl (the batches only, not the end-of-epoch
measurements, which rank 0 does alone) and their validation bound. Runs alternate
(1, N, 1, N, ...) so that a noisy shared machine slows both alike; medians are reported.

    python3 scripts/bench_ddp.py                       # 2 CPU processes (gloo), 1 thread each
    python3 scripts/bench_ddp.py --device cuda --processes 8 --batch-size 800   # 8 GPUs (NCCL)
    python3 scripts/bench_ddp.py --quick               # tiny: checks the script runs
"""

from __future__ import annotations

import argparse
import importlib.util
import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

import torch

from vrae_live.machine import machine_line
from vrae_live.training.run import read_metrics

ROOT = Path(__file__).resolve().parent.parent


def write_synthetic_corpus(out: Path, songs_per_style: int) -> None:
    spec = importlib.util.spec_from_file_location("synthetic_corpus", ROOT / "scripts" / "synthetic_corpus.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    module.write_corpus(out, songs_per_style=songs_per_style)


def train(processes: int, songs: Path, out: Path, options: list[str], threads: int, cache: Path) -> list[dict]:
    """The metrics rows of one run (``processes`` 1: a plain process; more: torchrun)."""
    if processes == 1:
        command = [sys.executable, "-m", "vrae_live", "train"]
    else:
        command = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node", str(processes),
                   "-m", "vrae_live", "train"]
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(p for p in (str(ROOT), os.environ.get("PYTHONPATH")) if p),
           "OMP_NUM_THREADS": str(threads), "VRAE_LIVE_CACHE": str(cache)}
    done = subprocess.run([*command, str(songs), "--out", str(out), *options], env=env, capture_output=True, text=True)
    if done.returncode != 0:
        raise SystemExit(f"{' '.join(command)} failed:\n{done.stderr[-3000:]}")
    return read_metrics(out)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--processes", type=int, default=2, help="processes under torchrun (default 2)")
    parser.add_argument("--device", default="cpu", help="cpu (gloo) or cuda (NCCL, one GPU a process)")
    parser.add_argument("--threads", type=int, default=1, help="threads of each process (default 1)")
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--hidden", type=int, default=128)
    parser.add_argument("--batch-size", type=int, default=100, help="the global batch (default 100)")
    parser.add_argument("--songs-per-style", type=int, default=8)
    parser.add_argument("--quick", action="store_true", help="tiny run to check the script works")
    args = parser.parse_args(argv)
    if args.quick:
        args.hidden, args.batch_size, args.songs_per_style, args.epochs, args.repeats = 16, 50, 2, 1, 1
    options = ["--hidden", str(args.hidden), "--batch-size", str(args.batch_size), "--epochs", str(args.epochs),
               "--device", args.device, "-q"]
    print(machine_line(torch.device("cpu")).replace(f"{torch.get_num_threads()} threads", f"{args.threads} thread(s) a process"))
    print(f"model: live-2d, hidden {args.hidden}; global batch {args.batch_size}; synthetic corpus "
          f"({4 * args.songs_per_style} songs); {args.epochs} epoch(s) a run, {args.repeats} repeat(s); device {args.device}")
    seconds: dict[int, list[float]] = {1: [], args.processes: []}
    bounds: dict[int, list[float]] = {1: [], args.processes: []}
    with tempfile.TemporaryDirectory(prefix="bench-ddp-") as tmp:
        songs = Path(tmp) / "songs"
        write_synthetic_corpus(songs, args.songs_per_style)
        for repeat in range(args.repeats):
            for processes in (1, args.processes):
                rows = train(processes, songs, Path(tmp) / f"run{processes}-{repeat}", options, args.threads,
                             Path(tmp) / "cache")
                seconds[processes] += [row["seconds"] for row in rows]
                bounds[processes].append(rows[-1]["val_bound"])
                print(f"  run {repeat + 1}, {processes} process(es): {statistics.median(r['seconds'] for r in rows):.3f} "
                      f"s/epoch, validation bound {rows[-1]['val_bound']:.4f} nats/step")
    one, many = statistics.median(seconds[1]), statistics.median(seconds[args.processes])
    for n in (1, args.processes):
        print(f"{n} process(es): {statistics.median(seconds[n]):.3f} s/epoch  bound {statistics.median(bounds[n]):.4f}  "
              f"(medians of {len(seconds[n])} epochs, {len(bounds[n])} runs)")
    print(f"speed-up = {one / many:.3f}  (1-process / {args.processes}-process seconds per epoch)")
    print(f"bound difference = {statistics.median(bounds[args.processes]) - statistics.median(bounds[1]):+.4f} nats/step")
    return 0


if __name__ == "__main__":
    sys.exit(main())
