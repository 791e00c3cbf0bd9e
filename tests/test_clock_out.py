"""MIDI clock out (--send-clock) on fake time: 24 ticks a beat on the frame clock's deadlines,
Start before the first tick, Stop after the last note-off, nothing in the recording."""

from __future__ import annotations

from fractions import Fraction

import mido
import pytest

from vrae_live.checkpoint import load_checkpoint
from vrae_live.config import default_checkpoint
from vrae_live.live.controls import Controls
from vrae_live.live.sync.clock_out import ClockSender, frames_per_tick
from vrae_live.play.clock import FrameClock
from vrae_live.play.performer import Performer
from vrae_live.play.sink import MemorySink
from vrae_live.play.smf import MidiFileRecorder
from vrae_live.testing.fake_time import FakeTime

SIXTEENTH_120 = 60 / (120 * 4)  # 125 ms


def drive(frames: int, period: float = SIXTEENTH_120, per_frame=Fraction(1, 6), work: float = 0.0, fake=None,
          overshoot=lambda: 0.0):
    """The performer's loop without a model: frame ticks, the clock ticks between them."""
    fake = fake or FakeTime(start=100.0, overshoot=overshoot)
    clock = FrameClock(period, now=fake.now, sleep=fake.sleep, spin_s=0)
    sink = MemorySink(clock=fake.now)
    sender = ClockSender(sink, clock, per_frame, now=fake.now, sleep=fake.sleep, spin_s=0)
    clock.start()
    for _ in range(frames):
        tick = clock.wait()
        sender.at_frame(tick.index)
        sink.send(mido.Message("note_on", note=60 + tick.index % 12, velocity=90))
        fake.work(work)  # decoding
        sender.until_next(tick.index)
    sender.stop()
    return sink, sender, clock


def times_of(sink, kind):
    return [t for t, m in sink.timed if m.type == kind]


def test_six_clock_ticks_per_sixteenth_on_their_deadlines_without_drift():
    frames = 10_000  # 21 minutes at 120 bpm
    sink, sender, _ = drive(frames)
    ticks = times_of(sink, "clock")
    assert len(ticks) == 6 * frames
    step = SIXTEENTH_120 / 6
    assert max(abs(t - i * step) for i, t in enumerate(ticks)) < 1e-9
    assert sender.lateness.max == 0


def test_tick_zero_of_a_frame_goes_before_the_frames_notes_and_start_before_everything():
    sink, *_ = drive(4)
    types = [m.type for _, m in sink.timed]
    assert types[:3] == ["start", "clock", "note_on"]
    assert types[3:8] == ["clock"] * 5 and types[8:10] == ["clock", "note_on"]
    assert types[-1] == "stop" and types.count("start") == 1 and types.count("stop") == 1


def test_a_decode_longer_than_a_clock_tick_makes_those_ticks_late_not_the_frame():
    sink, sender, clock = drive(16, work=0.050)  # 50 ms of decoding after every frame
    ticks = times_of(sink, "clock")
    assert len(ticks) == 96
    assert clock.lateness.max == 0  # the frame ticks: on time
    assert sender.lateness.max == pytest.approx(0.050 - SIXTEENTH_120 / 6)  # tick 1 waited for the decode
    assert ticks[6] == pytest.approx(SIXTEENTH_120)  # and the next frame's tick is on time again


def test_sleep_overshoot_is_not_added_up():
    sink, *_ = drive(2000, overshoot=lambda: 0.0004)  # every sleep wakes 0.4 ms late (spin_s=0)
    ticks = times_of(sink, "clock")
    step = SIXTEENTH_120 / 6
    assert max(t - i * step for i, t in enumerate(ticks)) <= 0.0004 + 1e-9


def test_a_model_in_seconds_gets_a_clock_at_bpm_anchored_on_frame_zero():
    per_frame = frames_per_tick(bpm=120, fs=20)  # 20 fps, 120 bpm: a tick is 5/12 of a frame
    assert per_frame == Fraction(5, 12)
    sink, *_ = drive(240, period=1 / 20, per_frame=per_frame)  # 12 s: 24 beats
    ticks = times_of(sink, "clock")
    assert len(ticks) == 24 * 24 - 0  # ticks at 0 .. 11.979 s
    assert max(abs(t - i * 60 / (120 * 24)) for i, t in enumerate(ticks)) < 1e-9


def test_frames_per_tick_of_a_beat_grid_is_exact():
    assert frames_per_tick(bpm=97.3, steps_per_beat=4) == Fraction(1, 6)
    assert frames_per_tick(bpm=120, steps_per_beat=3) == Fraction(1, 8)
    with pytest.raises(ValueError):
        frames_per_tick(bpm=120)


def test_the_recording_holds_no_clock_messages(tmp_path):
    path = tmp_path / "take.mid"
    recorder = MidiFileRecorder(path, autosave_s=None)
    for message in ("start", "clock", "clock", "stop"):
        recorder.send(mido.Message(message))
    recorder.note_on(60)
    recorder.close()
    kinds = [m.type for m in mido.MidiFile(path).tracks[0] if not m.is_meta]
    assert set(kinds) <= {"note_on", "note_off", "control_change"} and "note_on" in kinds


def test_the_performer_sends_start_clock_and_stop_after_the_last_note_off():
    ckpt = load_checkpoint(default_checkpoint())
    fake = FakeTime()
    sink = MemorySink(clock=fake.now)
    clock = FrameClock(ckpt.timing.frame_seconds(), now=fake.now, sleep=fake.sleep, spin_s=0)
    sender = ClockSender(sink, clock, Fraction(1, 6), now=fake.now, sleep=fake.sleep, spin_s=0)
    performer = Performer(ckpt, Controls(latent_size=ckpt.config.model.latent), sink, clock=clock, clock_out=sender)
    stats = performer.run(max_frames=64)
    messages = sink.messages
    kinds = [m.type for m in messages]
    assert kinds[0] == "start" and kinds[1] == "clock"
    assert kinds.count("clock") == 64 * 6 - 5  # the last frame's other 5 ticks: the take ends on its tick
    stop = kinds.index("stop")
    offs = [i for i, m in enumerate(messages) if m.type == "note_off" or (m.type == "note_on" and m.velocity == 0)]
    assert offs and stop > max(offs) and kinds.count("stop") == 1
    assert [m.type for m in messages[stop + 1:]] == ["control_change"] * len(messages[stop + 1:])  # close's CC 123
    assert stats.panics == 0 and stats.notes_on > 0
