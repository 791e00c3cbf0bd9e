"""The --record writer: incremental flushes off the sender's thread, and a file valid after any stop."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time

import mido
import pytest

from tests.performing import assert_nothing_hangs
from vrae_live.play.smf import MidiFileRecorder

WAIT = 20.0  # seconds; generous, only reached when something is broken


class FakeClock:
    def __init__(self, t: float = 50.0) -> None:
        self.t = t

    def __call__(self) -> float:
        return self.t


def timed_notes(path) -> list[tuple[str, int, int, float]]:
    """(type, channel, note, seconds from the start) of every note message in a file."""
    t, notes = 0.0, []
    for msg in mido.MidiFile(path):
        t += msg.time
        if msg.type in ("note_on", "note_off"):
            kind = "note_off" if msg.type == "note_off" or msg.velocity == 0 else "note_on"
            notes.append((kind, msg.channel, msg.note, t))
    return notes


def test_the_file_is_complete_after_every_flush_while_the_recorder_is_open(tmp_path):
    clock = FakeClock()
    path = tmp_path / "take.mid"
    rec = MidiFileRecorder(path, bpm=90, clock=clock, autosave_s=None)
    tick = 60 / (90 * 960)
    for k in range(30):  # two overlapping voices: each note lasts 0.3 s, a new one every 0.2 s
        clock.t = 50.0 + 0.2 * k
        if k >= 2:
            rec.note_off(40 + k - 2, channel=k % 2)
        rec.note_on(40 + k, 100, channel=k % 2)
        if k % 7 == 3:
            rec.flush()
            # read while the recorder is open, as after a crash at this moment
            notes = timed_notes(path)
            ons = [n for n in notes if n[0] == "note_on"]
            assert [n[2] for n in ons] == list(range(40, 41 + k))
            assert [n[3] for n in ons] == pytest.approx([0.2 * j for j in range(k + 1)], abs=tick)
            trailer = notes[-2:]  # the two notes sounding, switched off at the last event
            assert {n[2] for n in trailer} == {40 + k - 1, 40 + k} and all(n[0] == "note_off" for n in trailer)
            assert [n[3] for n in trailer] == pytest.approx([0.2 * k] * 2, abs=tick)
            assert_nothing_hangs(mido.MidiFile(path).tracks[0])
    rec.close()
    notes = timed_notes(path)
    assert len([n for n in notes if n[0] == "note_on"]) == 30
    assert_nothing_hangs(mido.MidiFile(path).tracks[0])
    assert mido.MidiFile(path).tracks[0][-1].type == "end_of_track"


def test_a_flush_writes_only_what_came_since_the_last_one(tmp_path):
    clock = FakeClock()
    path = tmp_path / "long.mid"
    rec = MidiFileRecorder(path, clock=clock, autosave_s=None)

    def play(notes: int) -> None:
        for _ in range(notes):
            clock.t += 0.1
            rec.note_on(60)
            clock.t += 0.05
            rec.note_off(60)

    play(2000)
    rec.flush()
    before, written = path.read_bytes(), rec.bytes_written
    assert len(before) > 10_000
    play(10)
    rec.flush()
    after = path.read_bytes()
    end_of_track = 4  # nothing sounds: the trailer is End of Track alone, written over by the new events
    assert after[:18] == before[:18] and after[22:len(before) - end_of_track] == before[22:-end_of_track], \
        "the events already written are untouched"
    flushed = rec.bytes_written - written
    per_event = 5  # bytes: a delta of at most 2 and a 3-byte message
    assert flushed <= 20 * per_event + end_of_track + 4, "a flush writes the new events, the trailer and the length"
    assert len(after) == len(before) - end_of_track + flushed - 4, "each byte is written once, but the length's 4"
    rec.close()


def test_flushing_happens_on_the_recorders_thread_not_the_senders(tmp_path):
    path = tmp_path / "threaded.mid"
    rec = MidiFileRecorder(path, autosave_s=0.01)
    written = rec.bytes_written
    flushes = rec.flushes
    rec.note_on(60)
    rec.note_off(60)
    assert rec.bytes_written == written, "send() only queues; it writes nothing"
    deadline = time.monotonic() + WAIT
    while rec.flushes == flushes and time.monotonic() < deadline:
        time.sleep(0.005)
    assert [n[0] for n in timed_notes(path)] == ["note_on", "note_off"]  # nobody called flush()
    rec.close()


def test_a_busy_sender_and_frequent_flushes_leave_a_complete_file(tmp_path):
    path = tmp_path / "busy.mid"
    rec = MidiFileRecorder(path, autosave_s=0.001)
    reads = []

    def read_while_recording() -> None:
        while not rec.closed:
            try:
                reads.append(len(mido.MidiFile(path).tracks[0]))
            except (OSError, EOFError, ValueError, KeyError, IndexError):  # caught in a flush's two writes
                pass

    reader = threading.Thread(target=read_while_recording)
    reader.start()
    for k in range(3000):
        rec.note_on(30 + k % 60, channel=k % 3)
        if k % 4 == 3:
            for j in range(k - 3, k + 1):
                rec.note_off(30 + j % 60, channel=j % 3)
    rec.close()
    reader.join(WAIT)
    messages = list(mido.MidiFile(path).tracks[0])
    assert sum(m.type == "note_on" and m.velocity > 0 for m in messages) == 3000
    assert_nothing_hangs(messages)
    assert reads and rec.flushes > 1


@pytest.mark.slow
def test_serve_record_survives_sigkill(tmp_path):
    """`serve --demo --no-midi --record`, killed outright: the take up to the last flush, every note ended."""
    take = tmp_path / "killed.mid"
    command = [sys.executable, "-m", "vrae_live", "serve", "--demo", "--no-midi", "--record", str(take),
               "--host", "127.0.0.1", "--port", "0", "--allow", "127.0.0.2", "--no-realtime", "--web-port", "0"]
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    proc = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env)
    lines = []
    try:
        for line in proc.stdout:
            lines.append(line)
            if "ready" in line:
                break
        assert "OSC in: obeys only 127.0.0.2/32\n" in lines, "".join(lines)
        started = time.monotonic()
        ons = 0
        while ons < 8 and time.monotonic() - started < WAIT:  # a periodic flush (every 2 s) with notes in it
            time.sleep(0.2)
            try:
                ons = sum(m.type == "note_on" and m.velocity > 0 for m in mido.MidiFile(take))
            except (OSError, EOFError, ValueError, KeyError, IndexError):
                pass  # read in the middle of a flush; the next read will do
        proc.send_signal(signal.SIGKILL)
        proc.wait(WAIT)
        played_s = time.monotonic() - started
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == -signal.SIGKILL
    midi = mido.MidiFile(take)
    messages = list(midi.tracks[0])
    assert sum(m.type == "note_on" and m.velocity > 0 for m in messages) >= 8, "".join(lines)
    assert_nothing_hangs(messages)
    assert messages[-1].type == "end_of_track"
    assert 0 < midi.length < played_s + 5, "times are seconds of performance"  # + 5: model loading before ready
