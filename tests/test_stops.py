"""Every way `serve` stops, on a real JACK server, recorded by a separate JACK client as a DAW's
armed track would: no note is left hanging, All Notes Off arrives, and the stop is reported."""

from __future__ import annotations

import signal
import subprocess
import sys
import time

import mido
import pytest
from pythonosc.udp_client import SimpleUDPClient

from tests.jack import require_jack_tools
from vrae_live.testing.jack import JackServer, MidiDump
from vrae_live.testing.serve import ServeProcess, all_notes_off, hanging, note_ons

PORT = "vrae-live:vrae-live"
STOPS = 20
SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)


def busy_processes(count: int) -> list[subprocess.Popen]:
    return [subprocess.Popen([sys.executable, "-c", "while True: pass"]) for _ in range(count)]


@pytest.mark.jack
@pytest.mark.slow
def test_twenty_stops_in_a_row_leave_no_note_hanging(beat_checkpoint, tmp_path):
    """Ctrl-C, SIGTERM and SIGHUP in turn, every other stop beside two busy processes, some after a
    /vrae/panic: each time the last note-offs and All Notes Off reach the receiving client.

    On a JACK server without realtime priority, as in containers and on desktops outside the
    audio group, and synchronous (``-S``), so that what goes missing is the daemon's doing: an
    asynchronous one drops a late client's whole cycle under load, whatever the client does
    (docs/benchmarks.md, "Stops").
    """
    require_jack_tools()
    with JackServer(period_frames=256, name="vrae-test-stops") as server:
        _stop_twenty_times(beat_checkpoint, tmp_path, server)


def _stop_twenty_times(beat_checkpoint, tmp_path, server):
    failures = []
    for stop in range(STOPS):
        sig, loaded, panic = SIGNALS[stop % len(SIGNALS)], stop % 2 == 1, stop % 4 == 0
        take = tmp_path / f"take{stop}.mid"
        daemon = ServeProcess(beat_checkpoint, "--record", str(take), env=server.env)
        hogs = busy_processes(2) if loaded else []
        try:
            with MidiDump(PORT) as dump:
                SimpleUDPClient("127.0.0.1", daemon.osc_port).send_message("/vrae/xy", [0.2, 0.8])
                dump.wait_until(lambda events: len(note_ons(events)) >= 6, timeout=30)
                if panic:
                    SimpleUDPClient("127.0.0.1", daemon.osc_port).send_message("/vrae/panic", [])
                    dump.wait_until(lambda events: all_notes_off(events), timeout=10)
                    panicked = len(dump.events)
                    dump.wait_until(lambda events: note_ons(events[panicked:]), timeout=30)  # it plays on
                daemon.proc.send_signal(sig)
                assert daemon.wait(timeout=30) == 0, daemon.output
                # The receiver drains what reached it: the stop's All Notes Off is the last message.
                events = dump.wait_until(lambda ev: len(all_notes_off(ev)) > int(panic), timeout=10)
        finally:
            for hog in hogs:
                hog.kill()
                hog.wait()
            daemon.kill()
        if hanging(events):
            failures.append(f"stop {stop} ({signal.Signals(sig).name}, loaded={loaded}): {hanging(events)}")
        assert "stopped:" in daemon.output and f"recorded {take}" in daemon.output, daemon.output
        assert hanging(list(_file_events(take))) == set()
    assert not failures, failures


def _file_events(path):
    """The .mid file's channel messages as (status, data1, data2) bytes, like the receiver's."""
    for msg in mido.MidiFile(path).tracks[0]:
        if not msg.is_meta and hasattr(msg, "channel"):
            yield type("Event", (), {"data": bytes(msg.bytes())})


@pytest.mark.slow
@pytest.mark.jack
def test_a_lost_midi_port_ends_serve_with_its_lines(jack_server, beat_checkpoint, tmp_path):
    """serve connected to another client's port (--midi-port): that client quits, serve says so and stops."""
    take = tmp_path / "take.mid"
    dump = MidiDump(client_name="lost-target").start()
    try:
        daemon = ServeProcess(beat_checkpoint, "--midi-port", "lost-target", "--record", str(take))
        try:
            dump.wait_until(lambda events: len(note_ons(events)) >= 4, timeout=30)
            dump.stop()  # the DAW quits: its port goes
            assert daemon.wait(timeout=10) == 1, daemon.output
        finally:
            daemon.kill()
    finally:
        dump.stop()
    output = daemon.output
    assert "error: MIDI port 'lost-target:input' was lost" in output, output
    assert "stopped:" in output and f"recorded {take}" in output, output
    assert "Traceback" not in output
    assert hanging(list(_file_events(take))) == set()


@pytest.mark.slow
@pytest.mark.jack
def test_a_dead_jack_server_ends_serve_within_seconds(jack_server, beat_checkpoint, tmp_path):
    """The JACK server is killed under a playing daemon: it is noticed (not spun on), serve stops
    with one error line and a non-zero exit, and the recording is complete."""
    require_jack_tools()
    take = tmp_path / "take.mid"
    # A fixed name: a SIGKILLed server leaves its slot in JACK's registry of 8 servers, and only
    # a server of the same name takes it back, on the next run.
    with JackServer(period_frames=256, name="vrae-test-dying") as dying:
        daemon = ServeProcess(beat_checkpoint, "--record", str(take), env=dying.env)
        try:
            with MidiDump(PORT) as dump:
                dump.wait_until(lambda events: len(note_ons(events)) >= 4, timeout=30)
                killed_at = time.monotonic()
                dying.kill()
                code = daemon.wait(timeout=10)
                took = time.monotonic() - killed_at
        finally:
            daemon.kill()
    output = daemon.output
    assert code == 1, output
    print(f"serve ended {took:.2f} s after the JACK server was killed")
    assert "error: the JACK server went away" in output, output
    assert "stopped:" in output and f"recorded {take}" in output, output
    assert "Traceback" not in output
    events = list(_file_events(take))
    assert note_ons(events) and hanging(events) == set()


@pytest.mark.jack
def test_the_jack_watch_lets_periods_pass_and_sees_the_server_die(jack_server):
    from vrae_live.live.midi.jack_watch import JackWatch

    with JackServer(period_frames=256, name="vrae-test-watch") as server:
        watch = JackWatch.open("watch-test")
        assert watch is not None
        client = watch._client
        start = client.last_frame_time
        watch.settle(periods=3, cap_s=5.0)
        assert (client.last_frame_time - start) % 2**32 >= 3 * server.period_frames
        reasons = []
        watch.on_dead(reasons.append)
        server.kill()
        assert watch.dead.wait(timeout=2.0), "the shutdown callback did not fire"
        assert reasons and "went away" in reasons[0]
        began = time.monotonic()
        watch.settle(periods=3, cap_s=5.0)  # a dead server: no waiting
        assert time.monotonic() - began < 0.1
        watch.close()


@pytest.mark.jack
def test_a_killed_servers_registry_slot_is_reclaimed(jack_server):
    """JACK keeps 8 servers; a SIGKILLed one keeps its slot until a server of its name returns."""
    from vrae_live.testing.jack import reclaim_stale_servers

    server = JackServer(period_frames=1024, name="vrae-test-reclaim").start()
    server.kill()
    try:
        assert "vrae-test-reclaim" in reclaim_stale_servers()
        assert "vrae-test-reclaim" not in reclaim_stale_servers()  # freed: nothing left to reclaim
    finally:
        server.stop()
