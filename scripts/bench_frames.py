#!/usr/bin/env python3
"""What the frames cost to train: the binary roll, with onsets, with onsets and the meter, and with
a frame's notes chosen together (a mixture of 8 frames, models/mixture.py), its frames read from 64
numbers of the decoder's state as the preset had it, and from all of the state (``--mixture-rank 0``);
and the last as the preset has it now, with a GRU of 224 units in place of the tanh RNN of ``--hidden``.

The live-2d model as it was (tanh RNN, hidden ``--hidden``, latent 3, windows of 64 sixteenths,
batch 100) is trained by the project's own Trainer on the same synthetic windows (50 pitches,
density 0.1, seed 0), its frames in each of the three forms: the binary roll (``P`` columns), with
each pitch's onset (``2P``), and with the meter of the next step fed beside each frame (``2P`` and
12 columns of input, ``2P`` predicted), and the last with 8 components (``8 * 2P`` logits and 8
weights predicted); then that mixture again with a GRU of 224 units for the RNN. Runs alternate
(roll, onsets, meter, mixture, ..., roll, ...) so a noisy shared machine slows all alike; the
figure is the median of the training seconds of the batches (the metrics' "seconds", without the
end-of-epoch figures), and the ratios are against the binary roll's, the onsets and meter's and the
mixture's in the same run.

    python3 scripts/bench_frames.py                 # 3 repeats of one epoch each
    python3 scripts/bench_frames.py --quick         # a toy size: checks the script runs
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))  # this checkout's vrae_live

from vrae_live.config import load_config, with_changes  # noqa: E402
from vrae_live.data.corpus import TrainingData, WindowSet  # noqa: E402
from vrae_live.data.meter import meter_columns  # noqa: E402
from vrae_live.machine import machine_line  # noqa: E402
from vrae_live.training.trainer import Trainer  # noqa: E402

PITCHES = list(range(36, 86))  # 50 pitches, as 30 chorales keep
FORMS = {"binary roll": {"onsets": False, "meter": False}, "onsets": {"onsets": True, "meter": False},
         "onsets + meter": {"onsets": True, "meter": True},
         "+ chosen together": {"onsets": True, "meter": True, "components": 8},
         "+ read from all h": {"onsets": True, "meter": True, "components": 8, "mixture_rank": 0},
         "a GRU of 224": {"onsets": True, "meter": True, "components": 8, "cell": "gru", "hidden": 224}}
CELL = {"cell": "rnn"}  # every form but the GRU's: the tanh RNN of --hidden units


def windows_of(form: dict, roll: np.ndarray, onsets: np.ndarray) -> np.ndarray:
    """The windows ``(N, W, C)`` a model of ``form`` trains on, from one roll and its onsets."""
    parts = [roll] + ([onsets] if form.get("onsets") else [])
    if form.get("meter"):
        n, steps = roll.shape[:2]
        meter = meter_columns(np.arange(1, steps + 1), 4, 16)  # every window starts on a downbeat
        parts.append(np.broadcast_to(meter, (n, steps, meter.shape[1])))
    return np.ascontiguousarray(np.concatenate(parts, axis=2))


def synthetic_rolls(windows: int) -> tuple[np.ndarray, np.ndarray]:
    """``windows`` windows of 64 steps on ``PITCHES`` (density 0.1, seed 0), and their onsets (half the frames sounding)."""
    rng = np.random.default_rng(0)
    roll = (rng.random((windows, 64, len(PITCHES))) < 0.1).astype(np.uint8)
    return roll, roll & (rng.random(roll.shape) < 0.5).astype(np.uint8)


def trained_epoch_seconds(settings: dict, x: np.ndarray, out_dir: Path) -> float:
    """The training seconds of one epoch of the live-2d preset with ``settings`` on windows ``x``, by the Trainer."""
    windows = WindowSet(x=x, song=np.zeros(len(x), dtype=np.int64), song_names=["synthetic"], dropped_notes=0)
    data = TrainingData(train=windows, val=None, pitches=PITCHES, songs_found=1, songs_used=1)
    config = with_changes(load_config("live-2d", settings), train={"epochs": 1})
    trainer = Trainer(config, data, out_dir, torch.device("cpu"))
    trainer.fit()
    return trainer.progress.seconds


def epoch_seconds(form: dict, x: np.ndarray, args, out_dir: Path) -> float:
    settings = {"hidden": args.hidden, "batch_size": args.batch_size, "components": 1, **CELL, **form}
    return trained_epoch_seconds(settings, x, out_dir)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--windows", type=int, default=1000)
    parser.add_argument("--hidden", type=int, default=500)
    parser.add_argument("--batch-size", type=int, default=100)
    parser.add_argument("--quick", action="store_true", help="a toy size: checks the script runs")
    args = parser.parse_args(argv)
    if args.quick:
        args.repeats, args.windows, args.hidden, args.batch_size = 1, 20, 16, 10
    torch.set_num_threads(1)
    roll, onsets = synthetic_rolls(args.windows)
    xs = {name: windows_of(form, roll, onsets) for name, form in FORMS.items()}
    forms = {name: {**form, "hidden": args.hidden} if args.quick and "hidden" in form else form for name, form in FORMS.items()}
    print(machine_line(torch.device("cpu")))
    print(f"live-2d, hidden {args.hidden}, batch {args.batch_size}, {args.windows} windows of 64 steps, "
          f"{len(PITCHES)} pitches; one thread; {args.repeats} repeats, interleaved")
    seconds: dict[str, list[float]] = {name: [] for name in FORMS}
    with tempfile.TemporaryDirectory(prefix="bench-frames-") as tmp:
        for run in range(args.repeats):
            for name in FORMS:
                seconds[name].append(epoch_seconds(forms[name], xs[name], args, Path(tmp) / f"{run}-{len(seconds[name])}"))
    base, meter = statistics.median(seconds["binary roll"]), statistics.median(seconds["onsets + meter"])
    together = statistics.median(seconds["+ chosen together"])
    for name in FORMS:
        median = statistics.median(seconds[name])
        print(f"{name:17s} {median:7.2f} s/epoch  ({xs[name].shape[2]} columns fed)  x{median / base:.2f} of the "
              f"binary roll's, x{median / meter:.2f} of onsets + meter's, x{median / together:.2f} of chosen together's")
    return 0


if __name__ == "__main__":
    sys.exit(main())
