"""jitter: ``vrae-live serve --midi-api jack`` on a private JACK server, its note-ons against the
frame grid, idle, flooded with OSC and beside busy processes (scripts/bench_live.py says more)."""

from __future__ import annotations

import signal
import subprocess
import sys
import threading
import time
import uuid
from pathlib import Path

import numpy as np

from vrae_live.checkpoint import load_checkpoint
from vrae_live.live.realtime import realtime_permitted
from vrae_live.testing.jack import JackServer, MidiDump, jack_connect, stop_process

from .common import SAMPLE_RATE, percentiles


class JackSession:
    """A private JACK server and two receivers of the daemon's MIDI, all stopped on exit.

    ``realtime`` runs the server with ``-R`` (see :class:`~vrae_live.testing.jack.JackServer`).
    The receivers: ``jack_midi_dump`` (frame times, the timeline a DAW records on) and an
    rtmidi input (``jack_get_time()`` in its process callback: real time, unaffected by the
    dummy driver's frame clock slipping).
    """

    def __init__(self, period_frames: int, realtime: bool):
        self.server = JackServer(period_frames, SAMPLE_RATE, realtime=realtime)
        self.procs: list[subprocess.Popen] = []  # the daemon; stopped before the receivers and the server
        self.dump: MidiDump | None = None
        self.stamps: list[float] = []  # each note-on's real time at the JACK cycle that carried it, from rtmidi
        self._stop = threading.Event()
        self._poller: threading.Thread | None = None

    @property
    def env(self) -> dict[str, str]:
        return self.server.env

    @property
    def frames(self) -> list[int]:
        """Each note-on's JACK frame time, from jack_midi_dump."""
        return [e.frame for e in list(self.dump.events) if is_note_on(e.data)] if self.dump else []

    def __enter__(self) -> "JackSession":
        self.server.start()
        return self

    def start_receivers(self, source: str) -> None:
        import rtmidi

        name = f"rx-{uuid.uuid4().hex[:6]}"
        midi_in = rtmidi.MidiIn(rtmidi.API_UNIX_JACK, name=name, queue_size_limit=65536)
        midi_in.open_virtual_port("in")
        self._poller = threading.Thread(target=self._poll, args=(midi_in,), daemon=True)
        self._poller.start()
        jack_connect(source, f"{name}:in", timeout=10)
        self.dump = MidiDump(source, sample_rate=SAMPLE_RATE).start()

    def _poll(self, midi_in) -> None:
        elapsed = 0.0  # rtmidi gives each message's seconds since the previous one
        while not self._stop.is_set():
            message = midi_in.get_message()
            if message is None:
                time.sleep(0.002)
                continue
            data, delta = message
            elapsed += delta
            if is_note_on(data):
                self.stamps.append(elapsed)
        midi_in.close_port()
        midi_in.delete()  # the JACK client goes before jackd stops (__exit__ waits for this)

    def __exit__(self, *exc) -> None:
        for proc in self.procs:
            stop_process(proc, signal.SIGINT)
        self._stop.set()
        if self._poller is not None:
            self._poller.join(5)
        if self.dump is not None:
            self.dump.stop()
        self.server.stop()


def is_note_on(data) -> bool:
    return data[0] & 0xF0 == 0x90 and len(data) > 2 and data[2] > 0


def grid_jitter(times: list[float], period_s: float) -> np.ndarray:
    """Each note-on's signed distance in seconds from the grid ``offset + k * period_s``.

    ``k`` counts frames from note to note (a gap is rounded to whole periods), so a slow drift
    between the daemon's clock and the receiver's shows as growing residuals instead of
    wrapping to the neighbouring frame. The offset is the median residual.
    """
    t = np.asarray(times, dtype=np.float64)
    k = np.concatenate([[0.0], np.cumsum(np.round(np.diff(t) / period_s))])
    residual = t - k * period_s
    return residual - np.median(residual)


def frame_clock_slip(frame_times: list[float], stamps: list[float]) -> float | None:
    """How far JACK's frame clock strayed from real time over the same note-ons, in seconds
    (None if the two receivers disagree on how many there were).

    Each note-on's frame time minus its real-time stamp is constant while the frame clock
    keeps time. The dummy driver paces its cycles with sleeps; when one runs late its frame
    count falls behind real time for good, and every later frame time is off by as much.
    A sound card's clock does not slip so.
    """
    if len(frame_times) != len(stamps) or len(frame_times) < 3:
        return None
    offset = np.asarray(frame_times) - np.asarray(stamps)
    return float(np.abs(offset - np.median(offset)).max())


def flood(port: int, rate: float, stop: threading.Event, counter: list[int]) -> None:
    """Send /vrae/xy ``rate`` times a second (in 1 ms bursts) until ``stop``, the pad circling slowly."""
    from pythonosc.udp_client import SimpleUDPClient

    client = SimpleUDPClient("127.0.0.1", port)
    started = time.monotonic()
    while not stop.is_set():
        elapsed = time.monotonic() - started
        while counter[0] < rate * elapsed:
            angle = 0.5 * (started + counter[0] / rate)
            client.send_message("/vrae/xy", [0.5 + 0.4 * np.cos(angle), 0.5 + 0.4 * np.sin(angle)])
            counter[0] += 1
        time.sleep(0.001)


def busy_processes(count: int) -> list[subprocess.Popen]:
    """``count`` processes spinning at normal priority: a machine busy with other work."""
    return [subprocess.Popen([sys.executable, "-c", "while True: pass"]) for _ in range(count)]


PHASES = ("idle", "flood", "loaded")


def bench_jitter(ckpt_dir: Path, seconds: float, rate: float, bpm: float, *, period_frames: int,
                 jack_realtime: bool, serve_realtime: bool, load: int) -> dict:
    """Note-on jitter of the real daemon through JACK: idle, flooded with OSC, and beside ``load`` busy processes."""
    ckpt = load_checkpoint(ckpt_dir)
    period = ckpt.timing.frame_seconds(bpm)
    results = {"period_s": period}
    with JackSession(period_frames, jack_realtime) as jack:
        command = [sys.executable, "-m", "vrae_live", "serve", "--checkpoint", str(ckpt_dir), "--host",
                   "127.0.0.1", "--port", "0", "--midi-api", "jack", "--device", "cpu", "--bpm", str(bpm), "--web-port", "0",
                   "--realtime" if serve_realtime else "--no-realtime"]
        serve = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                                 env={**jack.env, "PYTHONUNBUFFERED": "1"})
        jack.procs.append(serve)
        lines: list[str] = []
        for line in serve.stdout:
            lines.append(line)
            if "ready" in line:
                break
        else:
            raise RuntimeError("serve did not start:\n" + "".join(lines))
        threading.Thread(target=lambda: lines.extend(serve.stdout), daemon=True).start()
        port = int(next(line for line in lines if "OSC in: send to" in line).rsplit(":", 1)[1].split(",")[0])
        jack.start_receivers("vrae-live:vrae-live")
        from pythonosc.udp_client import SimpleUDPClient

        SimpleUDPClient("127.0.0.1", port).send_message("/vrae/xy", [0.3, 0.7])
        time.sleep(min(1.0, seconds / 4))  # let the take settle after connecting
        for phase in PHASES if load else PHASES[:2]:
            first, first_stamp = len(jack.frames), len(jack.stamps)
            stop, counter = threading.Event(), [0]
            sender = threading.Thread(target=flood, args=(port, rate, stop, counter), daemon=True)
            hogs = busy_processes(load) if phase == "loaded" else []
            started = time.monotonic()
            try:
                if phase == "flood":
                    sender.start()
                time.sleep(seconds)
            finally:
                stop.set()
                for hog in hogs:
                    hog.kill()
                    hog.wait()
            if phase == "flood":
                sender.join()
            elapsed = time.monotonic() - started
            frames, stamps = jack.frames[first:], jack.stamps[first_stamp:]
            results[phase] = {"frame_times": [f / SAMPLE_RATE for f in frames], "stamps": stamps,
                              "sent": counter[0], "rate": counter[0] / elapsed}
        serve.send_signal(signal.SIGINT)
        serve.wait(20)
        results["serve_log"] = [line.strip() for line in lines if "stopped:" in line or "clock:" in line]
    return results


def report_jitter(r: dict, period_frames: int, jack_realtime: bool, load: int) -> None:
    period = r["period_s"]
    floor = 1000 * period_frames / SAMPLE_RATE
    print(f"jitter through JACK (dummy driver, {'realtime' if jack_realtime else 'NOT realtime'}, {SAMPLE_RATE} Hz, "
          f"{period_frames}-frame periods: MIDI moves on period boundaries, so up to {floor / 2:.2f} ms of it is "
          f"JACK's own), frame period {1000 * period:.1f} ms:")
    for line in r["serve_log"]:
        print(f"  serve: {line}")
    for phase in PHASES:
        if phase not in r:
            continue
        frame_times, stamps = r[phase]["frame_times"], r[phase]["stamps"]
        detail = {"flood": f", {r[phase]['rate']:.0f} OSC messages/s", "loaded": f", {load} busy processes"}.get(phase, "")
        if len(stamps) < 3:
            print(f"  {phase}: too few note-ons ({len(stamps)}) to measure{detail}")
            continue
        # The daemon's grid is in real time, so its notes are measured in real time: when the
        # JACK cycle that carried each one ran (the rtmidi receiver's stamps).
        real = np.abs(grid_jitter(stamps, period)) * 1000
        r50, r99 = percentiles(real)
        print(f"  {phase}: {len(stamps)} note-ons{detail}; distance from the grid in real time at the JACK cycle: "
              f"p50 = {r50:.2f} ms, max = {real.max():.2f} ms")
        print(f"  {phase}: jitter p99 = {r99:.2f} ms")
        if len(frame_times) >= 3:
            frames = np.abs(grid_jitter(frame_times, period)) * 1000
            f50, f99 = percentiles(frames)
            slip = frame_clock_slip(frame_times, stamps)
            print(f"  {phase}: in JACK frame time (jack_midi_dump, {len(frame_times)} note-ons): p50 = {f50:.2f} ms, "
                  f"p99 = {f99:.2f} ms, max = {frames.max():.2f} ms"
                  + ("" if slip is None else f"; JACK's frame clock strayed from real time by up to {1000 * slip:.2f} ms"
                     + (" (the dummy driver slipped: frame-time figures carry it)" if slip > floor / 1000 else "")))


def run(ckpt_dir: Path, args, missing: list[str]) -> int:
    """The jitter runs the command line asks for (``--daemon``, ``--require-jack``, ...); 1 when the
    JACK tools are missing and required."""
    if missing:
        message = f"jitter: JACK tools not found: {', '.join(missing)} (Debian: apt install jackd2)"
        print(message + ("" if args.require_jack else "; skipped"))
        return 1 if args.require_jack else 0
    problem = realtime_permitted()
    if problem:
        print(f"jitter: {problem}; JACK and the daemon run at normal priority")
    runs = [mode == "realtime" and not problem for mode in ("realtime", "normal") if args.daemon in (mode, "both")]
    for serve_realtime in dict.fromkeys(runs[:1] if args.quick else runs):
        print(f"daemon: serve {'--realtime' if serve_realtime else '--no-realtime'}")
        r = bench_jitter(ckpt_dir, args.seconds, args.rate, args.bpm, period_frames=args.jack_period,
                         jack_realtime=not problem, serve_realtime=serve_realtime, load=args.load)
        report_jitter(r, args.jack_period, not problem, args.load)
    return 0
