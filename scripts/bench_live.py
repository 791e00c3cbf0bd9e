"""Live-path speed: decode time per hop, MIDI timing through JACK, and pad-to-sound delay.

Three measurements, each against the goal it serves:

decode
    ``Stream.next_frame`` (one voice), one call per frame as ``serve`` makes them, for the
    paper-2d and paper-20d presets with random weights (timing does not depend on what the
    weights learnt) and the shipped model (``checkpoints/default``). The pad jumps at every
    hop boundary and again mid-hop, so the frames that begin a window (the teacher-forced
    pass over the context, plus the look-past for the cross-fade) are timed as well as the
    plain steps, and a paper preset (z only in h_0) re-anchors once a hop. p50, p99 and the
    worst frame, against one frame period (the daemon decodes in the clock's own thread
    right after a tick, so a frame decoding longer than a period makes the next tick late)
    and the goal "p99 under a quarter of a frame period".
jitter
    ``vrae-live serve --midi-api jack`` as a subprocess, on a private JACK server (dummy
    driver, 48 kHz, 64-frame periods, so the floor is 1.3 ms), received by
    ``jack_midi_dump`` in a separate JACK client. Every note-on is due on the frame grid
    ``offset + k * period``; the period comes from the checkpoint's timing (and --bpm), the
    offset is the median residual. p50 and p99 of |note-on - grid time|, idle and while
    another thread floods the daemon with /vrae/xy over UDP.
pad delay
    In process (``Performer``, ``MemorySink``, a fake clock): a /vrae/xy jump arrives
    after frame N; the delay is the number of frames until the first frame whose
    probabilities differ from a run without the jump (same seed), for every phase N of a
    hop, for the two presets and the shipped model. Goal: "within 2 frames" (the frame
    decoded next, or the one after when the move arrives just after a tick's decode).

    python3 scripts/bench_live.py                    # all three on the CPU
    python3 scripts/bench_live.py --device cuda      # decode on the GPU (on a machine with one)
    python3 scripts/bench_live.py --parts decode,pad # without a JACK server
    python3 scripts/bench_live.py --quick            # tiny sizes: checks the script runs
clock
    ``serve --sync midi-clock``. The delay-locked loop on synthetic clocks (no real time): the
    error of each predicted sixteenth against the clean grid, p50 and p99, with a clean clock and
    with +-1.5 ms (3 ms) of uniform jitter, and the ticks to lock (every later prediction within
    1 ms) after a jump from 120 to 90 bpm; the follower's frames on fake time against the grid
    with ticks 100, 211 and 463 dropped beside a clean clock. Then end to end on a private JACK
    server: ``jack_midi_clock`` at 100 and at 140 bpm, ``vrae_live.testing.jittered_clock`` (each
    tick moved by up to 1.5 ms either way; ``jack_midi_clock -J`` makes the tempo wander instead),
    and ``jittered_clock`` leaving out ticks 100, 211 and 463 at 100 bpm (at least 12 s a take),
    started by ``jack_transport``, serve's note-ons against the sixteenths of the straight line
    through the clock's ticks, both recorded by one ``jack_midi_dump`` (``--seconds`` each); and
    Start to the first note (ms). Goals: p99 <= 2 ms clean, <= 3 ms with jitter; locked within a
    beat (24 ticks).

    python3 scripts/bench_live.py --parts clock
voices
    ``serve --voices N``: decode time per frame for 1, 2, 4, 8 and 16 voices, each at its own
    z, decoded together by one ``Stream`` (one batched model call per step), against N
    separate one-voice ``Stream``s in the same run (the sum of their ``next_frame`` calls
    for the frame), for a paper preset (z only in h_0) and the shipped model; every voice
    starts on frame 0, so windows begin on the same frames for both. The voice counts are
    measured in turn within each frame (the 1-voice reference is the same code, the same
    frames, the same moments of the machine's load). Per count: the median frame, and the
    median over hops of a hop's mean frame (its window start included: the cost of a frame
    over a hop, one load spike spoiling only its hop), each as a ratio to one voice; means and
    the worst frame. Goal: 8 voices cost at most twice one voice; and no frame as long as a
    frame period (a late tick).

    python3 scripts/bench_live.py --parts voices [--device cuda]
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from pathlib import Path

import numpy as np
import torch

from vrae_live.checkpoint import load_checkpoint, save_checkpoint
from vrae_live.config import load_config
from vrae_live.live.controls import Controls
from vrae_live.live.realtime import realtime_permitted
from vrae_live.machine import machine_line
from vrae_live.models import build_model
from vrae_live.play.clock import FrameClock
from vrae_live.play.performer import PerformanceSettings, Performer
from vrae_live.play.sink import MemorySink
from vrae_live.play.stream import live_hop, live_stream
from vrae_live.testing.fake_time import FakeTime
from vrae_live.testing.jack import JackServer, MidiDump, jack_connect, missing_jack_tools, stop_process

PITCHES = list(range(36, 85))  # 49 pitches, as the paper kept
PRESETS = ("paper-2d", "paper-20d")
SHIPPED = Path(__file__).resolve().parent.parent / "checkpoints" / "default"  # also timed, unless --quick
SAMPLE_RATE = 48_000


def percentiles(values, qs=(50, 99)) -> list[float]:
    return [float(np.percentile(values, q)) for q in qs]


def make_checkpoint(preset: str, directory: Path, hidden: int | None = None, seed: int = 0) -> Path:
    """A checkpoint of ``preset`` with random weights: what a trained one costs to play, not how it sounds."""
    config = load_config(preset, {"hidden": hidden, "seed": seed})
    torch.manual_seed(seed)
    model = build_model(len(PITCHES), config.model).eval()
    return save_checkpoint(directory, model, config, PITCHES)


# -- decode ------------------------------------------------------------------------


class PlainDecoder:
    """The reference: a hop decoded by the first loop any PyTorch user would write.

    The model's own weights in an ``nn.RNNCell``: h_0 from z, the context teacher-forced a
    frame at a time, then free steps each fed its own output thresholded at 0.5, the
    probabilities stacked and handed to numpy once at the end. No note gate (hysteresis,
    polyphony, note lengths), no cross-fade, no per-frame hand-over to numpy: what the
    project does beyond that is what the ratio prices. For the paper's tanh VRAE.
    """

    def __init__(self, model: torch.nn.Module):
        rnn = model.decoder
        self.cell = torch.nn.RNNCell(rnn.input_size, rnn.hidden_size).to(rnn.weight_hh_l0.device)
        with torch.no_grad():
            for name in ("weight_ih", "weight_hh", "bias_ih", "bias_hh"):
                getattr(self.cell, name).copy_(getattr(rnn, f"{name}_l0"))
        self.to_h0, self.to_logits = model.to_h0, model.to_logits

    @torch.inference_mode()
    def hop(self, z: torch.Tensor, context: torch.Tensor, steps: int) -> np.ndarray:
        h = torch.tanh(self.to_h0(z))
        for frame in context.unbind(1):
            h = self.cell(frame, h)
        probs = []
        for _ in range(steps):
            p = torch.sigmoid(self.to_logits(h))
            probs.append(p)
            h = self.cell((p > 0.5).float(), h)
        return torch.cat(probs).cpu().numpy()


def bench_decode(ckpt_dir: Path, device: torch.device, hops: int) -> dict:
    """Seconds per ``next_frame`` call, each frame's kind of join, and seconds per plain reference
    hop, hop by hop in turn, over ``hops`` hops (after two untimed ones of each)."""
    ckpt = load_checkpoint(ckpt_dir, device)
    stream = live_stream(ckpt, None)
    hop = stream.hop
    paper_vrae = ckpt.config.model.cell == "rnn" and not ckpt.config.model.z_every_step
    plain = PlainDecoder(ckpt.model) if paper_vrae else None  # the reference is the paper's decoder
    rng = np.random.default_rng(0)
    context = torch.as_tensor(rng.random((1, stream.context, ckpt.model.n_columns)) < 0.1,
                              dtype=torch.float32, device=device)
    times, joins, hop_times, reference = [], [], [], []
    for i in range(hops + 2):
        z = rng.standard_normal(ckpt.config.model.latent)
        started = time.perf_counter()
        for k in range(hop):
            if k == hop // 2 and k:  # the pad jumps mid-hop too: a paper preset re-anchors its window
                z = rng.standard_normal(ckpt.config.model.latent)
            before = time.perf_counter()
            decoded = stream.next_frame(z)  # returns numpy arrays, so a GPU decode is finished when it returns
            if i >= 2:  # the first calls allocate and pick kernels
                times.append(time.perf_counter() - before)
                joins.append(decoded.join)
        middle = time.perf_counter()
        if plain is not None:
            plain.hop(torch.as_tensor(z, dtype=torch.float32, device=device)[None], context, hop + stream.blend)
        if i >= 2:
            hop_times.append(middle - started)
            reference.append(time.perf_counter() - middle)
    return {"hop": hop, "window": ckpt.config.data.window, "blend": stream.blend,
            "period_s": ckpt.timing.frame_seconds(), "times": times, "joins": joins, "hop_times": hop_times,
            "reference": reference if plain is not None else None}


def report_decode(preset: str, device: torch.device, r: dict) -> None:
    times, joins = np.asarray(r["times"]), np.asarray(r["joins"], dtype=object)
    p50, p99 = percentiles(times)
    period = r["period_s"]
    print(f"decode {preset} on {device}: window {r['window']}, hop {r['hop']} frames, frame period "
          f"{1000 * period:.0f} ms; per frame: p50 = {1e6 * p50:.0f} us, p99 = {1000 * p99:.2f} ms, "
          f"max = {1000 * times.max():.2f} ms ({len(times)} frames)")
    for kind, label in (("hop", "beginning a window on the hop grid (context + look-past)"),
                        ("move", "re-anchored mid-hop by the pad (z only in h_0)")):
        chosen = times[joins == kind]
        if len(chosen):
            k50, k99 = percentiles(chosen)
            print(f"  frames {label}: {len(chosen)}, p50 = {1000 * k50:.2f} ms, p99 = {1000 * k99:.2f} ms, "
                  f"max = {1000 * chosen.max():.2f} ms")
    inside = times[joins == None]  # noqa: E711 (elementwise)
    print(f"  other frames (one step): p50 = {1e6 * np.median(inside):.0f} us, p99 = {1000 * np.percentile(inside, 99):.2f} ms")
    h50, _ = percentiles(r["hop_times"])
    if r["reference"] is not None:
        ref50, ref99 = percentiles(r["reference"])
        print(f"  a whole hop of frames: p50 = {1000 * h50:.1f} ms; plain reference hop (an nn.RNNCell loop, no note "
              f"gate, no re-anchor): p50 = {1000 * ref50:.1f} ms, p99 = {1000 * ref99:.1f} ms; ratio = {h50 / ref50:.2f} "
              f"(project / reference, medians)")
    quarter = period / 4
    print(f"  goal p99 < a quarter frame period ({1000 * quarter:.1f} ms): {'met' if p99 < quarter else 'NOT met'}; "
          f"every frame < one frame period ({1000 * period:.0f} ms, else the next tick is late): "
          f"{'met' if times.max() < period else 'NOT met'}")


# -- several voices ---------------------------------------------------------------

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


# -- jitter through JACK -----------------------------------------------------------


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


# -- pad delay ---------------------------------------------------------------------


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
        played.append(performer._buffer[0][0] if performer._buffer else np.zeros(len(ckpt.pitches)))
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


# -- main --------------------------------------------------------------------------


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


# -- clock out ---------------------------------------------------------------------


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


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--device", default="cpu", help="cpu or cuda, for the decode timing (default cpu)")
    parser.add_argument("--threads", type=int, default=None, help="torch intra-op threads (default: torch's choice)")
    parser.add_argument("--hops", type=int, default=200, help="timed hops per model (default 200)")
    parser.add_argument("--seconds", type=float, default=20.0, help="seconds of MIDI per jitter phase (default 20)")
    parser.add_argument("--rate", type=float, default=2000.0, help="OSC messages per second in the flood (default 2000)")
    parser.add_argument("--bpm", type=float, default=120.0)
    parser.add_argument("--jitter-preset", default="paper-2d", choices=PRESETS, help="model the daemon plays")
    parser.add_argument("--parts", default="decode,pad,jitter", help="which measurements, comma-separated "
                        "(default decode,pad,jitter)")
    parser.add_argument("--jack-period", type=int, default=64,
                        help="JACK frames per period (default 64 = 1.33 ms at 48 kHz; MIDI moves on period boundaries)")
    parser.add_argument("--load", type=int, default=max(1, (os.cpu_count() or 2) - 1),
                        help="busy processes in the 'loaded' jitter phase (default: one per core but one; 0 skips "
                             "the phase). More than that measures how the machine shares out its cores, not vrae-live")
    parser.add_argument("--daemon", choices=("both", "realtime", "normal"), default="both",
                        help="the daemon's clock priority in the jitter runs: serve --realtime, --no-realtime, "
                             "or both, the normal run as the reference (default both; realtime only where permitted)")
    parser.add_argument("--require-jack", action="store_true", help="fail, not skip, when the JACK tools are missing")
    parser.add_argument("--voice-frames", type=int, default=192, help="timed frames per voice count (default 192)")
    parser.add_argument("--quick", action="store_true", help="tiny sizes (hidden 32, few hops, 1 s of MIDI)")
    args = parser.parse_args(argv)
    parts = set(args.parts.split(","))
    known = {"decode", "pad", "jitter", "clock", "clock-out", "voices"}
    if parts - known:
        parser.error(f"unknown --parts {sorted(parts - known)}; known: {', '.join(sorted(known))}")
    if args.threads:
        torch.set_num_threads(args.threads)
    hidden = 32 if args.quick else None
    if args.quick:
        args.hops, args.seconds, args.rate, args.load = 5, 1.0, 500.0, min(args.load, 1)
        args.voice_frames = 16

    devices = [torch.device("cpu")]
    if args.device.startswith("cuda"):
        if torch.cuda.is_available():
            devices.append(torch.device(args.device))
        else:
            print(f"note: --device {args.device} asked for, but torch sees no CUDA GPU here; CPU figures only")
    print(machine_line(devices[-1]) + ("; --quick: hidden 32, figures mean nothing" if args.quick else ""))

    with tempfile.TemporaryDirectory(prefix="bench-live-") as tmp:
        ckpts = {preset: make_checkpoint(preset, Path(tmp) / preset, hidden) for preset in PRESETS}
        if not args.quick and (SHIPPED / "config.json").exists():
            ckpts["shipped"] = SHIPPED
        for preset in ckpts if "decode" in parts else ():
            for device in devices:
                report_decode(preset, device, bench_decode(ckpts[preset], device, args.hops))
        for preset in ("paper-2d", "shipped") if "voices" in parts else ():
            for device in devices if preset in ckpts else ():
                report_voices(preset, device, bench_voices(ckpts[preset], device, args.voice_frames))
        for preset in ckpts if "pad" in parts else ():
            report_pad_delay(preset, bench_pad_delay(ckpts[preset], phases=3 if args.quick else None))
        missing = missing_jack_tools()
        if "clock" in parts:
            jack = {}
            if missing or shutil.which("jack_midi_clock") is None:
                print("clock: jack_midi_clock or the JACK tools not found (Debian: apt install jackd2 jack-midi-clock); "
                      "the JACK figures skipped")
            else:
                live = make_checkpoint("live-2d", Path(tmp) / "live-2d", 32)
                for name, bpm, jitter_ms in (("jack_midi_clock, 100 bpm", 100, 0), ("jack_midi_clock, 140 bpm", 140, 0),
                                             ("+-1.5 ms jitter, 100 bpm", 100, 1.5)):
                    jack[name] = bench_clock_jack(live, bpm, jitter_ms, args.seconds)
                jack[f"ticks {', '.join(map(str, DROPPED))} dropped, 100 bpm"] = bench_clock_jack(
                    live, 100, 0, max(args.seconds, 12.0), DROPPED)
            report_clock(bench_clock_synthetic(), jack)
        if "clock-out" in parts and not missing:
            live = make_checkpoint("live-2d", Path(tmp) / "live-2d-out", 32)
            report_clock_out(bench_clock_out(live, args.seconds, args.bpm, args.jack_period,
                                             jack_realtime=not realtime_permitted()), args.bpm, args.jack_period)
        if "jitter" not in parts:
            pass
        elif missing:
            message = f"jitter: JACK tools not found: {', '.join(missing)} (Debian: apt install jackd2)"
            print(message + ("" if args.require_jack else "; skipped"))
            if args.require_jack:
                return 1
        else:
            problem = realtime_permitted()
            if problem:
                print(f"jitter: {problem}; JACK and the daemon run at normal priority")
            runs = [mode == "realtime" and not problem for mode in ("realtime", "normal") if args.daemon in (mode, "both")]
            for serve_realtime in dict.fromkeys(runs[:1] if args.quick else runs):
                print(f"daemon: serve {'--realtime' if serve_realtime else '--no-realtime'}")
                r = bench_jitter(ckpts[args.jitter_preset], args.seconds, args.rate, args.bpm,
                                 period_frames=args.jack_period, jack_realtime=not problem,
                                 serve_realtime=serve_realtime, load=args.load)
                report_jitter(r, args.jack_period, not problem, args.load)
    return 0


if __name__ == "__main__":
    sys.exit(main())
