"""pad delay: frames from a /vrae/xy jump to the first changed frame, in process on fake time
(scripts/bench_live.py says what is measured)."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from vrae_live.checkpoint import load_checkpoint
from vrae_live.live.controls import Controls
from vrae_live.play.clock import FrameClock
from vrae_live.play.performer import PerformanceSettings, Performer
from vrae_live.play.sink import MemorySink
from vrae_live.play.stream import live_hop
from vrae_live.testing.fake_time import FakeTime


def perform_probs(ckpt, frames: int, move_after: int | None) -> np.ndarray:
    """Probabilities ``(frames, P)`` of the frames played; a pad jump arrives after frame ``move_after``."""
    controls = Controls(latent_size=ckpt.config.model.latent)
    controls.handle_message("/vrae/xy", [0.1, 0.1])
    played: list[np.ndarray] = []
    fake = FakeTime()
    clock = FrameClock(ckpt.timing.frame_seconds(), now=fake.now, sleep=fake.sleep, spin_s=0)

    def on_frame(index: int, state) -> None:
        if index == move_after:
            controls.handle_message("/vrae/xy", [0.9, 0.9])

    performer = Performer(ckpt, controls, MemorySink(clock=fake.now), PerformanceSettings(seed=1), clock, on_frame)
    original = performer.play_frame

    def play_frame(state) -> None:
        played.append(performer._buffer[0].decoded[0].probs if performer._buffer else np.zeros(len(ckpt.pitches)))
        original(state)

    performer.play_frame = play_frame
    performer.run(max_frames=frames)
    return np.array(played)


def bench_pad_delay(ckpt_dir: Path, phases: int | None = None) -> dict:
    """Frames from a pad jump to the first changed frame, for each phase of the jump within a hop."""
    ckpt = load_checkpoint(ckpt_dir)
    hop = live_hop(ckpt, None)
    start = 2 * hop  # well into the take, past the first hops
    frames = start + 3 * hop
    still = perform_probs(ckpt, frames, None)
    delays = []
    for n in range(start, start + (phases or hop)):
        moved = perform_probs(ckpt, frames, n)
        changed = np.flatnonzero(np.any(moved[n + 1:] != still[n + 1:], axis=1))
        delays.append(int(changed[0]) + 1 if len(changed) else None)  # 1: the very next frame already differs
    return {"hop": hop, "period_s": ckpt.timing.frame_seconds(), "delays": delays, "z_every_step": ckpt.config.model.z_every_step}


GOAL_FRAMES = 2  # from a /vrae/xy message to the first changed frame


def report_pad_delay(preset: str, r: dict) -> None:
    delays = [d for d in r["delays"] if d is not None]
    hop, period = r["hop"], r["period_s"]
    if not delays:
        print(f"pad delay {preset}: no frame changed after a pad jump")
        return
    p50, worst = float(np.median(delays)), max(delays)
    print(f"pad delay {preset} (z {'at every step' if r['z_every_step'] else 'only in h_0'}): hop {hop} frames; "
          f"from a /vrae/xy jump to the first changed frame: median {p50:.0f} frames ({1000 * p50 * period:.0f} ms), "
          f"max {worst} frames ({1000 * worst * period:.0f} ms) over {len(r['delays'])} phases of a hop; "
          f"goal within {GOAL_FRAMES} frames: {'met' if worst <= GOAL_FRAMES else 'NOT met'}"
          + ("" if len(delays) == len(r["delays"]) else f"; {len(r['delays']) - len(delays)} jumps changed nothing"))


def run(ckpts: dict[str, Path], phases: int | None) -> None:
    for preset in ckpts:
        report_pad_delay(preset, bench_pad_delay(ckpts[preset], phases=phases))
