"""The MIDI clock's delay-locked loop on synthetic clocks, in no real time."""

from __future__ import annotations

import numpy as np
import pytest

from vrae_live.live.sync.dll import TICKS_PER_BEAT, ClockDLL
from vrae_live.testing.synthetic_clock import jittered, predictions, tick_times, ticks_to_lock

PERIOD_120 = 60 / (120 * TICKS_PER_BEAT)
FRAMES = slice(48, None, 6)  # every sixteenth (a frame) after the first two beats


def frame_errors(true, arrivals, dll=None):
    return (predictions(arrivals, dll) - true)[FRAMES]


def test_a_clean_clock_is_predicted_exactly():
    true = tick_times([120] * 2000, start=5.0)
    errors = frame_errors(true, true)
    assert np.max(np.abs(errors)) < 1e-6


def test_a_clean_clock_at_another_tempo_than_assumed_locks_from_the_second_tick():
    true = tick_times([93] * 500)
    errors = predictions(true, ClockDLL(PERIOD_120)) - true
    assert np.max(np.abs(errors[2:])) < 1e-6


@pytest.mark.parametrize("seed", range(5))
def test_3_ms_of_jitter_stays_under_1_ms_at_p99(seed):
    true = tick_times([120] * 4800)  # 50 bars
    errors = frame_errors(true, jittered(true, 0.0015, seed))
    assert np.percentile(np.abs(errors), 99) <= 0.001
    # +-3 ms (6 ms peak to peak) still comes out under 1.5 ms
    errors = frame_errors(true, jittered(true, 0.003, seed))
    assert np.percentile(np.abs(errors), 99) <= 0.0015


@pytest.mark.parametrize("seed", range(3))
def test_a_jump_from_120_to_90_bpm_is_locked_within_a_beat(seed):
    true = tick_times([120] * 960 + [90] * 480)
    assert ticks_to_lock(predictions(true) - true, 960, 0.001) <= TICKS_PER_BEAT
    noisy = predictions(jittered(true, 0.0015, seed)) - true
    assert ticks_to_lock(noisy, 960, 0.002) <= TICKS_PER_BEAT


def test_a_ramp_from_120_to_90_bpm_over_two_beats_is_locked_within_a_beat_of_its_end():
    true = tick_times([120] * 960 + list(np.linspace(120, 90, 48)) + [90] * 480)
    assert ticks_to_lock(predictions(true) - true, 960 + 48, 0.001) <= TICKS_PER_BEAT
    noisy = predictions(jittered(true, 0.0015, 1)) - true
    assert ticks_to_lock(noisy, 960 + 48, 0.002) <= TICKS_PER_BEAT


@pytest.mark.parametrize("lost", [1, 2])
def test_ticks_lost_from_a_clock_on_its_grid_are_counted_in_and_the_grid_stays(lost):
    # A sender whose driver dropped a cycle: ``lost`` ticks from 100 missing, the rest on the grid.
    true = tick_times([120] * 400)
    kept = np.r_[0:100, 100 + lost:400]
    dll = ClockDLL()
    dll.start()
    positions = [dll.clock(t) for t in true[kept]]
    assert positions[100] == 100 and positions[101] == 101 + lost  # the late one counts as one until the next tells
    assert positions[102:] == list(range(102 + lost, 400))
    assert dll.lost_ticks == lost and dll.recoveries == 1 and dll.phase_jumps == 0 and dll.position == 400
    assert dll.time_of(400) == pytest.approx(true[-1] + PERIOD_120, abs=1e-6)
    # The predictions stay on the grid while the late tick is in question.
    dll = ClockDLL()
    dll.start()
    for t in true[kept][:101]:
        dll.clock(t)
    assert [dll.time_of(p) for p in (104, 130)] == pytest.approx([true[104], true[130]], abs=1e-6)


@pytest.mark.parametrize("stamped_late", [100, 101])
def test_a_lost_tick_whose_neighbour_was_stamped_late_is_still_counted_in(stamped_late):
    # serve stamps a tick when its thread gets to it: a tick beside the gap stamped 6 ms late
    # (the thread waited for the GIL) is no stall of the sender, whose other ticks stay on its grid.
    true = tick_times([120] * 400)
    kept = np.r_[0:100, 101:400]
    arrivals = true[kept]
    arrivals[stamped_late] += 0.006
    dll = ClockDLL()
    dll.start()
    for t in arrivals:
        dll.clock(t)
    assert dll.lost_ticks == 1 and dll.phase_jumps == 0 and dll.position == 400
    assert dll.time_of(400) == pytest.approx(true[-1] + PERIOD_120, abs=1e-3)


@pytest.mark.parametrize("jump", [1.3, 2.4])
def test_a_sender_that_stalls_off_its_grid_keeps_its_count_and_the_loop_follows_its_new_phase(jump):
    # A DAW whose engine stalled: its clock runs on ``jump`` periods later, every tick still sent.
    true = tick_times([120] * 400)
    arrivals = true.copy()
    arrivals[100:] += jump * PERIOD_120
    dll = ClockDLL()
    dll.start()
    positions = [dll.clock(t) for t in arrivals]
    assert positions == list(range(400))
    assert dll.phase_jumps == 1 and dll.lost_ticks == 0 and dll.position == 400
    assert dll.time_of(400) == pytest.approx(arrivals[-1] + PERIOD_120, abs=1e-4)
    assert ticks_to_lock(predictions(arrivals) - arrivals, 100, 0.001) <= TICKS_PER_BEAT


def test_a_jittered_clock_that_loses_a_tick_is_counted_in_and_a_stall_of_whole_periods_and_a_half_is_not():
    true = tick_times([120] * 400)
    arrivals = jittered(true, 0.0015, 4)
    dll = ClockDLL()
    dll.start()
    for t in np.delete(arrivals, 200):
        dll.clock(t)
    assert dll.lost_ticks == 1 and dll.position == 400
    stalled = arrivals.copy()
    stalled[200:] += 1.5 * PERIOD_120
    dll = ClockDLL()
    dll.start()
    for t in stalled:
        dll.clock(t)
    assert dll.lost_ticks == 0 and dll.position == 400


def test_a_tick_late_alone_counts_as_one():
    # Tick 100 comes most of a period late, just before 101, which is on time: nothing lost.
    true = tick_times([120] * 400)
    arrivals = true.copy()
    arrivals[100] += 0.9 * PERIOD_120
    dll = ClockDLL()
    predicted = predictions(arrivals, dll)
    assert dll.lost_ticks == 0 and dll.position == 400
    assert np.max(np.abs(predicted - true)[101:]) < 1e-6  # the late one moved nothing


def test_halving_the_tempo_is_followed_not_taken_for_lost_ticks():
    # From tick 100 the ticks come two periods apart: the first looks like one lost, the second does not.
    true = tick_times([120] * 100 + [60] * 300)
    dll = ClockDLL()
    predicted = predictions(true, dll)
    assert dll.lost_ticks == 0 and dll.position == 400
    assert ticks_to_lock(predicted - true, 100, 0.001) <= TICKS_PER_BEAT


def test_a_song_position_pointer_after_a_late_tick_sets_the_count_and_none_is_counted_in():
    true = tick_times([120] * 400)
    kept = np.r_[0:100, 101:400]
    dll = ClockDLL()
    dll.start()
    for t in true[kept][:101]:  # ticks 0..99, then 101 (a period late)
        dll.clock(t)
    dll.song_position(17)  # the DAW: the next tick is 102
    assert [dll.clock(t) for t in true[102:106]] == [102, 103, 104, 105]
    assert dll.lost_ticks == 0 and dll.phase_jumps == 0
    assert dll.time_of(106) == pytest.approx(true[106], abs=1e-6)


@pytest.mark.parametrize("held_s", [0.03, 0.045])
def test_ticks_held_up_and_then_delivered_in_a_burst_are_not_taken_for_lost_ones(held_s):
    # A stalled driver: ticks 100 and 101 come late, together with 102; positions stay right, and the
    # predictions are back on the grid within a beat.
    true = tick_times([120] * 400)
    arrivals = true.copy()
    arrivals[100:103] = true[100] + held_s
    arrivals[100:103] += [0.0, 1e-4, 2e-4]
    dll = ClockDLL()
    predicted = predictions(arrivals, dll)
    assert dll.phase_jumps == 0 and dll.position == 400
    assert ticks_to_lock(predicted - true, 103, 0.001) <= TICKS_PER_BEAT


def test_start_makes_the_next_tick_position_zero_and_predicts_it():
    dll = ClockDLL()
    true = tick_times([120] * 200)
    for t in true[:100]:  # the DAW sends clock while stopped: the loop follows, the position stays
        assert dll.clock(t) is None
    assert dll.position == 0 and not dll.playing
    dll.start()
    assert dll.time_of(0) == pytest.approx(true[100], abs=1e-6)  # the start can be played on a prediction
    assert [dll.clock(t) for t in true[100:110]] == list(range(10))


def test_stop_keeps_the_position_and_continue_resumes_from_it():
    dll = ClockDLL()
    dll.start()
    true = tick_times([120] * 100)
    for t in true[:30]:
        dll.clock(t)
    dll.stop()
    assert [dll.clock(t) for t in true[30:50]] == [None] * 20
    dll.continue_()
    assert dll.clock(true[50]) == 30


def test_song_position_sets_the_next_tick_in_sixteenths():
    dll = ClockDLL()
    dll.stop()
    assert dll.message(bytes([0xF2, 0x10, 0x01]), 0.0) == "position"  # 16 + 128 = 144 sixteenths
    assert dll.position == 144 * 6
    dll.message(bytes([0xFB]), 0.0)
    assert dll.clock(1.0) == 864


def test_a_clock_that_stops_arriving_times_out_after_three_periods():
    dll = ClockDLL()
    dll.start()
    true = tick_times([120] * 10)
    for t in true:
        dll.clock(t)
    assert not dll.timed_out(true[-1] + 3.4 * PERIOD_120)
    assert dll.timed_out(true[-1] + 3.6 * PERIOD_120)
    dll.lose_clock()
    assert not dll.playing and dll.position == 10 and not dll.tracking and dll.timeouts == 1
    assert dll.period_s == pytest.approx(PERIOD_120)


def test_other_messages_are_ignored():
    dll = ClockDLL()
    assert dll.message(bytes([0x90, 60, 100]), 0.0) is None
    assert dll.message(b"", 0.0) is None


def test_ticks_coming_back_in_a_burst_after_a_lost_clock_keep_the_period_and_the_count():
    true = tick_times([120] * 400)
    dll = ClockDLL()
    dll.start()
    for t in true[:100]:
        dll.clock(t)
    assert dll.timed_out(true[100] + 0.06)
    dll.lose_clock()
    dll.continue_()
    # ticks 100-104 held up for 60 ms, then handed on together; the rest on time
    for t in [true[100] + 0.06 + 1e-4 * i for i in range(5)] + list(true[105:]):
        dll.clock(t)
    assert dll.position == 400 and dll.phase_jumps == 0
    assert dll.period_s == pytest.approx(PERIOD_120, rel=1e-3)
    assert dll.time_of(400) == pytest.approx(true[-1] + PERIOD_120, abs=2e-4)
