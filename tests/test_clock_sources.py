"""The benchmark's jittered MIDI clock and the grid the onsets are measured against: pure logic."""

from __future__ import annotations

import numpy as np
import pytest

from vrae_live.testing.jittered_clock import CONTINUE, SONG_POSITION, START, STOP, TICK, JitteredTicks
from vrae_live.testing.midi_clock import missing_ticks, tick_grid


def roll(ticks, cycles, rolling=lambda c: True, period=64):
    """Run the transport for ``cycles`` JACK cycles: the (frame, message) pairs sent, in transport frames."""
    sent, frame = [], 0
    for c in range(cycles):
        on = rolling(c)
        sent += [(frame + offset, message) for offset, message in ticks.cycle(on, frame, period)]
        frame += period if on else 0
    return sent


def test_ticks_jitter_within_bounds_around_a_steady_grid():
    sent = roll(JitteredTicks(1200, 72, seed=3), 20_000)
    assert sent[0] == (0, bytes([START]))
    frames = np.array([f for f, m in sent if m == bytes([TICK])], dtype=float)
    deviation = frames - 1200 * np.arange(len(frames))
    assert np.abs(deviation).max() <= 72 + 1 and deviation.std() > 30  # jittered, and no further
    assert np.all(np.diff(frames) > 0)
    first, tick = tick_grid(frames)
    assert tick == pytest.approx(1200, abs=0.5) and first == pytest.approx(0, abs=10)


def test_stop_then_continue_sends_stop_song_position_and_continue_on_a_sixteenth():
    sent = roll(JitteredTicks(1200, 0), 2000, rolling=lambda c: not 1010 <= c < 1100)
    others = [(f, m[0]) for f, m in sent if m != bytes([TICK])]
    assert [m for _, m in others] == [START, STOP, SONG_POSITION, CONTINUE]
    position = next(m for _, m in sent if m[0] == SONG_POSITION)
    sixteenth = position[1] | position[2] << 7
    resumed = [f for f, m in sent if m == bytes([TICK]) and f >= others[-1][0]]
    assert resumed[0] == 6 * 1200 * sixteenth and resumed[0] >= 1010 * 64


def test_tick_grid_numbers_ticks_across_a_lost_one():
    frames = 500 + 1200.0 * np.arange(100)
    first, tick = tick_grid(np.delete(frames, 40))
    assert (first, tick) == pytest.approx((500, 1200))


def test_dropped_ticks_are_left_out_and_the_rest_stay_on_the_grid():
    sent = roll(JitteredTicks(1200, 0, drop=(100, 211, 463)), 10_000)
    frames = np.array([f for f, m in sent if m == bytes([TICK])], dtype=float)
    numbers = frames / 1200
    assert np.all(numbers == np.round(numbers))
    assert sorted(set(range(500)) - set(numbers.astype(int)[:497])) == [100, 211, 463]
    assert missing_ticks(frames) == [(101 * 1200, 1), (212 * 1200, 1), (464 * 1200, 1)]
