"""Synthetic MIDI clocks for the delay-locked loop: tick times at a tempo (or a tempo per tick),
jitter, and what the loop predicted for each tick. Shared by the tests and ``scripts/bench_live.py``."""

from __future__ import annotations

import numpy as np

from ..live.sync.dll import TICKS_PER_BEAT, ClockDLL


def tick_times(bpms, start: float = 0.0) -> np.ndarray:
    """The time of each tick, ``bpms[i]`` being the tempo from tick ``i`` to ``i + 1``."""
    periods = 60.0 / (np.asarray(bpms, dtype=np.float64) * TICKS_PER_BEAT)
    return start + np.concatenate([[0.0], np.cumsum(periods[:-1])])


def jittered(times: np.ndarray, half_width_s: float, seed: int = 0) -> np.ndarray:
    """Each tick moved by a uniform random amount in +-``half_width_s``."""
    return times + np.random.default_rng(seed).uniform(-half_width_s, half_width_s, len(times))


def predictions(arrivals: np.ndarray, dll: ClockDLL | None = None) -> np.ndarray:
    """For each tick, the time the loop predicted for it just before it arrived (nan for the first).

    The transport is started before the first tick, so tick ``i`` is position ``i``."""
    dll = dll or ClockDLL()
    dll.start()
    out = np.full(len(arrivals), np.nan)
    for i, t in enumerate(arrivals):
        predicted = dll.time_of(i)
        if predicted is not None:
            out[i] = predicted
        dll.clock(float(t))
    return out


def ticks_to_lock(errors: np.ndarray, since: int, tolerance_s: float) -> int:
    """Ticks after ``since`` until every later prediction is within ``tolerance_s``."""
    bad = np.nonzero(~(np.abs(errors[since:]) <= tolerance_s))[0]
    return int(bad.max()) + 1 if len(bad) else 0


class FakeMidiInput:
    """MIDI messages due at fake times, fed to a follower as fake time passes: its ``pause``.

    ``messages``: (time, bytes) in order of time. ``pause(seconds)`` moves ``fake`` on to the
    next message's time or by ``seconds``, whichever comes first, and feeds every message due
    by then; with nothing left to come, it wakes the follower (the take is over).
    """

    def __init__(self, fake, follower, messages) -> None:
        self.fake, self.follower = fake, follower
        self.messages = sorted(messages, key=lambda m: m[0])
        self._next = 0

    def pause(self, seconds: float) -> None:
        if self._next >= len(self.messages):
            self.follower.wake()
            return
        self.fake.t = min(self.fake.t + seconds, max(self.fake.t, self.messages[self._next][0]))
        while self._next < len(self.messages) and self.messages[self._next][0] <= self.fake.t:
            t, data = self.messages[self._next]
            self.follower.feed(data, t)
            self._next += 1


def clock_messages(times, start_at: int | None = 0, stop_at: int | None = None, continue_at: int | None = None,
                   lead_s: float = 0.001) -> list[tuple[float, bytes]]:
    """A DAW's clock: a tick at each of ``times``, Start ``lead_s`` before tick ``start_at``, Stop
    just after tick ``stop_at`` and Continue ``lead_s`` before tick ``continue_at`` (the ticks between
    still sent, as most DAWs do while stopped)."""
    out = [(float(t), b"\xf8") for t in times]
    if start_at is not None:
        out.append((float(times[start_at]) - lead_s, b"\xfa"))
    if stop_at is not None:
        out.append((float(times[stop_at]) + lead_s, b"\xfc"))
    if continue_at is not None:
        out.append((float(times[continue_at]) - lead_s, b"\xfb"))
    return sorted(out, key=lambda m: m[0])
