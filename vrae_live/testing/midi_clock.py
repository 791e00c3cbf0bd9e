"""A take of `vrae-live serve --sync midi-clock` under Debian's `jack_midi_clock` (a MIDI beat
clock from the JACK transport, moved with `jack_transport`), recorded with the clock in one
`jack_midi_dump`: for the end-to-end test and the benchmark."""

from __future__ import annotations

import subprocess

import numpy as np
from pythonosc.udp_client import SimpleUDPClient

from .jack import MidiDump, die_with_parent, jack_connect, jack_ports, poll, stop_process
from .serve import ServeProcess, all_notes_off, note_ons


CLOCK_OUT = "jack_midi_clock:mclk_out"
CLOCK_IN = "vrae-live clock:vrae-live clock"
OUT = "vrae-live:vrae-live"
BPM = 100
TICK_FRAMES = 48_000 * 60 / (BPM * 24)  # 1200 frames, 25 ms


class ClockSource:
    """``jack_midi_clock`` at a fixed tempo, moved by the JACK transport."""

    def __init__(self, env, bpm=BPM, jitter_percent=0):
        self.env = env
        args = ["jack_midi_clock", "-b", str(bpm), "-B", "-d", "0"] + (["-J", str(jitter_percent)] if jitter_percent else [])
        self.proc = subprocess.Popen(args, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                                     preexec_fn=die_with_parent)
        poll(lambda: CLOCK_OUT in jack_ports(), timeout=10, what=CLOCK_OUT)

    def transport(self, command: str) -> None:
        subprocess.run(["jack_transport"], input=f"{command}\n", env=self.env, capture_output=True, text=True, timeout=10,
                       check=True)

    def close(self) -> None:
        stop_process(self.proc)


def onset_errors_s(events, start_index=0):
    """Each of serve's note-ons minus the nearest sixteenth (every 6th tick from the first tick after
    the Start at or after ``start_index``), in seconds, with the ticks' own frame times as the grid."""
    ticks = [e for e in events[start_index:] if e.data == b"\xf8"]
    grid = np.array([e.frame for e in ticks[::6]], dtype=np.float64)
    ons = np.array([e.frame for e in note_ons(events[start_index:])], dtype=np.float64)
    ons = ons[(ons >= grid[0] - TICK_FRAMES) & (ons <= grid[-1] + TICK_FRAMES)]
    nearest = grid[np.abs(ons[:, None] - grid[None, :]).argmin(axis=1)]
    return (ons - nearest) / 48_000


def measure_take(checkpoint_dir, server, seconds=6.0, jitter_percent=0):
    """Start, ``seconds`` of play, Stop: the recording, the Stop's index and the daemon's output."""
    clock = ClockSource(server.env, jitter_percent=jitter_percent)
    daemon = ServeProcess(checkpoint_dir, "--sync", "midi-clock", env=server.env)
    try:
        jack_connect(CLOCK_OUT, CLOCK_IN)
        with MidiDump(OUT) as dump:
            dump.connect(CLOCK_OUT)
            SimpleUDPClient("127.0.0.1", daemon.osc_port).send_message("/vrae/xy", [0.2, 0.8])
            clock.transport("locate 0")
            clock.transport("play")
            dump.wait_until(lambda ev: sum(e.data == b"\xf8" for e in ev) >= seconds * BPM / 60 * 24,
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
