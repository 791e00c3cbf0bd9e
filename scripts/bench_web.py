"""The web page's cost to the live path: tap-to-applied latency over loopback, and the clock's
late ticks while a page streams moves at 60 Hz.

``vrae-live serve --midi-api jack`` (the shipped model on the CPU unless --checkpoint) runs on a
private JACK server (dummy driver, 64-frame periods) with its web page on, and a WebSocket client
in this process plays the page's part (the same JSON the page sends, with its Origin and token):

taps
    ``--taps`` single moves, one every 50 ms; each one's time from send to the daemon's
    ``applied`` answer (sent once ``Controls`` holds it: this is an upper bound of tap-to-applied,
    as it includes the answer's way back). p50, p99, max.
stream
    moves at 60 Hz (a finger dragged, absolute deadlines) for ``--seconds``, the same latency per
    move; then the daemon's stop line: late ticks and their lateness. Against an idle run of the
    same length (a page connected, no moves), so the page's own cost is the difference.

    python3 scripts/bench_web.py                  # 300 taps, 20 s idle, 20 s streaming
    python3 scripts/bench_web.py --quick          # checks the script runs
"""

from __future__ import annotations

import argparse
import json
import math
import re
import signal
import threading
import time
from pathlib import Path

import numpy as np
import torch
from websockets.sync.client import connect

from vrae_live.config import default_checkpoint
from vrae_live.machine import machine_line
from vrae_live.testing.jack import JackServer, MidiDump, missing_jack_tools
from vrae_live.testing.serve import ServeProcess, free_port

TOKEN = "bench-web-token"


class Page:
    """A WebSocket client that speaks as the page does; answers read by a thread, stamped on arrival."""

    def __init__(self, port: int):
        origin = f"http://127.0.0.1:{port}"
        self.ws = connect(f"ws://127.0.0.1:{port}/ws?token={TOKEN}", origin=origin)
        self.sent: dict[int, float] = {}
        self.applied: dict[int, float] = {}
        self.seq = 0
        self._arrived = threading.Condition()
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        try:
            for text in self.ws:
                now = time.perf_counter()
                message = json.loads(text)
                if message["type"] == "applied":
                    with self._arrived:
                        self.applied[message["seq"]] = now
                        self._arrived.notify_all()
        except Exception:  # noqa: BLE001 -- the connection closes at the end
            pass

    def move(self, x: float, y: float) -> int:
        self.seq += 1
        self.sent[self.seq] = time.perf_counter()
        self.ws.send(json.dumps({"set": "xy", "value": [round(x, 4), round(y, 4)], "seq": self.seq}))
        return self.seq

    def wait(self, seq: int, timeout: float = 5.0) -> None:
        with self._arrived:
            if not self._arrived.wait_for(lambda: seq in self.applied, timeout):
                raise TimeoutError(f"move {seq} not applied in {timeout} s")

    def latencies_ms(self, seqs) -> np.ndarray:
        return np.array([1000 * (self.applied[s] - self.sent[s]) for s in seqs if s in self.applied])

    def close(self) -> None:
        self.ws.close()


def run_daemon(jack: JackServer, checkpoint: Path, seconds: float, taps: int, stream: bool) -> dict:
    port = free_port()
    daemon = ServeProcess(checkpoint, "--web-port", str(port), "--web-host", "127.0.0.1", "--web-token", TOKEN,
                          "--device", "cpu", "--bpm", "120", env=jack.env)
    result: dict = {}
    try:
        with MidiDump("vrae-live:vrae-live"):
            page = Page(port)
            tap_seqs = []
            for i in range(taps):
                angle = 2.4 * i
                seq = page.move(0.5 + 0.4 * math.cos(angle), 0.5 + 0.4 * math.sin(angle))
                page.wait(seq)
                tap_seqs.append(seq)
                time.sleep(0.05)  # a tap every 50 ms: a pacing of the test, not a synchronisation
            result["taps"] = page.latencies_ms(tap_seqs)
            started, stream_seqs, k = time.perf_counter(), [], 0
            while time.perf_counter() < started + seconds:
                if stream:
                    t = k / 60
                    stream_seqs.append(page.move(0.5 + 0.4 * math.cos(0.7 * t), 0.5 + 0.4 * math.sin(0.7 * t)))
                k += 1
                time.sleep(max(0.0, started + k / 60 - time.perf_counter()))
            if stream_seqs:
                page.wait(stream_seqs[-1])
            result["stream"] = page.latencies_ms(stream_seqs)
            result["moves"] = len(stream_seqs)
            page.close()
            daemon.proc.send_signal(signal.SIGINT)
            daemon.wait(30)
    finally:
        daemon.kill()
    result["stopped"] = next((line.strip() for line in daemon.lines if line.startswith("stopped:")), "no stop line")
    result["web"] = next((line.strip() for line in daemon.lines if line.startswith("web: ") and "pages" in line), "")
    return result


def describe(name: str, ms: np.ndarray) -> str:
    if len(ms) == 0:
        return f"{name}: none"
    p50, p99 = np.percentile(ms, [50, 99])
    return f"{name}: {len(ms)} moves, send to applied-answer p50 {p50:.2f} ms, p99 {p99:.2f} ms, max {ms.max():.2f} ms"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--checkpoint", type=Path, default=None, help="the model serve plays [default: the shipped one]")
    parser.add_argument("--taps", type=int, default=300)
    parser.add_argument("--seconds", type=float, default=20.0, help="seconds of each phase, idle and streaming")
    parser.add_argument("--quick", action="store_true", help="20 taps, 2 s phases: checks the script runs")
    args = parser.parse_args(argv)
    if args.quick:
        args.taps, args.seconds = 20, 2.0
    missing = missing_jack_tools()
    if missing:
        print(f"JACK tools not found: {', '.join(missing)} (Debian: apt install jackd2); nothing measured")
        return 1
    checkpoint = args.checkpoint or default_checkpoint()
    print(machine_line(torch.device("cpu")) + (": --quick, figures mean little" if args.quick else ""))
    print(f"serve {checkpoint} on the CPU at 120 bpm, JACK dummy driver 64-frame periods; client over loopback")
    with JackServer(period_frames=64, name=f"vrae-bench-web-{args.seconds:g}") as jack:
        idle = run_daemon(jack, checkpoint, args.seconds, 0, stream=False)
        streamed = run_daemon(jack, checkpoint, args.seconds, args.taps, stream=True)
    print(describe("taps, one every 50 ms", streamed["taps"]))
    print(describe(f"streaming at 60 Hz for {args.seconds:g} s", streamed["stream"]))
    for name, r in (("idle (a page connected, no moves)", idle), ("taps then 60 Hz stream", streamed)):
        late = re.search(r"(\d+ late ticks \(.*?\))", r["stopped"])
        print(f"clock, {name}: {late.group(1) if late else r['stopped']}; {r['web']}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
