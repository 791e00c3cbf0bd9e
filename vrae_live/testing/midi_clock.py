"""A take of `vrae-live serve --sync midi-clock` under a MIDI beat clock from the JACK transport,
moved with `jack_transport`: Debian's `jack_midi_clock`, or, with jitter, this package's
`jittered_clock` (which can also leave chosen ticks out); recorded with the clock in one
`jack_midi_dump`: for the end-to-end test and the benchmark."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
from pythonosc.udp_client import SimpleUDPClient

from . import jittered_clock
from .jack import MidiDump, die_with_parent, jack_connect, jack_ports, poll, stop_process
from .serve import ServeProcess, all_notes_off, note_ons

CLOCK_IN = "vrae-live clock:vrae-live clock"
OUT = "vrae-live:vrae-live"
BPM = 100
SAMPLE_RATE = 48_000


def tick_frames(bpm: float = BPM) -> float:
    """A 24-ppqn tick in JACK frames: 1200 (25 ms) at 100 bpm."""
    return SAMPLE_RATE * 60 / (bpm * 24)


class ClockSource:
    """A MIDI beat clock at a fixed tempo, moved by the JACK transport: ``jack_midi_clock``, or
    with ``jitter_ms`` each tick moved by up to that either way, or with ``drop`` those ticks
    (numbered from the transport's frame 0) left out (``jittered_clock``)."""

    def __init__(self, env, bpm: float = BPM, jitter_ms: float = 0.0, drop=()):
        self.env = env
        if jitter_ms or drop:
            args = [sys.executable, "-m", "vrae_live.testing.jittered_clock", "--bpm", str(bpm),
                    "--jitter-ms", str(jitter_ms), "--drop", ",".join(str(k) for k in drop)]
            self.port = jittered_clock.PORT
        else:
            args = ["jack_midi_clock", "-b", str(bpm), "-B", "-d", "0"]
            self.port = "jack_midi_clock:mclk_out"
        self.proc = subprocess.Popen(args, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                                     preexec_fn=die_with_parent)
        poll(lambda: self.port in jack_ports(), timeout=10, what=self.port)

    def transport(self, command: str) -> None:
        subprocess.run(["jack_transport"], input=f"{command}\n", env=self.env, capture_output=True, text=True, timeout=10,
                       check=True)

    def close(self) -> None:
        stop_process(self.proc)


def tick_grid(ticks_frames) -> tuple[float, float]:
    """The straight line the ticks lie on or jitter around: (frame of tick 0, frames per tick), by
    least squares over the ticks numbered by their intervals (so a lost tick keeps its number)."""
    frames = np.asarray(ticks_frames, dtype=np.float64)
    steps = np.diff(frames)
    index = np.concatenate([[0.0], np.cumsum(np.maximum(1.0, np.round(steps / np.median(steps))))])
    slope, intercept = np.polyfit(index, frames, 1)
    return float(intercept), float(slope)


def onsets_on_grid(events, start_index=0) -> tuple[np.ndarray, np.ndarray]:
    """Serve's note-ons from ``start_index`` on (those within a tick of the clock's ticks) against
    the clock's grid, the straight line through the ticks after the Start at or after
    ``start_index``: the index of each one's nearest sixteenth (every 6th tick of the line), and
    the note-on minus that sixteenth, in seconds."""
    ticks = [e.frame for e in events[start_index:] if e.data == b"\xf8"]
    first, tick = tick_grid(ticks)
    ons = np.array([e.frame for e in note_ons(events[start_index:])], dtype=np.float64)
    ons = ons[(ons >= ticks[0] - tick) & (ons <= ticks[-1] + tick)]
    sixteenth = 6 * tick
    index = np.round((ons - first) / sixteenth)
    return index.astype(int), (ons - (first + index * sixteenth)) / SAMPLE_RATE


def onset_errors_s(events, start_index=0) -> np.ndarray:
    """Each of serve's note-ons minus the nearest sixteenth of the clock's grid, in seconds (see
    :func:`onsets_on_grid`)."""
    return onsets_on_grid(events, start_index)[1]


def missing_ticks(ticks_frames) -> list[tuple[float, int]]:
    """Where the clock left gaps: (frame of the tick after the gap, ticks missing in it), the
    intervals counted in the median interval."""
    frames = np.asarray(ticks_frames, dtype=np.float64)
    if len(frames) < 3:
        return []
    steps = np.diff(frames)
    missing = np.round(steps / np.median(steps)).astype(int) - 1
    return [(float(frames[i + 1]), int(n)) for i, n in enumerate(missing) if n > 0]


def lost_ticks_take(events, stopped: int, bpm: float = BPM) -> dict:
    """A take's lost ticks and where serve's notes landed around them: ``gaps`` (frame after each,
    ticks missing) before the Stop, ``lost`` (ticks missing in both parts of the take: before the
    Stop, and from the Continue on), ``errors`` (each note-on of the first part minus its
    sixteenth of the transport's grid, seconds) and ``settled`` (True for the note-ons more than a
    beat after every gap)."""
    first = events[:stopped]
    start = next(i for i, e in enumerate(first) if e.data == b"\xfa")
    ticks = [e.frame for e in first[start:] if e.data == b"\xf8"]
    resumed = next((i for i, e in enumerate(events) if i > stopped and e.data == b"\xfb"), len(events))
    gaps = missing_ticks(ticks)
    lost = sum(n for _, n in gaps) + sum(n for _, n in missing_ticks([e.frame for e in events[resumed:]
                                                                       if e.data == b"\xf8"]))
    sixteenths, errors = onsets_on_grid(first, start)
    grid_start, tick = tick_grid(ticks)
    ons = grid_start + 6 * tick * sixteenths + errors * SAMPLE_RATE  # each note-on's frame
    settled = np.ones(len(ons), dtype=bool)
    for frame, _ in gaps:
        settled &= ~((ons >= frame) & (ons < frame + 24 * tick_frames(bpm)))
    return {"gaps": gaps, "lost": lost, "ticks": len(ticks), "errors": errors, "settled": settled}


def measure_take(checkpoint_dir, server, seconds=6.0, bpm=BPM, jitter_ms=0.0, drop=()):
    """Start, ``seconds`` of play, Stop: the recording, the Stop's index and the daemon's output."""
    clock = ClockSource(server.env, bpm, jitter_ms, drop)
    daemon = ServeProcess(checkpoint_dir, "--sync", "midi-clock", env=server.env)
    try:
        jack_connect(clock.port, CLOCK_IN)
        with MidiDump(OUT) as dump:
            dump.connect(clock.port)
            SimpleUDPClient("127.0.0.1", daemon.osc_port).send_message("/vrae/xy", [0.2, 0.8])
            clock.transport("locate 0")
            clock.transport("play")
            dump.wait_until(lambda ev: sum(e.data == b"\xf8" for e in ev) >= seconds * bpm / 60 * 24,
                            timeout=seconds * 3 + 10)
            clock.transport("stop")
            events = dump.wait_until(lambda ev: any(e.data == b"\xfc" for e in ev) and all_notes_off(ev),
                                     timeout=10)
            stopped = len(events)
            # Continue: the transport rolls on from where it stopped (song position, then Continue)
            clock.transport("play")
            dump.wait_until(lambda ev: note_ons(ev[stopped:]), timeout=20)
            clock.transport("stop")
            dump.wait_until(lambda ev: len([e for e in ev if e.data == b"\xfc"]) >= 2
                            and len(all_notes_off(ev[stopped:])) >= 1, timeout=10)
            daemon.proc.send_signal(2)
            assert daemon.wait(timeout=20) == 0, daemon.output
            events = dump.wait_until(lambda ev: len(all_notes_off(ev[stopped:])) >= 2, timeout=10)
    finally:
        daemon.kill()
        clock.close()
    return events, stopped, daemon.output
