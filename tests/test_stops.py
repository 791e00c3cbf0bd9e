"""Every way `serve` stops, on a real JACK server, recorded by a separate JACK client as a DAW's
armed track would: no note is left hanging, All Notes Off arrives, and the stop is reported."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time

import mido
import pytest
from pythonosc.udp_client import SimpleUDPClient

from tests.conftest import write_motif_songs
from tests.jack import require_jack_tools
from vrae_live.config import load_config
from vrae_live.data.corpus import prepare_data
from vrae_live.testing.jack import JackServer, MidiDump
from vrae_live.training.trainer import Trainer

PORT = "vrae-live:vrae-live"
STOPS = 20
SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)


@pytest.fixture(scope="module")
def checkpoint_dir(tmp_path_factory):
    """A small beat-based model, quick to start and to decode."""
    songs = write_motif_songs(tmp_path_factory.mktemp("songs"), count=4, seconds=8.0)
    config = load_config("live-2d", {"epochs": 2, "hidden": 32, "window": 16, "hop": 8, "batch_size": 8, "seed": 0})
    data = prepare_data(songs, config.data, seed=0, batch_size=config.train.batch_size)
    out = tmp_path_factory.mktemp("run")
    Trainer(config, data, out).fit()
    return out


class Daemon:
    """`vrae-live serve` in a subprocess, its output read by a thread."""

    def __init__(self, checkpoint_dir, *args: str, env=None):
        command = [sys.executable, "-m", "vrae_live", "serve", "--checkpoint", str(checkpoint_dir), "--host",
                   "127.0.0.1", "--port", "0", "--midi-api", "jack", "--bpm", "240", *args]
        self.proc = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                                     env={**(env or os.environ), "PYTHONUNBUFFERED": "1"})
        self.lines: list[str] = []
        for line in self.proc.stdout:
            self.lines.append(line)
            if line.strip() == "ready":
                break
        else:
            raise AssertionError("serve did not start:\n" + self.output)
        self._reader = threading.Thread(target=lambda: self.lines.extend(self.proc.stdout), daemon=True)
        self._reader.start()
        self.osc_port = int(next(l for l in self.lines if "OSC in: send to" in l).rsplit(":", 1)[1].split(",")[0])

    @property
    def output(self) -> str:
        return "".join(self.lines)

    def wait(self, timeout: float) -> int:
        code = self.proc.wait(timeout)
        self._reader.join(5)
        return code

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()


def note_ons(events):
    return [e for e in events if e.data[0] & 0xF0 == 0x90 and e.data[2] > 0]


def all_notes_off(events):
    return [e for e in events if e.data[0] & 0xF0 == 0xB0 and e.data[1] == 123]


def hanging(events) -> set[tuple[int, int]]:
    sounding = set()
    for e in events:
        kind, key = e.data[0] & 0xF0, (e.data[0] & 0x0F, e.data[1])
        if kind == 0x90 and e.data[2] > 0:
            sounding.add(key)
        elif kind in (0x80, 0x90):
            sounding.discard(key)
    return sounding


def busy_processes(count: int) -> list[subprocess.Popen]:
    return [subprocess.Popen([sys.executable, "-c", "while True: pass"]) for _ in range(count)]


@pytest.mark.jack
@pytest.mark.slow
def test_twenty_stops_in_a_row_leave_no_note_hanging(checkpoint_dir, tmp_path):
    """Ctrl-C, SIGTERM and SIGHUP in turn, every other stop beside two busy processes, some after a
    /vrae/panic: each time the last note-offs and All Notes Off reach the receiving client.

    On the JACK a desktop user has: asynchronous and without realtime priority, where a client
    late for a cycle loses that cycle's MIDI (the test fixture's server is synchronous, kinder).
    """
    require_jack_tools()
    with JackServer(period_frames=256, name="vrae-test-async", synchronous=False) as server:
        _stop_twenty_times(checkpoint_dir, tmp_path, server)


def _stop_twenty_times(checkpoint_dir, tmp_path, server):
    failures = []
    for stop in range(STOPS):
        sig, loaded, panic = SIGNALS[stop % len(SIGNALS)], stop % 2 == 1, stop % 4 == 0
        take = tmp_path / f"take{stop}.mid"
        daemon = Daemon(checkpoint_dir, "--record", str(take), env=server.env)
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


@pytest.mark.jack
def test_a_lost_midi_port_ends_serve_with_its_lines(jack_server, checkpoint_dir, tmp_path):
    """serve connected to another client's port (--midi-port): that client quits, serve says so and stops."""
    take = tmp_path / "take.mid"
    dump = MidiDump(client_name="lost-target").start()
    try:
        daemon = Daemon(checkpoint_dir, "--midi-port", "lost-target", "--record", str(take))
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


@pytest.mark.jack
def test_a_dead_jack_server_ends_serve_within_seconds(jack_server, checkpoint_dir, tmp_path):
    """The JACK server is killed under a playing daemon: it is noticed (not spun on), serve stops
    with one error line and a non-zero exit, and the recording is complete."""
    require_jack_tools()
    take = tmp_path / "take.mid"
    # A fixed name: a SIGKILLed server leaves its slot in JACK's registry of 8 servers, and only
    # a server of the same name takes it back, on the next run.
    with JackServer(period_frames=256, name="vrae-test-dying") as dying:
        daemon = Daemon(checkpoint_dir, "--record", str(take), env=dying.env)
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
