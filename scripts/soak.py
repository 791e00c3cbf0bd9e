"""Soak: ``vrae-live serve`` for an hour through JACK, driven over OSC, watched for growth and leaks.

A private JACK server (``vrae_live.testing.jack``: dummy driver, 48 kHz, 256-frame periods) runs ``python3 -m
vrae_live serve --midi-api jack`` (this checkout's code, the shipped model unless
--checkpoint) as a subprocess. A separate JACK client (``jack_midi_dump``) records its MIDI
output; a thread drives the pad round a circle with ``/vrae/xy`` over UDP (--rate messages a
second) and every --flood-every seconds sends a flood burst (--flood-size datagrams back to
back). The daemon's resident memory (``VmRSS`` in /proc/PID/status) is sampled every
--sample-every seconds. At the end the daemon is stopped with SIGINT, as Ctrl-C would, and
the report gives:

- RSS after the warm-up (--warmup, 1 min) and at the end, and the growth in kB/min: the
  least-squares slope over the samples after the warm-up;
- the daemon's own stop line: frames, late ticks (p99, max);
- OSC datagrams sent and received (UDP drops part of a flood when the socket buffer fills);
- hanging notes: note-ons in the recording without a later note-off (a synth would still
  be sounding them), and how many All Notes Off (CC 123) arrived;
- the daemon's exit code and any traceback in its output.

Everything started here (jackd, the daemon, the receiver) is ended however the script ends.

    python3 scripts/soak.py                      # an hour
    python3 scripts/soak.py --minutes 5          # a quick check
    nohup python3 scripts/soak.py > /tmp/soak-60.txt 2>&1 &
"""

from __future__ import annotations

import argparse
import math
import os
import re
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))  # this checkout's vrae_live, not an installed one

from vrae_live.machine import machine_line  # noqa: E402
from vrae_live.testing.jack import SAMPLE_RATE, JackServer, MidiDump, missing_jack_tools  # noqa: E402

SOURCE_PORT = "vrae-live:vrae-live"
_STOP_LINE = re.compile(
    r"stopped: (?P<frames>\d+) frames, (?P<notes>\d+) notes, (?P<hops>\d+) hops decoded, (?P<late>\d+) late ticks "
    r"\(p99 (?P<p99>[\d.]+) ms, max (?P<max>[\d.]+) ms late\), (?P<panics>\d+) panics; "
    r"OSC (?P<datagrams>\d+) datagrams, (?P<applied>\d+) applied"
)


def rss_kb(pid: int) -> int | None:
    """The process's resident set in kB, from /proc; None once it has gone."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    except (OSError, ValueError):
        return None
    return None


def slope_kb_per_min(samples: list[tuple[float, int]]) -> float | None:
    """Least-squares slope of (seconds, kB) samples, in kB per minute."""
    if len(samples) < 3:
        return None
    t, kb = np.array(samples, dtype=np.float64).T
    return float(np.polyfit(t / 60.0, kb, 1)[0])


class Receiver:
    """What a synth would make of the MIDI a JACK client received: which notes still sound, and
    how many CC 123 arrived."""

    def __init__(self, events) -> None:
        self.sounding: set[tuple[int, int]] = set()  # (channel, note)
        self.note_ons = self.note_offs = self.all_notes_off = 0
        for event in events:
            data = event.data
            kind, channel = data[0] & 0xF0, data[0] & 0x0F
            if kind == 0x90 and len(data) > 2 and data[2] > 0:
                self.note_ons += 1
                self.sounding.add((channel, data[1]))
            elif kind in (0x80, 0x90) and len(data) > 1:
                self.note_offs += 1
                self.sounding.discard((channel, data[1]))
            elif kind == 0xB0 and len(data) > 1 and data[1] == 123:
                self.all_notes_off += 1


class Driver(threading.Thread):
    """/vrae/xy on a circle, ``rate`` a second, and a flood of ``flood_size`` datagrams every ``flood_every`` s."""

    def __init__(self, port: int, rate: float, flood_every: float, flood_size: int, lap_s: float = 20.0):
        super().__init__(name="osc-driver", daemon=True)
        self.port, self.rate, self.flood_every, self.flood_size, self.lap_s = port, rate, flood_every, flood_size, lap_s
        self.stop_event = threading.Event()
        self.sent = self.floods = self.send_errors = 0
        self.flood_seconds: list[float] = []  # how long each burst took to send

    def position(self, t: float) -> tuple[float, float]:
        angle = 2 * math.pi * t / self.lap_s
        return 0.5 + 0.4 * math.cos(angle), 0.5 + 0.4 * math.sin(angle)

    def run(self) -> None:
        from pythonosc.osc_message_builder import OscMessageBuilder

        def datagram(t: float) -> bytes:
            builder = OscMessageBuilder("/vrae/xy")
            for value in self.position(t):
                builder.add_arg(float(value), "f")
            return builder.build().dgram

        sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        target = ("127.0.0.1", self.port)
        started = time.monotonic()
        next_flood = started + self.flood_every
        steady = 0
        try:
            while not self.stop_event.is_set():
                now = time.monotonic()
                if now >= next_flood:
                    burst = [datagram(now - started + i / self.flood_size) for i in range(self.flood_size)]
                    began = time.perf_counter()
                    for data in burst:  # back to back
                        self._send(sock, data, target)
                    self.flood_seconds.append(time.perf_counter() - began)
                    self.floods += 1
                    next_flood += self.flood_every
                due = started + steady / self.rate
                if now >= due:
                    self._send(sock, datagram(now - started), target)
                    steady += 1
                    continue
                self.stop_event.wait(min(due, next_flood) - now)
        finally:
            sock.close()

    def _send(self, sock: socket.socket, data: bytes, target) -> None:
        try:
            sock.sendto(data, target)
            self.sent += 1
        except OSError:  # ENOBUFS on a full buffer: counted, the soak goes on
            self.send_errors += 1


class Soak:
    """The processes of one soak run: a private JACK server, the daemon, the receiving client."""

    def __init__(self, args: argparse.Namespace):
        self.args = args
        self.jack = JackServer(args.jack_period, SAMPLE_RATE)
        self.serve: subprocess.Popen | None = None
        self.dump: MidiDump | None = None
        self.serve_lines: list[str] = []
        self.threads: list[threading.Thread] = []

    def start_serve(self, seconds: float) -> int:
        """The daemon, until ``seconds`` (its own --duration, a backstop: it is stopped with SIGINT first); its OSC port."""
        command = [sys.executable, "-m", "vrae_live", "serve", "--midi-api", "jack", "--host", "127.0.0.1",
                   "--port", str(self.args.port), "--duration", str(seconds), "--web-port", "0"]
        if self.args.checkpoint:
            command += ["--checkpoint", self.args.checkpoint]
        env = {**self.jack.env, "PYTHONUNBUFFERED": "1",
               "PYTHONPATH": os.pathsep.join([str(ROOT)] + ([os.environ["PYTHONPATH"]] if os.environ.get("PYTHONPATH") else []))}
        self.serve = subprocess.Popen(command, cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                      text=True, bufsize=1, start_new_session=True)
        for line in self.serve.stdout:
            self.serve_lines.append(line)
            if line.strip().endswith("ready"):
                break
        else:
            raise RuntimeError("serve did not start:\n" + "".join(self.serve_lines))
        reader = threading.Thread(target=lambda: self.serve_lines.extend(self.serve.stdout), daemon=True)
        reader.start()
        self.threads.append(reader)
        osc = next(line for line in self.serve_lines if "OSC in: send to" in line)
        return int(osc.rsplit(":", 1)[1].split(",")[0])

    def stop_serve(self, timeout: float) -> int | None:
        """SIGINT, as Ctrl-C; then its whole group is killed. Its exit code (None if it had to be killed)."""
        if self.serve is None:
            return None
        code = self.serve.poll()
        if code is None:
            self.serve.send_signal(signal.SIGINT)
            try:
                code = self.serve.wait(timeout)
            except subprocess.TimeoutExpired:
                code = None
        try:
            os.killpg(self.serve.pid, signal.SIGKILL)  # anything it left behind in its group
        except (ProcessLookupError, PermissionError):
            pass
        self.serve.wait()
        return code

    def close(self) -> None:
        self.stop_serve(30)
        if self.dump is not None:
            self.dump.stop()
        self.jack.stop()


def run(args: argparse.Namespace) -> dict:
    soak = Soak(args)
    total_s = args.minutes * 60.0
    driver: Driver | None = None
    samples: list[tuple[float, int]] = []
    result: dict = {}
    try:
        soak.jack.start()
        port = soak.start_serve(total_s + 120)
        soak.dump = MidiDump(SOURCE_PORT).start()
        pid = soak.serve.pid
        driver = Driver(port, args.rate, args.flood_every, args.flood_size)
        started = time.monotonic()
        driver.start()
        next_sample = started
        while True:
            now = time.monotonic()
            if soak.serve.poll() is not None:
                result["died_at_s"] = now - started
                break
            if now >= next_sample:
                kb = rss_kb(pid)
                if kb is not None:
                    samples.append((now - started, kb))
                if args.progress:
                    print(f"  {(now - started) / 60:5.1f} min: RSS {kb} kB, {driver.sent} datagrams sent",
                          flush=True)
                next_sample += args.sample_every
            if now - started >= total_s:
                break
            time.sleep(max(0.0, min(next_sample, started + total_s) - time.monotonic()))
        result["duration_s"] = time.monotonic() - started
        driver.stop_event.set()
        driver.join(5)
        stopped_at = time.monotonic()
        result["exit_code"] = soak.stop_serve(30)
        result["stop_s"] = time.monotonic() - stopped_at
        # The receiver drains what reached it: the stop's All Notes Off comes last.
        try:
            soak.dump.wait_until(lambda events: Receiver(events).all_notes_off, timeout=10)
        except TimeoutError:
            pass  # reported below as no CC 123
        result["receiver"] = Receiver(soak.dump.events)
    finally:
        if driver is not None:
            driver.stop_event.set()
        soak.close()
        for thread in soak.threads:
            thread.join(2)
    result.update(samples=samples, lines=soak.serve_lines, driver=driver)
    result.setdefault("receiver", Receiver(soak.dump.events if soak.dump else []))
    return result


def report(args: argparse.Namespace, r: dict) -> int:
    lines, receiver, driver, samples = r["lines"], r["receiver"], r["driver"], r["samples"]
    print(f"soak: {r['duration_s'] / 60:.1f} min of serve through JACK (dummy driver, {SAMPLE_RATE} Hz, "
          f"{args.jack_period}-frame periods); pad circling at {args.rate:g} /vrae/xy a second, a burst of "
          f"{args.flood_size} datagrams every {args.flood_every:g} s ({driver.floods} bursts, median "
          f"{1000 * float(np.median(driver.flood_seconds)) if driver.flood_seconds else 0:.0f} ms each)")
    for line in lines:
        if line.startswith(("model ", "clock:")):
            print(f"  serve: {line.strip()}")
    if "died_at_s" in r:
        print(f"  DAEMON EXITED EARLY, after {r['died_at_s'] / 60:.1f} min")
    after = [(t, kb) for t, kb in samples if t >= args.warmup]
    slope = slope_kb_per_min(after)
    if after:
        growth = after[-1][1] - after[0][1]
        span = (after[-1][0] - after[0][0]) / 60
        print(f"RSS: {after[0][1] / 1024:.1f} MiB after {args.warmup:g} s of warm-up, {after[-1][1] / 1024:.1f} MiB "
              f"at the end ({growth:+d} kB over {span:.1f} min); slope = "
              + (f"{slope:+.1f} kB/min" if slope is not None else "n/a")
              + f" (least squares over {len(after)} samples, one every {args.sample_every:g} s); "
              f"median {float(np.median([kb for _, kb in after])) / 1024:.1f} MiB")
    else:
        print(f"RSS: no sample after the {args.warmup:g} s warm-up ({len(samples)} samples in all)")
    stop = next((m for m in map(_STOP_LINE.search, lines) if m), None)
    if stop:
        print(f"daemon: {stop['frames']} frames, {stop['notes']} notes, {stop['late']} late ticks "
              f"(p99 {stop['p99']} ms, max {stop['max']} ms late), {stop['panics']} panics")
        received = int(stop["datagrams"])
        print(f"OSC: {driver.sent} datagrams sent, {received} received by the daemon "
              f"({received / max(driver.sent, 1):.3f} of them), {stop['applied']} applied; {driver.send_errors} send errors")
    else:
        print("daemon: no 'stopped:' line in its output")
    played = f" (the daemon played {stop['notes']}; the first go out before the receiver is connected)" if stop else ""
    print(f"MIDI received: {receiver.note_ons} note-ons{played}, {receiver.note_offs} note-offs, "
          f"{receiver.all_notes_off} All Notes Off (CC 123); hanging notes after the stop: {len(receiver.sounding)}"
          + (f" {sorted(receiver.sounding)}" if receiver.sounding else ""))
    tracebacks = sum("Traceback (most recent call last)" in line for line in lines)
    print(f"exit code: {r['exit_code']} (stopped {r.get('stop_s', float('nan')):.1f} s after SIGINT); "
          f"crashes (tracebacks in the output): {tracebacks}")
    if tracebacks or r["exit_code"] != 0:
        print("daemon output:\n" + "".join(lines[-60:]))
    ok = stop is not None and not tracebacks and r["exit_code"] == 0 and not receiver.sounding and "died_at_s" not in r
    return 0 if ok else 1


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--minutes", type=float, default=60.0, help="how long the daemon plays (default 60)")
    parser.add_argument("--flood-every", type=float, default=60.0, help="seconds between flood bursts (default 60)")
    parser.add_argument("--flood-size", type=int, default=2000, help="datagrams per flood burst (default 2000)")
    parser.add_argument("--rate", type=float, default=30.0, help="/vrae/xy messages a second between floods (default 30)")
    parser.add_argument("--sample-every", type=float, default=10.0, help="seconds between RSS samples (default 10)")
    parser.add_argument("--warmup", type=float, default=60.0, help="seconds before RSS samples count (default 60)")
    parser.add_argument("--jack-period", type=int, default=256, help="JACK frames per period (default 256)")
    parser.add_argument("--port", type=int, default=0, help="the daemon's OSC port (default 0: a free one)")
    parser.add_argument("--checkpoint", help="model to play (default: the shipped checkpoints/default)")
    parser.add_argument("--progress", action="store_true", help="print each RSS sample as it is taken")
    args = parser.parse_args(argv)
    missing = missing_jack_tools()
    if missing:
        print(f"soak: JACK tools not found: {', '.join(missing)} (Debian: apt install jackd2)")
        return 1
    print(machine_line(torch.device("cpu")), flush=True)

    def terminate(signum, frame):  # SIGTERM (e.g. kill of a nohup run): end everything through the finally
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, terminate)
    return report(args, run(args))


if __name__ == "__main__":
    sys.exit(main())
