"""The MIDI clock follower on fake time: alone, and as the clock of a Performer playing into memory."""

from __future__ import annotations

import numpy as np
import pytest

from tests.performing import assert_nothing_hangs
from vrae_live.checkpoint import load_checkpoint
from vrae_live.errors import ConfigError
from vrae_live.live.controls import Controls
from vrae_live.live.sync.midi_clock import ArrivalStamper, MidiClockFollower, ticks_per_frame
from vrae_live.live.web.status import LiveStatus
from vrae_live.play.performer import PerformanceSettings, Performer
from vrae_live.play.sink import MemorySink
from vrae_live.testing.fake_time import FakeTime
from vrae_live.testing.synthetic_clock import FakeMidiInput, clock_messages, jittered, tick_times

PERIOD = 60 / (120 * 24)


def follower_on(messages, steps_per_beat=4, frame_period_s=0.125, start=0.0):
    fake = FakeTime(start)
    follower = MidiClockFollower(steps_per_beat, frame_period_s, now=fake.now, spin_s=0.0)
    follower._pause = FakeMidiInput(fake, follower, messages).pause
    return fake, follower


def frames(follower, fake, count):
    out = []
    for _ in range(count):
        tick = follower.wait()
        if follower._woken.is_set():
            break
        out.append((tick.index, fake.t))
    return out


def test_steps_per_beat_must_divide_24():
    assert ticks_per_frame(4) == 6 and ticks_per_frame(8) == 3 and ticks_per_frame(24) == 1
    with pytest.raises(ConfigError, match="divide 24"):
        ticks_per_frame(5)


def test_frames_fall_on_every_sixth_tick_from_the_first_tick_after_start():
    times = tick_times([120] * 600, start=1.0)
    fake, follower = follower_on(clock_messages(times, start_at=24))
    played = frames(follower, fake, 80)
    assert [index for index, _ in played] == list(range(80))
    due = times[24::6][:80]
    assert np.max(np.abs(np.array([t for _, t in played]) - due)) < 1e-6
    assert follower.period_s == pytest.approx(6 * PERIOD)


def test_without_ticks_before_start_frame_zero_plays_on_the_first_tick():
    times = tick_times([100] * 300, start=2.0)
    messages = [(t, d) for t, d in clock_messages(times, start_at=0)]
    fake, follower = follower_on(messages)
    played = frames(follower, fake, 20)
    assert played[0] == (0, times[0])
    assert np.max(np.abs(np.array([t for _, t in played[2:]]) - times[12::6][:18])) < 1e-6


def test_jittered_clock_frames_within_a_millisecond():
    times = tick_times([120] * 2400)
    fake, follower = follower_on(clock_messages(jittered(times, 0.0015, 3), start_at=48))
    played = frames(follower, fake, 300)
    errors = np.array([t for _, t in played]) - times[48::6][:300]
    assert np.percentile(np.abs(errors[8:]), 99) <= 0.001


def test_stop_silences_at_once_and_continue_resumes_from_the_position():
    times = tick_times([120] * 600)
    fake, follower = follower_on(clock_messages(times, start_at=0, stop_at=100, continue_at=200))
    stops = []
    follower.on_stop = lambda why: stops.append((why, fake.t))
    played = frames(follower, fake, 40)
    indexes = [i for i, _ in played]
    assert indexes == list(range(40))
    assert stops == [("stop", pytest.approx(times[100] + 0.001))]
    before = [t for i, t in played if t < times[150]]
    assert len(before) == 17  # frames 0..16 on ticks 0..96; tick 100 then Stop
    # Continue: tick 200 is position 101; frame 17 (position 102) on the second tick after it
    assert played[17][1] == pytest.approx(times[201])
    assert played[18][1] == pytest.approx(times[207])


def test_a_stop_queued_while_the_frame_is_spun_for_takes_that_frame_back():
    # The DAW stops a millisecond before the tick of frame 17 (tick 102), inside the last 2 ms
    # the follower spins for, and the input's thread queues it then: frame 17 is not played
    # after the Stop, and Continue plays it.
    times = tick_times([120] * 600)
    messages = [(t, d) for t, d in clock_messages(times, start_at=0, continue_at=200) if t < times[102] - 0.0005
                or t > times[102]]
    messages = sorted(messages + [(times[102] - 0.001, b"\xfc")], key=lambda m: m[0])
    fake = FakeTime(0.0, per_call=1e-4)  # the spin reads the time: each read moves it on
    follower = MidiClockFollower(4, 0.125, spin_s=0.002, now=lambda: (fake.now(), midi.pause(0.0))[0])
    midi = FakeMidiInput(fake, follower, messages)  # pause(0): what is due by now reaches the inbox
    follower._pause = midi.pause
    stops = []
    follower.on_stop = lambda why: stops.append((why, fake.t))
    played = frames(follower, fake, 20)
    assert stops == [("stop", pytest.approx(times[102] - 0.001, abs=2e-4))]
    assert [i for i, _ in played] == list(range(20))
    assert all(t < stops[0][1] or t > times[199] for _, t in played), played
    assert played[17][1] > times[200]  # frame 17 on Continue


def test_song_position_pointer_moves_the_frames():
    times = tick_times([120] * 300)
    messages = clock_messages(times, start_at=None)
    messages += [(times[10] - 0.002, bytes([0xF2, 32, 0])), (times[10] - 0.001, b"\xfb")]  # bar 3, continue
    fake, follower = follower_on(sorted(messages, key=lambda m: m[0]))
    played = frames(follower, fake, 5)
    assert [i for i, _ in played] == [32, 33, 34, 35, 36]
    assert played[0][1] == pytest.approx(times[10])


def test_a_clock_that_stops_arriving_stops_the_notes_and_its_return_resumes():
    times = tick_times([120] * 200)
    ticks = [(t, d) for t, d in clock_messages(times, start_at=0) if not (60 < t / PERIOD < 120)]
    fake, follower = follower_on(ticks)
    stops = []
    follower.on_stop = lambda why: stops.append((why, fake.t))
    played = frames(follower, fake, 20)
    assert stops and stops[0][0] == "clock lost"
    assert stops[0][1] == pytest.approx(times[60] + 3.5 * PERIOD, abs=2e-4)
    assert [i for i, _ in played[:11]] == list(range(11))
    assert all(t >= times[121] - 1e-9 for _, t in played[11:])


def test_an_fs_model_follows_the_transport_at_its_own_rate():
    times = tick_times([90] * 400)
    fake, follower = follower_on(clock_messages(times, start_at=10, stop_at=200, continue_at=300),
                                 steps_per_beat=None, frame_period_s=0.05)
    stops = []
    follower.on_stop = lambda why: stops.append(fake.t)
    played = frames(follower, fake, 200)
    t0 = times[10]
    first = [t for _, t in played if t < times[200]]
    assert np.allclose(first, t0 + 0.05 * np.arange(len(first)))
    resumed = [t for _, t in played if t > times[200]]
    assert resumed[0] == pytest.approx(times[300]) and np.allclose(np.diff(resumed), 0.05)


def test_the_arrival_stamper_takes_out_late_callbacks():
    stamper = ArrivalStamper()
    true = np.arange(100) * 0.02 + 5.0
    delays = np.random.default_rng(0).choice([0.0, 0.004], size=100, p=[0.7, 0.3])
    stamps = [stamper.stamp(0.0 if i == 0 else 0.02, t + d) for i, (t, d) in enumerate(zip(true, delays))]
    assert np.max(np.abs(np.array(stamps[5:]) - true[5:])) < 5e-5


@pytest.fixture(scope="module")
def checkpoint(beat_checkpoint):
    """The small beat-based model (4 steps per beat) of tests/conftest.py, loaded."""
    return load_checkpoint(beat_checkpoint)


def perform_on_clock(ckpt, messages, count):
    fake = FakeTime(0.0)
    sink = MemorySink(clock=fake.now)
    follower = MidiClockFollower(ckpt.timing.steps_per_beat, ckpt.timing.frame_seconds(), now=fake.now, spin_s=0.0)
    follower._pause = FakeMidiInput(fake, follower, messages).pause
    performer = Performer(ckpt, Controls(latent_size=ckpt.config.model.latent), sink,
                          PerformanceSettings(seed=0), clock=follower)
    stats = performer.run(max_frames=count)
    return sink, stats, performer


def test_a_performer_on_the_clock_plays_on_its_sixteenths_and_stop_leaves_nothing_sounding(checkpoint):
    assert checkpoint.timing.beat_based
    times = tick_times([110] * 1200, start=0.5)
    sink, stats, performer = perform_on_clock(checkpoint, clock_messages(times, start_at=24, stop_at=400,
                                                                         continue_at=600), 150)
    # Ticks 24..400 are positions 0..376; Stop keeps 377, Continue makes tick 600 position 377,
    # so the next sixteenth (378) is tick 601. (The sink counts from fake time 0.)
    grid = np.concatenate([times[24:401:6], times[601::6]])
    ons = [t for t, m in sink.timed if m.type == "note_on" and m.velocity > 0]
    assert ons, "nothing played"
    assert min(np.min(np.abs(grid - t)) for t in ons) < 1e-9
    assert max(np.min(np.abs(grid - t)) for t in ons) < 1e-6
    # Stop: at its arrival every note off and All Notes Off; nothing on until Continue's ticks
    stop_t = times[400] + 0.001
    at_stop = [m for t, m in sink.timed if abs(t - stop_t) < 1e-9]
    assert at_stop and at_stop[-1].type == "control_change" and at_stop[-1].control == 123
    messages_before = [m for t, m in sink.timed if t <= stop_t + 1e-9]
    sounding = set()
    for m in messages_before:
        if m.type == "note_on" and m.velocity > 0:
            sounding.add(m.note)
        elif m.type in ("note_on", "note_off"):
            sounding.discard(m.note)
    assert not sounding
    assert not [t for t in ons if stop_t < t < times[600]]
    assert [t for t in ons if t > times[600]], "Continue did not resume"
    assert stats.panics == 0
    assert_nothing_hangs(sink.messages)


def test_stop_of_the_performer_wakes_a_follower_waiting_for_start(checkpoint):
    import threading

    follower = MidiClockFollower(4, 0.125)
    performer = Performer(checkpoint, Controls(latent_size=checkpoint.config.model.latent), MemorySink(),
                          clock=follower)
    thread = threading.Thread(target=performer.run)
    thread.start()
    performer.stop("test")
    thread.join(timeout=2)
    assert not thread.is_alive()
    assert performer.stats.frames == 0


def test_a_performer_on_a_clock_that_loses_ticks_stays_on_its_sixteenths_and_says_so(checkpoint):
    times = tick_times([110] * 1200, start=0.5)
    lost = {100, 211, 463}
    messages = [m for i, m in enumerate(clock_messages(times, start_at=0)) if i - 1 not in lost]  # Start is first
    sink, stats, performer = perform_on_clock(checkpoint, messages, 150)
    ons = [t for t, m in sink.timed if m.type == "note_on" and m.velocity > 0]
    assert ons and max(np.min(np.abs(times[::6] - t)) for t in ons) < 1e-6
    assert stats.line().endswith("0 panics; 3 clock ticks lost, recovered")
    status = LiveStatus(performer, "midi-clock", 110)()
    assert status["clock"] == "3 clock ticks lost, recovered" and status["sync"] == "midi-clock"
