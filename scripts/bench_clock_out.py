"""MIDI clock out through JACK: the clock ticks' jitter, and the frame clock's lateness with and
without --send-clock (the daemon's own stop lines), on a private realtime JACK (dummy driver).

    python3 scripts/bench_clock_out.py --seconds 20 --bpm 120
"""

from __future__ import annotations

import argparse
import re
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from vrae_live.testing.jack import JackServer, jack_connect, jack_ports, poll, stop_process  # noqa: E402

CLOCK = 0xF8


def run(seconds: float, bpm: float, send_clock: bool, env) -> tuple[str, np.ndarray]:
    import rtmidi

    midi_in = rtmidi.MidiIn(rtmidi.API_UNIX_JACK, name="bench-rx", queue_size_limit=65536)
    midi_in.ignore_types(sysex=True, timing=False, active_sense=True)
    midi_in.open_virtual_port("in")
    command = [sys.executable, "-m", "vrae_live", "serve", "--midi-api", "jack", "--midi-port", "bench-rx",
               "--host", "127.0.0.1", "--port", "0", "--bpm", str(bpm), "--duration", str(seconds), "--device", "cpu"]
    proc = subprocess.run(command + (["--send-clock"] if send_clock else []), capture_output=True, text=True,
                          env={**env, "PYTHONUNBUFFERED": "1"}, timeout=seconds + 120)
    elapsed, times = 0.0, []
    while (message := midi_in.get_message()) is not None:
        data, delta = message
        elapsed += delta
        if data[0] == CLOCK:
            times.append(elapsed)
    midi_in.close_port()
    midi_in.delete()
    return proc.stdout + proc.stderr, np.array(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=20.0)
    parser.add_argument("--bpm", type=float, default=120.0)
    parser.add_argument("--period", type=int, default=64, help="JACK period in frames (default 64)")
    parser.add_argument("--no-jack-realtime", action="store_true")
    args = parser.parse_args()
    with JackServer(args.period, realtime=not args.no_jack_realtime) as jack:
        for send_clock in (False, True, False, True):
            output, times = run(args.seconds, args.bpm, send_clock, jack.env)
            stopped = next((line for line in output.splitlines() if line.startswith("stopped:")), output[-500:])
            lateness = re.search(r"late ticks \((.*?)\)", stopped)
            print(f"--send-clock {'on ' if send_clock else 'off'}: frame ticks {lateness.group(1) if lateness else stopped}")
            if send_clock:
                clock_line = next((line for line in output.splitlines() if "MIDI clock out" in line), "")
                step = 60 / (args.bpm * 24)
                residual = times - np.arange(len(times)) * step
                distance = np.abs(residual - np.median(residual)) * 1000
                print(f"  {clock_line}")
                print(f"  {len(times)} clock ticks received, in real time at the JACK cycle: distance from the grid "
                      f"p50 {np.percentile(distance, 50):.3f} ms, p99 {np.percentile(distance, 99):.3f} ms, "
                      f"max {distance.max():.3f} ms (JACK period {1000 * jack.period_s:.2f} ms)")


if __name__ == "__main__":
    main()
