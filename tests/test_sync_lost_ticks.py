"""The MIDI clock follower on fake time when ticks go missing or come late: a lost tick, a late
single tick, a late burst, a change of tempo and a Song Position Pointer while playing, each
told apart by where the frames land against the sender's own grid."""

from __future__ import annotations

import numpy as np
import pytest

from vrae_live.live.sync.midi_clock import MidiClockFollower
from vrae_live.testing.fake_time import FakeTime
from vrae_live.testing.synthetic_clock import FakeMidiInput, clock_messages, tick_times

PERIOD = 60 / (120 * 24)
TICKS = 1200


def play(messages, count=TICKS // 6 - 2):
    """The follower's frames for a clock's messages: [(index, fake time)], and the follower."""
    fake = FakeTime(0.0)
    follower = MidiClockFollower(4, 0.125, now=fake.now, spin_s=0.0)
    follower._pause = FakeMidiInput(fake, follower, messages).pause
    played = []
    for _ in range(count):
        tick = follower.wait()
        if follower._woken.is_set():
            break
        played.append((tick.index, fake.t))
    return played, follower


def off_grid(played, grid):
    """Each frame's time minus its sixteenth on the sender's grid (frame k on tick 6k), seconds."""
    return np.array([t - grid[6 * index] for index, t in played])


def test_lost_ticks_are_counted_in_and_every_frame_stays_on_the_grid():
    grid = tick_times([120] * TICKS)
    messages = [m for m in clock_messages(grid) if m[0] not in grid[[100, 211, 463]]]
    played, follower = play(messages)
    assert [index for index, _ in played] == list(range(len(played)))
    assert np.max(np.abs(off_grid(played, grid))) < 1e-6
    assert follower.dll.lost_ticks == 3 and follower.dll.recoveries == 3
    assert follower.report() == "3 clock ticks lost, recovered"


def test_two_ticks_lost_together_are_counted_in_and_the_clock_is_not_taken_for_stopped():
    # The tick after the gap comes a JACK cycle late (1.3 ms), three periods and a bit after the last.
    grid = tick_times([120] * TICKS)
    messages = [(t + (0.0013 if t == grid[302] else 0.0), d) for t, d in clock_messages(grid)
                if t not in grid[[300, 301]]]
    played, follower = play(messages)
    assert [index for index, _ in played] == list(range(len(played)))
    assert np.max(np.abs(off_grid(played, grid))) < 1e-6
    assert follower.report() == "2 clock ticks lost, recovered" and follower.dll.timeouts == 0


def test_a_late_single_tick_counts_as_one():
    # Tick 102 (frame 17's) comes 90 % of a period late, alone: a gap of 1.9 periods before it.
    grid = tick_times([120] * TICKS)
    messages = [(t + (0.9 * PERIOD if t == grid[102] else 0.0), d) for t, d in clock_messages(grid)]
    played, follower = play(messages)
    assert [index for index, _ in played] == list(range(len(played)))
    assert np.max(np.abs(off_grid(played, grid))) < 1e-6  # frame 17 played on its prediction, not the tick
    assert follower.report() == "no clock ticks lost"


def test_ticks_held_up_and_handed_on_in_a_burst_count_as_one_each():
    grid = tick_times([120] * TICKS)
    arrivals = grid.copy()
    arrivals[100:103] = grid[100] + 0.045 + np.array([0.0, 1e-4, 2e-4])
    played, follower = play(clock_messages(arrivals))
    errors = off_grid(played, grid)
    assert [index for index, _ in played] == list(range(len(played)))
    assert follower.dll.lost_ticks == 0 and follower.dll.position > 6 * played[-1][0]
    after = np.array([index for index, _ in played]) * 6 >= 102 + 24  # a beat after the burst
    assert np.max(np.abs(errors[after])) < 0.001


def test_halving_the_tempo_moves_the_grid_and_loses_no_ticks():
    # From tick 300 the clock runs at 60 bpm: its first tick comes two periods after the last, like
    # a lost one; the next comes two periods later again, which a clock on the old grid would not.
    grid = tick_times([120] * 300 + [60] * (TICKS - 300))
    played, follower = play(clock_messages(grid), count=120)
    errors = off_grid(played, grid)
    assert [index for index, _ in played] == list(range(len(played)))
    assert follower.dll.lost_ticks == 0
    after = np.array([index for index, _ in played]) * 6 >= 300 + 24
    assert after.any() and np.max(np.abs(errors[after])) < 0.001
    assert follower.period_s == pytest.approx(6 * 2 * PERIOD, rel=1e-3)


def test_a_song_position_pointer_while_playing_realigns_the_frames_at_once():
    # The DAW loops: after tick 383 (frame 63's, +5) it jumps back to sixteenth 8, tick 384 is position 48.
    grid = tick_times([120] * TICKS)
    messages = clock_messages(grid) + [(grid[384] - 0.002, bytes([0xF2, 8, 0]))]
    played, follower = play(sorted(messages, key=lambda m: m[0]), count=80)
    indexes = [index for index, _ in played]
    assert indexes[:64] == list(range(64)) and indexes[64:67] == [8, 9, 10]
    assert played[64][1] == pytest.approx(grid[384]) and played[65][1] == pytest.approx(grid[390])
    assert follower.realigns == 1
    assert follower.report() == "no clock ticks lost, Song Position Pointer while playing 1 time"


def test_a_song_position_pointer_after_a_lost_tick_is_taken_over_the_count():
    # Tick 380 lost, and the DAW says where it is before the tick that would tell: no tick counted in twice.
    grid = tick_times([120] * TICKS)
    messages = [m for m in clock_messages(grid) if m[0] != grid[380]]
    messages += [(grid[381] + 0.002, bytes([0xF2, 64, 0]))]  # tick 382 is sixteenth 64, position 384
    played, follower = play(sorted(messages, key=lambda m: m[0]), count=80)
    indexes = [index for index, _ in played]
    assert indexes[:64] == list(range(64)) and indexes[64] == 64
    at = dict(played)
    assert at[64] == pytest.approx(grid[382]) and at[65] == pytest.approx(grid[388])
    assert follower.dll.lost_ticks == 0
