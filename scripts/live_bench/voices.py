"""voices: decode time per frame for 1 to 16 voices in one batched ``Stream``, against as many
one-voice streams (scripts/bench_live.py says what is measured)."""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import torch

from vrae_live.checkpoint import load_checkpoint
from vrae_live.play.stream import live_hop, live_stream

VOICE_COUNTS = (1, 2, 4, 8, 16)


def bench_voices(ckpt_dir: Path, device: torch.device, frames: int) -> dict:
    """Seconds per frame for each voice count: batched, and the same voices as separate streams.
    Every count steps once per frame, in turn (the order rotating), so all see the same load."""
    ckpt = load_checkpoint(ckpt_dir, device)
    hop = live_hop(ckpt, None)
    latent = ckpt.config.model.latent
    rng = np.random.default_rng(0)
    zs = rng.standard_normal((max(VOICE_COUNTS), latent))
    out = {"hop": hop, "period_s": ckpt.timing.frame_seconds(), "batched": {}, "separate": {}, "calls": {}}
    warm = 2 * hop  # the first frames allocate and pick kernels; timing starts on the hop grid
    frames = max(hop, frames // hop * hop)  # whole hops
    banks, separate = {}, {}
    for n in VOICE_COUNTS:
        banks[n] = live_stream(ckpt, None, seed=0, voices=n)
        for k in range(n):
            banks[n].start(k)
        separate[n] = [live_stream(ckpt, None, seed=k) for k in range(n)]
    batched_times = {n: [] for n in VOICE_COUNTS}
    separate_times = {n: [] for n in VOICE_COUNTS}
    for t in range(frames + warm):
        turn = t % len(VOICE_COUNTS)
        for n in VOICE_COUNTS[turn:] + VOICE_COUNTS[:turn]:
            step_zs = {k: zs[k] for k in range(n)}
            before = time.perf_counter()
            banks[n].step(step_zs, temperature=1.0)
            middle = time.perf_counter()
            for k, stream in enumerate(separate[n]):
                stream.next_frame(zs[k], temperature=1.0)
            if t >= warm:
                batched_times[n].append(middle - before)
                separate_times[n].append(time.perf_counter() - middle)
    for n in VOICE_COUNTS:
        out["batched"][n], out["separate"][n] = np.asarray(batched_times[n]), np.asarray(separate_times[n])
        out["calls"][n] = banks[n].model_calls / (frames + warm)
    return out


def per_hop(times: np.ndarray, hop: int) -> float:
    """The median over hops of a hop's mean frame: a frame's cost, window start included."""
    return float(np.median(times.reshape(-1, hop).mean(axis=1)))


def report_voices(preset: str, device: torch.device, r: dict) -> None:
    period, hop = r["period_s"], r["hop"]
    print(f"voices {preset} on {device}: hop {hop} frames, frame period {1000 * period:.0f} ms at 120 bpm; "
          f"{len(r['batched'][1])} frames ({len(r['batched'][1]) // hop} hops) per count, the counts in turn "
          f"each frame; per frame, batched (one model call per step for all voices) vs N separate streams:")
    one_med, one_hop = np.median(r["batched"][1]), per_hop(r["batched"][1], hop)
    for n in VOICE_COUNTS:
        b, sep = r["batched"][n], r["separate"][n]
        print(f"  {n:2d} voices: batched p50 {1e3 * np.median(b):6.3f} ms ({np.median(b) / one_med:4.2f}x one voice), "
              f"per hop {1e3 * per_hop(b, hop):6.3f} ms ({per_hop(b, hop) / one_hop:4.2f}x), "
              f"mean {1e3 * b.mean():6.2f} ms, max {1e3 * b.max():6.2f} ms; separate p50 {1e3 * np.median(sep):6.3f} "
              f"ms, per hop {1e3 * per_hop(sep, hop):6.3f} ms (separate / batched {per_hop(sep, hop) / per_hop(b, hop):4.2f}x "
              f"per hop); {r['calls'][n]:.2f} model calls per frame")
    p50_ratio = np.median(r["batched"][8]) / one_med
    hop_ratio = per_hop(r["batched"][8], hop) / one_hop
    met = p50_ratio <= 2 and hop_ratio <= 2
    print(f"  goal 8 voices <= 2x one voice: {'met' if met else 'NOT met'} ({p50_ratio:.2f}x on the median frame, "
          f"{hop_ratio:.2f}x per hop); 16 voices' worst frame {1e3 * r['batched'][16].max():.2f} ms against the "
          f"{1000 * period:.0f} ms period: {'no late tick' if r['batched'][16].max() < period else 'LATE'}")


def run(ckpts: dict[str, Path], devices: list[torch.device], frames: int) -> None:
    for preset in ("paper-2d", "shipped"):
        for device in devices if preset in ckpts else ():
            report_voices(preset, device, bench_voices(ckpts[preset], device, frames))
