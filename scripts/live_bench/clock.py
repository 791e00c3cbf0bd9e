"""clock: ``serve --sync midi-clock``, the delay-locked loop on synthetic clocks and the follower on
fake time, then end to end through JACK (scripts/bench_live.py says what is measured)."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np

from vrae_live.live.realtime import realtime_permitted
from vrae_live.testing.fake_time import FakeTime
from vrae_live.testing.jack import JackServer

from .common import make_checkpoint, percentiles


def bench_clock_synthetic() -> dict:
    from vrae_live.testing.synthetic_clock import jittered, predictions, tick_times, ticks_to_lock

    true = tick_times([120] * 4800)
    out = {}
    for name, arrivals in (("clean", true), ("3 ms jitter", jittered(true, 0.0015, 0))):
        errors = np.abs(predictions(arrivals) - true)[48::6]
        out[name] = percentiles(errors * 1000)
    jump = tick_times([120] * 960 + [90] * 480)
    out["lock"] = ticks_to_lock(predictions(jump) - jump, 960, 0.001)
    out["lock jitter"] = max(ticks_to_lock(predictions(jittered(jump, 0.0015, s)) - jump, 960, 0.002) for s in range(5))
    for name, drop in (("frames, clean", []), ("frames, 3 dropped", DROPPED)):
        out[name] = follow_on_fake_time(true[:1200], drop)
    return out


DROPPED = (100, 211, 463)  # ticks left out of a take, counted from Start


def follow_on_fake_time(true: np.ndarray, drop) -> tuple[list[float], str]:
    """The follower's frames (fake time) on a clock at ``true`` with ``drop`` left out: the
    percentiles of each frame minus its sixteenth of the clean grid (ms), and its report."""
    from vrae_live.live.sync.midi_clock import MidiClockFollower
    from vrae_live.testing.synthetic_clock import FakeMidiInput, clock_messages

    fake = FakeTime(0.0)
    follower = MidiClockFollower(4, 0.125, now=fake.now, spin_s=0.0)
    messages = [m for i, m in enumerate(clock_messages(true, start_at=0)) if i - 1 not in drop]  # Start first
    follower._pause = FakeMidiInput(fake, follower, messages).pause
    errors = []
    while len(errors) < len(true) // 6 - 2:
        tick = follower.wait()
        if follower._woken.is_set():
            break
        errors.append(abs(fake.t - true[6 * tick.index]) * 1000)
    return percentiles(errors), follower.report()


def bench_clock_jack(ckpt_dir: Path, bpm: float, jitter_ms: float, seconds: float, drop=()) -> dict:
    from vrae_live.testing.midi_clock import lost_ticks_take, measure_take, onset_errors_s
    from vrae_live.testing.serve import channel_messages

    with JackServer(period_frames=64, name="vrae-bench-midi-clock", realtime=not realtime_permitted()) as server:
        events, stopped, output = measure_take(ckpt_dir, server, seconds=seconds, bpm=bpm, jitter_ms=jitter_ms,
                                               drop=drop)
    first = events[:stopped]
    start = next(i for i, e in enumerate(first) if e.data == b"\xfa")
    errors = onset_errors_s(first, start)
    first_tick = next(e.frame for e in first[start:] if e.data == b"\xf8")
    first_on = next(e.frame for e in channel_messages(first[start:]) if e.data[0] & 0xF0 == 0x90 and e.data[2])
    take = lost_ticks_take(events, stopped, bpm)
    stop_line = next((line for line in output.splitlines() if "stopped:" in line), "")
    return {"abs": percentiles(np.abs(errors) * 1000), "median": float(np.median(errors) * 1000),
            "notes": len(errors), "start_to_note_ms": (first_on - first_tick) / 48.0,
            "within_3ms": float(np.mean(np.abs(errors) <= 0.003)), "missing": take["lost"],
            "settled_max_ms": float(np.max(np.abs(take["errors"][take["settled"]]), initial=0) * 1000),
            "said": next((part for part in stop_line.split("; ") if "clock tick" in part), "")}


def report_clock(synthetic: dict, jack: dict) -> None:
    print("clock (DLL on synthetic 24-ppqn clocks, 120 bpm, predicted sixteenths vs the clean grid):")
    for name in ("clean", "3 ms jitter"):
        p50, p99 = synthetic[name]
        print(f"  {name:12s} p50 {p50:.3f} ms  p99 {p99:.3f} ms")
    print(f"  120 -> 90 bpm: locked (within 1 ms) {synthetic['lock']} ticks after the jump; "
          f"with 3 ms jitter (within 2 ms) {synthetic['lock jitter']} ticks (goal: 24)")
    for name in ("frames, clean", "frames, 3 dropped"):
        (p50, p99), said = synthetic[name]
        print(f"  follower, {name}: frame vs its sixteenth p50 {p50:.3f} ms  p99 {p99:.3f} ms ({said})")
    for name, r in jack.items():
        p50, p99 = r["abs"]
        print(f"  JACK, {name}: onset vs the clock's sixteenths p50 {p50:.2f} ms  p99 {p99:.2f} ms "
              f"(signed median {r['median']:+.2f} ms, {r['notes']} note-ons, {100 * r['within_3ms']:.0f} % within "
              f"3 ms); Start's first tick to the first note {r['start_to_note_ms']:.2f} ms")
        print(f"    ticks missing in the recording: {r['missing']}; worst note-on but those within a beat after a gap "
              f"{r['settled_max_ms']:.2f} ms; serve said: {r['said'] or '(nothing)'}")


def run(tmp: Path, seconds: float, missing: list[str]) -> None:
    jack = {}
    if missing or shutil.which("jack_midi_clock") is None:
        print("clock: jack_midi_clock or the JACK tools not found (Debian: apt install jackd2 jack-midi-clock); "
              "the JACK figures skipped")
    else:
        live = make_checkpoint("live-2d", tmp / "live-2d", 32)
        for name, bpm, jitter_ms in (("jack_midi_clock, 100 bpm", 100, 0), ("jack_midi_clock, 140 bpm", 140, 0),
                                     ("+-1.5 ms jitter, 100 bpm", 100, 1.5)):
            jack[name] = bench_clock_jack(live, bpm, jitter_ms, seconds)
        jack[f"ticks {', '.join(map(str, DROPPED))} dropped, 100 bpm"] = bench_clock_jack(
            live, 100, 0, max(seconds, 12.0), DROPPED)
    report_clock(bench_clock_synthetic(), jack)
