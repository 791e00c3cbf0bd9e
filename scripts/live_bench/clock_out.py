"""clock-out: ``serve`` without and with ``--send-clock`` through JACK: the frame clock's lateness
and the clock ticks' distance from their grid."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import numpy as np

from vrae_live.live.realtime import realtime_permitted
from vrae_live.testing.jack import JackServer

from .common import SAMPLE_RATE, make_checkpoint, percentiles


def bench_clock_out(ckpt_dir: Path, seconds: float, bpm: float, period_frames: int, jack_realtime: bool) -> list[dict]:
    """``serve`` without and with ``--send-clock``, twice each, received by an rtmidi JACK input in
    this process: the frame clock's lateness (the stop line) and the clock ticks' distance from
    their grid in real time at the JACK cycle."""
    import rtmidi

    runs = []
    with JackServer(period_frames, SAMPLE_RATE, realtime=jack_realtime) as jack:
        for send_clock in (False, True, False, True):
            midi_in = rtmidi.MidiIn(rtmidi.API_UNIX_JACK, name="bench-rx", queue_size_limit=65536)
            midi_in.ignore_types(sysex=True, timing=False, active_sense=True)  # rtmidi drops clock by default
            midi_in.open_virtual_port("in")
            command = [sys.executable, "-m", "vrae_live", "serve", "--checkpoint", str(ckpt_dir), "--midi-api", "jack",
                       "--midi-port", "bench-rx", "--host", "127.0.0.1", "--port", "0", "--bpm", str(bpm),
                       "--duration", str(seconds), "--device", "cpu", "--web-port", "0"]
            command += ["--send-clock"] if send_clock else []
            proc = subprocess.run(command, capture_output=True, text=True, env={**jack.env, "PYTHONUNBUFFERED": "1"},
                                  timeout=seconds + 120)
            elapsed, times = 0.0, []
            while (message := midi_in.get_message()) is not None:
                data, delta = message
                elapsed += delta
                if data[0] == 0xF8:
                    times.append(elapsed)
            midi_in.close_port()
            midi_in.delete()
            output = proc.stdout + proc.stderr
            stopped = next((line for line in output.splitlines() if line.startswith("stopped:")), output[-300:])
            runs.append({"send_clock": send_clock, "stopped": stopped, "times": np.array(times),
                         "clock_line": next((line for line in output.splitlines() if "MIDI clock out" in line), "")})
    return runs


def report_clock_out(runs: list[dict], bpm: float, period_frames: int) -> None:
    print(f"clock out (serve --send-clock through JACK, {period_frames}-frame periods, {bpm:g} bpm):")
    for r in runs:
        lateness = re.search(r"late ticks \((.*?)\)", r["stopped"])
        print(f"  --send-clock {'on ' if r['send_clock'] else 'off'}: frame ticks "
              f"{lateness.group(1) if lateness else r['stopped']}")
        if r["send_clock"] and len(r["times"]) > 2:
            times = r["times"]
            residual = times - np.arange(len(times)) * 60 / (bpm * 24)
            distance = np.abs(residual - np.median(residual)) * 1000
            p50, p99 = percentiles(distance)
            print(f"    {r['clock_line'].strip()}")
            print(f"    {len(times)} clock ticks, in real time at the JACK cycle: distance from the grid "
                  f"p50 {p50:.3f} ms, p99 {p99:.3f} ms, max {distance.max():.3f} ms")


def run(tmp: Path, seconds: float, bpm: float, period_frames: int) -> None:
    live = make_checkpoint("live-2d", tmp / "live-2d-out", 32)
    report_clock_out(bench_clock_out(live, seconds, bpm, period_frames, jack_realtime=not realtime_permitted()),
                     bpm, period_frames)
