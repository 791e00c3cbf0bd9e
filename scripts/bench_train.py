"""Training speed: the project's training loop against a plain PyTorch VRAE, same process.

What is measured: seconds per epoch and sequences per second of the paper-2d model
(tanh RNN, hidden 500, latent 2, 50 steps, 49 pitches, batch 100) on a fixed synthetic
set (4160 windows, note density 0.1, seed 0).

- project: ``vrae_live.training.trainer.Trainer`` itself, one epoch per run; the figure is the
  epoch's training time as the Trainer records it (``metrics.jsonl`` "seconds"), which
  covers every batch step but not the end-of-epoch evaluation and checkpoint writing
  (that overhead is printed apart, as ``epoch end``).
- reference: the same model written plainly here, two ``nn.RNN`` calls (encoder,
  teacher-forced decoder), BCE-with-logits, the analytic KL and Adam, with none of the
  project's extras (reversed input, batch-normalised mu, free bits, KL warm-up, gradient
  clipping, learning-rate schedule, running sums).

Runs alternate (project, reference, project, ...) so that a noisy shared machine slows
both alike; medians are reported, and ``ratio`` = project / reference (goal: <= 1.0).

    python3 scripts/bench_train.py                      # 3 repeats of one epoch each
    python3 scripts/bench_train.py --threads 1 --repeats 5
    python3 scripts/bench_train.py --device cuda        # on a machine with a GPU
    python3 scripts/bench_train.py --quick              # a few batches: checks the script runs
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from itertools import pairwise
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from vrae_live.config import load_config, with_changes
from vrae_live.data.corpus import TrainingData, WindowSet
from vrae_live.machine import machine_line
from vrae_live.training.trainer import Trainer

PITCHES = list(range(36, 85))  # 49 pitches, as the paper kept


def pick_device(name: str) -> torch.device:
    """``cuda`` without a GPU falls back to the CPU with a note, so the script still runs anywhere."""
    if name.startswith("cuda") and not torch.cuda.is_available():
        print(f"note: --device {name} asked for, but torch sees no CUDA GPU here; measuring on the CPU")
        return torch.device("cpu")
    return torch.device(name)


def synthetic_windows(n: int, steps: int, pitches: int, density: float, seed: int) -> np.ndarray:
    """``(n, steps, pitches)`` uint8 windows with each cell on with probability ``density``."""
    rng = np.random.default_rng(seed)
    return (rng.random((n, steps, pitches)) < density).astype(np.uint8)


# -- the plain reference -----------------------------------------------------------


class PlainVRAE(nn.Module):
    """The paper's VRAE in the fewest lines: what any PyTorch user would write first."""

    def __init__(self, pitches: int, hidden: int, latent: int):
        super().__init__()
        self.encoder = nn.RNN(pitches, hidden, batch_first=True)
        self.to_mu = nn.Linear(hidden, latent)
        self.to_logvar = nn.Linear(hidden, latent)
        self.to_h0 = nn.Linear(latent, hidden)
        self.decoder = nn.RNN(pitches, hidden, batch_first=True)
        self.to_logits = nn.Linear(hidden, pitches)

    def loss(self, x: torch.Tensor) -> torch.Tensor:
        _, h_end = self.encoder(x)  # (1, B, H)
        mu, logvar = self.to_mu(h_end[0]), self.to_logvar(h_end[0])  # (B, L)
        z = mu + torch.exp(0.5 * logvar) * torch.randn_like(mu)
        h0 = torch.tanh(self.to_h0(z)).unsqueeze(0)  # (1, B, H)
        out, _ = self.decoder(x[:, :-1], h0)  # (B, T-1, H)
        logits = self.to_logits(torch.cat([h0.transpose(0, 1), out], dim=1))  # (B, T, P)
        rec = F.binary_cross_entropy_with_logits(logits, x, reduction="sum") / len(x)
        kl = 0.5 * (mu.pow(2) + logvar.exp() - 1.0 - logvar).sum() / len(x)
        return rec + kl


def reference_epoch(x: torch.Tensor, args, seed: int) -> tuple[float, list[float]]:
    """Seconds for one epoch of the plain reference over ``x (N, W, P)``, and of each batch but the first."""
    torch.manual_seed(seed)
    model = PlainVRAE(x.shape[2], args.hidden, args.latent).to(x.device)
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3, betas=(0.95, 0.999))
    order = torch.randperm(len(x)).split(args.batch_size)
    started = time.perf_counter()
    stamps = []
    for indices in order:
        loss = model.loss(x[indices.to(x.device)])
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        loss.item()  # as the project's running sums do; on CUDA it also waits for the batch
        stamps.append(time.perf_counter())
    return stamps[-1] - started, list(np.diff(stamps))


# -- the project -------------------------------------------------------------------


def project_epoch(data: TrainingData, config, device: torch.device, out_dir: Path) -> tuple[float, float, list[float]]:
    """Training seconds, end-of-epoch seconds, and seconds of each batch but the first of each epoch,
    for the project's own Trainer."""
    stamps: list[tuple[int, float]] = []
    def on_step(trainer):
        return stamps.append((trainer.progress.epoch, time.perf_counter()))
    trainer = Trainer(config, data, out_dir, device, on_step=on_step)
    started = time.perf_counter()
    trainer.fit()
    total = time.perf_counter() - started
    train_seconds = trainer.progress.seconds  # the batches only, as metrics.jsonl records it
    batches = [b - a for (ea, a), (eb, b) in pairwise(stamps) if ea == eb]  # not across an epoch's end
    return train_seconds, total - train_seconds, batches


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--epochs", type=int, default=1, help="epochs per timed run (default 1)")
    parser.add_argument("--repeats", type=int, default=3, help="timed runs of each side, interleaved (default 3)")
    parser.add_argument("--threads", type=int, default=None, help="torch intra-op threads (default: torch's choice)")
    parser.add_argument("--device", default="cpu", help="cpu or cuda (default cpu)")
    parser.add_argument("--windows", type=int, default=4160, help="synthetic training windows (default 4160)")
    parser.add_argument("--hidden", type=int, default=500)
    parser.add_argument("--latent", type=int, default=2)
    parser.add_argument("--steps", type=int, default=50)
    parser.add_argument("--batch-size", type=int, default=100)
    parser.add_argument("--density", type=float, default=0.1, help="share of piano-roll cells on")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--no-warmup", action="store_true", help="skip the untimed first run of each side")
    parser.add_argument("--quick", action="store_true", help="tiny run (2 batches, 1 repeat) to check the script works")
    args = parser.parse_args(argv)
    if args.quick:
        # a toy size: the point is that every line of the script still runs, not the figure
        args.hidden, args.steps, args.batch_size, args.windows = 32, 10, 10, 30
        args.repeats, args.epochs, args.no_warmup = 1, 1, True
        # one thread: two OpenMP threads on a busy 2-core machine were measured to stall for
        # seconds per batch (a descheduled thread holds up the other at every barrier)
        args.threads = args.threads or 1
    if args.threads:
        torch.set_num_threads(args.threads)
    device = pick_device(args.device)

    x_np = synthetic_windows(args.windows, args.steps, len(PITCHES), args.density, args.seed)
    windows = WindowSet(x=x_np, song=np.zeros(len(x_np), dtype=np.int64), song_names=["synthetic"], dropped_notes=0)
    data = TrainingData(train=windows, val=None, pitches=PITCHES, songs_found=1, songs_used=1)
    config = load_config("paper-2d", {"hidden": args.hidden, "latent": args.latent, "window": args.steps,
                                      "batch_size": args.batch_size, "seed": args.seed})
    config = with_changes(config, train={"epochs": args.epochs})
    x = torch.from_numpy(x_np).to(device=device, dtype=torch.float32)

    print(machine_line(device))
    print(f"model: paper-2d, hidden {args.hidden}, latent {args.latent}, {args.steps} steps, {len(PITCHES)} pitches, "
          f"batch {args.batch_size}; data: {args.windows} synthetic windows, density {args.density}, seed {args.seed}")
    print(f"threads: {torch.get_num_threads()}; device: {device}; {args.epochs} epoch(s) per run, {args.repeats} repeats")

    project, epoch_end, reference, project_batches, reference_batches = [], [], [], [], []
    with tempfile.TemporaryDirectory(prefix="bench-train-") as tmp:
        runs = range(-1 if not args.no_warmup else 0, args.repeats)
        for run in runs:  # run -1 warms both sides up (allocator, kernels) and is not counted
            seconds, overhead, batches = project_epoch(data, config, device, Path(tmp) / f"run{run}")
            ref, ref_batches = 0.0, []
            for epoch in range(args.epochs):
                epoch_seconds, epoch_batches = reference_epoch(x, args, args.seed + epoch)
                ref += epoch_seconds
                ref_batches += epoch_batches
            if run >= 0:
                project_batches += batches
                reference_batches += ref_batches
                project.append(seconds / args.epochs)
                epoch_end.append(overhead / args.epochs)
                reference.append(ref / args.epochs)
                print(f"  run {run + 1}: project {project[-1]:.3f} s/epoch, reference {reference[-1]:.3f} s/epoch")

    p, r = statistics.median(project), statistics.median(reference)
    print(f"project:   {p:.3f} s/epoch  {args.windows / p:.1f} seq/s  (median of {len(project)})")
    print(f"reference: {r:.3f} s/epoch  {args.windows / r:.1f} seq/s  (median of {len(reference)})")
    print(f"epoch end: {statistics.median(epoch_end):.3f} s  (project only: evaluation, latent plane, checkpoints)")
    pb, rb = statistics.median(project_batches), statistics.median(reference_batches)
    print(f"per batch: project {1000 * pb:.1f} ms, reference {1000 * rb:.1f} ms (medians of {len(project_batches)} "
          f"and {len(reference_batches)}); batch ratio = {pb / rb:.3f}  (less swayed by a noisy machine)")
    print(f"ratio = {p / r:.3f}  (project / reference, median seconds per epoch; goal <= 1.0)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
