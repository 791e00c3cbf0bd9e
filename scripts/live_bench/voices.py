"""voices: decode time per frame for 1 to 16 voices in one batched ``Stream``, against as many
one-voice streams; and the whole play loop's frame for 1 and 8 voices (scripts/bench_live.py says
what is measured)."""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import torch

from vrae_live.checkpoint import load_checkpoint
from vrae_live.live.controls import Controls
from vrae_live.play.clock import OfflineClock
from vrae_live.play.performer import PerformanceSettings, Performer
from vrae_live.play.sink import NullSink
from vrae_live.play.stream import live_hop, live_stream

VOICE_COUNTS = (1, 2, 4, 8, 16)
LOOP_COUNTS = (1, 8)
LOOPS = tuple((n, keyed) for keyed in (False, True) for n in LOOP_COUNTS)  # (voices, in key with a chord held)


class PortSink(NullSink):
    """Encodes each message, as the port's sink does before rtmidi takes it, and counts them."""

    def __init__(self) -> None:
        super().__init__()
        self.count = 0

    def _write(self, msg) -> None:
        msg.bytes()
        self.count += 1


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


def loop_performer(ckpt, voices: int, keyed: bool = False) -> Performer:
    """A performer of ``voices`` voices, each touched at its own spot of the pad, into a ``PortSink``;
    ``keyed``: in D minor at the default strength, a chord held (``serve --key D --scale minor --follow``)."""
    controls = Controls(latent_size=ckpt.config.model.latent, voices=voices)
    if keyed:
        controls.handle_message("/vrae/key", ["D"])
        controls.handle_message("/vrae/scale", ["minor"])
        controls.set_chord(frozenset({2, 5, 9}))
    spots = np.random.default_rng(1).random((voices, 2))
    for k, (x, y) in enumerate(spots.tolist(), start=1):
        controls.handle_message(f"/vrae/voice/{k}/xy", [x, y])
        controls.handle_message(f"/vrae/voice/{k}/on", [1])
    return Performer(ckpt, controls, PortSink(), PerformanceSettings(seed=0, voices=voices),
                     OfflineClock(ckpt.timing.frame_seconds()))


def bench_loop(ckpt_dir: Path, device: torch.device, frames: int) -> dict:
    """Seconds per frame of the whole play loop for each of ``LOOP_COUNTS``: what ``Performer.run`` does
    between two ticks (the frame's notes of every voice to MIDI messages, then the next frame's control
    state, z and decode), the clock left out. The counts take a frame each in turn, the order rotating."""
    ckpt = load_checkpoint(ckpt_dir, device)
    hop = live_hop(ckpt, None)
    warm = 2 * hop
    frames = max(hop, frames // hop * hop)
    performers = {n: loop_performer(ckpt, *n) for n in LOOPS}
    times = {n: [] for n in LOOPS}
    messages = {n: 0 for n in LOOPS}
    for performer in performers.values():
        performer.decode_frame()  # the first frame is decoded before the clock starts
    for t in range(frames + warm):
        turn = t % len(LOOPS)
        for n in LOOPS[turn:] + LOOPS[:turn]:
            performer = performers[n]
            sent = performer.sink.count
            before = time.perf_counter()
            performer.play_frame(performer.control_state(performer.stats.frames))
            performer.decode_frame()
            if t >= warm:
                times[n].append(time.perf_counter() - before)
                messages[n] += performer.sink.count - sent
    return {"hop": hop, "times": {n: np.asarray(v) for n, v in times.items()},
            "messages": {n: messages[n] / frames for n in LOOPS}}


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


def report_loop(preset: str, device: torch.device, r: dict) -> None:
    hop, times, messages = r["hop"], r["times"], r["messages"]
    one, many = (LOOP_COUNTS[0], False), (LOOP_COUNTS[-1], False)
    print(f"  the whole play loop ({preset} on {device}; a frame's notes to MIDI messages, then the next frame's "
          f"controls and decode; {len(times[one])} frames per count, in turn; in key: D minor, a chord held):")
    for n in LOOPS:
        print(f"  {n[0]:2d} voices{' in key' if n[1] else ''}: loop p50 {1e3 * np.median(times[n]):6.3f} ms "
              f"({np.median(times[n]) / np.median(times[one]):4.2f}x one voice), per hop {1e3 * per_hop(times[n], hop):6.3f} "
              f"ms ({per_hop(times[n], hop) / per_hop(times[one], hop):4.2f}x), mean {1e3 * times[n].mean():6.2f} ms, "
              f"max {1e3 * times[n].max():6.2f} ms; {messages[n]:.1f} MIDI messages a frame")
    print(f"  loop {many[0]} voices / one voice: {np.median(times[many]) / np.median(times[one]):.2f}x on the median "
          f"frame, {per_hop(times[many], hop) / per_hop(times[one], hop):.2f}x per hop")
    for n in LOOP_COUNTS:
        plain, keyed = times[(n, False)], times[(n, True)]
        print(f"  in key / as the model plays, {n} voice(s): {np.median(keyed) / np.median(plain):.2f}x on the median "
              f"frame, {per_hop(keyed, hop) / per_hop(plain, hop):.2f}x per hop")


def run(ckpts: dict[str, Path], devices: list[torch.device], frames: int) -> None:
    for preset in ("paper-2d", "shipped"):
        for device in devices if preset in ckpts else ():
            report_voices(preset, device, bench_voices(ckpts[preset], device, frames))
            report_loop(preset, device, bench_loop(ckpts[preset], device, frames))
