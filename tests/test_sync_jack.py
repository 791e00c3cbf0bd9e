"""`serve --sync midi-clock` end to end on a real JACK server: Debian's `jack_midi_clock` sends
MIDI beat clock from the JACK transport to serve's clock input, `jack_transport` starts and stops
it, and one `jack_midi_dump` records the clock and serve's notes in the same JACK frame time."""

from __future__ import annotations

import shutil
import subprocess

import numpy as np
import pytest
from pythonosc.udp_client import SimpleUDPClient

from tests.jack import require_jack_tools
from tests.test_stops import Daemon, all_notes_off, checkpoint_dir, hanging, note_ons  # noqa: F401 - a fixture
from vrae_live.testing.jack import JackServer, MidiDump, die_with_parent, jack_connect, jack_ports, poll, stop_process

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


def require_midi_clock_tools():
    require_jack_tools()
    if shutil.which("jack_midi_clock") is None or shutil.which("jack_transport") is None:
        import os

        message = "jack_midi_clock not found (Debian: apt install jack-midi-clock)"
        if os.environ.get("CI"):
            pytest.fail(message + "; CI is set, so this is an error, not a skip")
        pytest.skip(message)


def channel_messages(events):
    return [e for e in events if e.data[0] < 0xF0]


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
    daemon = Daemon(checkpoint_dir, "--sync", "midi-clock", env=server.env)
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


@pytest.mark.jack
@pytest.mark.slow
def test_serve_plays_on_the_clocks_sixteenths_starts_on_the_bar_and_stops_within_a_tick(checkpoint_dir):
    require_midi_clock_tools()
    # A fixed name: a SIGKILLed server leaks its slot in JACK's registry; the next run reclaims it.
    # Realtime (-R) where permitted: without it the dummy driver's cycles wander off wall time by
    # milliseconds, and the clock's ticks with them.
    with JackServer(period_frames=64, name="vrae-test-midi-clock", realtime=True) as server:
        events, stopped, output = measure_take(checkpoint_dir, server)
    assert "MIDI clock in: send the DAW's clock to vrae-live clock (jack)" in output, output
    first = [e for e in events[:stopped]]
    start = next(i for i, e in enumerate(first) if e.data == b"\xfa")
    errors = onset_errors_s(first, start)
    assert len(errors) >= 10, output
    p50, p90, p99 = np.percentile(np.abs(errors), [50, 90, 99])
    print(f"onset error against the clock's sixteenths: p50 {1000 * p50:.2f} ms, p90 {1000 * p90:.2f} ms, "
          f"p99 {1000 * p99:.2f} ms, signed median {1000 * np.median(errors):+.2f} ms, {len(errors)} note-ons")
    # JACK hands MIDI on at period boundaries (1.3 ms) on the way in and on the way out: most
    # note-ons land 0.7-1.3 ms after their tick. The dummy driver on a shared 2-core VM stalls now
    # and then (a 34 ms cycle; once in a while over 75 ms, which serve takes for a lost clock), and
    # the ticks after a stall come late in wall time: a few notes 2-4 ms early. Hence p90, not p99.
    assert p50 <= 0.0015 and p90 <= 0.002 and p99 <= 0.005, errors
    # Stop: the clock's Stop, then within a tick every note off and All Notes Off, and nothing after it
    stop_frame = next(e.frame for e in first if e.data == b"\xfc")
    silenced = [e for e in first if e.frame >= stop_frame and e.data[0] & 0xF0 in (0x80, 0x90, 0xB0)]
    assert silenced and max(e.frame for e in silenced) - stop_frame <= TICK_FRAMES, silenced
    assert not note_ons([e for e in first if e.frame > stop_frame])
    assert hanging(channel_messages(first)) == set()
    # Continue: notes again, on the grid of the ticks after it; nothing hangs at the end
    assert note_ons(events[stopped:])
    assert hanging(channel_messages(events)) == set()
