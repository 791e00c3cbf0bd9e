"""The clocks' one interface (:class:`Clock`), the frame clock on absolute deadlines, the
offline clock that does not sleep, and what they share: one sleep-then-spin wait and one
lateness book.

Tick ``k`` of a :class:`FrameClock` is due at ``anchor_time + (k - anchor_tick) * period_s``:
every deadline is computed from the anchor, never by adding up sleeps, so sleep
overshoot and the work done between ticks do not accumulate into drift.

Waiting is precise to well under a millisecond (:func:`sleep_then_spin`): the clock sleeps until
``spin_s`` before the deadline (an OS sleep can overshoot by tens to hundreds
of microseconds), then spins on ``now()`` until the deadline. Ticks are late by 3-9 ms at p99
beside a second Python thread decoding, whatever the spin: so the performer decodes in the
clock's own thread, between ticks (docs/benchmarks.md, "The frame clock and the GIL").

``now`` and ``sleep`` are injectable, so tests run on a fake clock in no real time.
"""

from __future__ import annotations

import math
import time
from typing import Callable, NamedTuple, Protocol

import numpy as np


class Tick(NamedTuple):
    index: int  # tick number, counting from 0 at start(); consecutive even across re-anchoring
    lateness: float  # seconds past its deadline when wait() returned it (>= 0 on a real clock)


class LatenessTracker:
    """How late ticks came, in constant memory: a count, the exact max and min, the ticks over
    a tolerance (``late``), and a histogram of ``bin_s``-wide bins up to ``range_s`` (10 us to
    100 ms: 10,001 counters, 80 kB, however long the clock runs; docs/benchmarks.md, "A clock's
    lateness in constant memory").

    ``percentile(q)`` is numpy's default (linear) percentile of every value added,
    computed from the two order statistics it interpolates between, each taken as the
    upper edge of its bin clamped to [min, max]: never below numpy's figure and at most
    one bin above it, for values within the range. An order statistic beyond the
    range (a tick over 100 ms late) is taken as the max, an upper bound.
    """

    def __init__(self, bin_s: float = 1e-5, range_s: float = 0.1) -> None:
        if not (bin_s > 0 and range_s >= bin_s):
            raise ValueError("bin_s must be positive and range_s at least one bin")
        self.bin_s = float(bin_s)
        self.bins = int(math.ceil(range_s / bin_s))
        self._counts = np.zeros(self.bins + 1, dtype=np.int64)  # the last counter: beyond the range
        self.count = 0
        self.late = 0  # values over the tolerance they were added with
        self.max = -math.inf
        self.min = math.inf

    def __len__(self) -> int:
        return self.count

    def add(self, seconds: float, tolerance: float = math.inf) -> None:
        """One tick's lateness; over ``tolerance`` it also counts in ``late``."""
        index = int(seconds / self.bin_s) if seconds > 0 else 0
        self._counts[min(index, self.bins)] += 1
        self.count += 1
        if seconds > tolerance:
            self.late += 1
        if seconds > self.max:
            self.max = seconds
        if seconds < self.min:
            self.min = seconds

    def _order_statistic(self, k: int, cumulative: np.ndarray) -> float:
        """The ``k``-th smallest value (from 0), to within a bin (the max beyond the range)."""
        index = int(np.searchsorted(cumulative, k + 1))
        upper = self.max if index >= self.bins else (index + 1) * self.bin_s
        return min(max(upper, self.min), self.max)

    def percentile(self, q: float) -> float:
        """The ``q``-th percentile (0..100) of every value added, as ``np.percentile`` computes it."""
        if not self.count:
            raise ValueError("no lateness recorded yet")
        if not 0 <= q <= 100:
            raise ValueError(f"percentile must be 0..100, not {q}")
        cumulative = np.cumsum(self._counts)
        position = (self.count - 1) * q / 100
        below = math.floor(position)
        low = self._order_statistic(below, cumulative)
        if below + 1 >= self.count:
            return low
        high = self._order_statistic(below + 1, cumulative)
        return low + (position - below) * (high - low)


def sleep_then_spin(due: float, now: Callable[[], float], sleep: Callable[[float], None], spin_s: float, *,
                    t: float | None = None, max_sleep_s: float = math.inf,
                    interrupt: Callable[[], bool] | None = None) -> float | None:
    """One step of waiting for ``due`` (seconds on ``now()``; ``t``: ``now()`` if already read).

    More than ``spin_s`` ahead: sleep towards ``spin_s`` before it, at most ``max_sleep_s``, and
    return None, so the caller looks again (its deadline may have moved). Within ``spin_s``: spin
    on ``now()`` until ``due`` (or until ``interrupt()`` is true) and return the time reached.
    """
    t = now() if t is None else t
    if due - t > spin_s:
        sleep(min(due - t - spin_s, max_sleep_s))
        return None
    while t < due and not (interrupt is not None and interrupt()):
        t = now()
    return t


def wait_until(due: float, now: Callable[[], float], sleep: Callable[[float], None], spin_s: float,
               t: float | None = None) -> float:
    """Sleep, then spin, until ``due``; the time reached."""
    while (t := sleep_then_spin(due, now, sleep, spin_s, t=t)) is None:
        pass
    return t


class TickBook:
    """The lateness bookkeeping every real clock keeps: ``lateness`` (how late each tick came) and
    ``late_ticks`` (those later than ``late_tolerance_s``: the one given, else a quarter of the
    clock's ``period_s``). A clock calls :meth:`count_tick` for each tick it returns."""

    period_s: float

    def __init__(self, late_tolerance_s: float | None = None) -> None:
        self._late_tolerance = late_tolerance_s
        self.lateness = LatenessTracker()

    @property
    def late_tolerance_s(self) -> float:
        return self._late_tolerance if self._late_tolerance is not None else self.period_s / 4

    @property
    def late_ticks(self) -> int:
        return self.lateness.late

    def count_tick(self, lateness: float, late: bool = False) -> None:
        """Book one tick's lateness; ``late``: count it late whatever the tolerance."""
        self.lateness.add(lateness, 0.0 if late else self.late_tolerance_s)

    def song_step(self, k: int) -> int:
        """The step of the song tick ``k`` falls on, step 0 a downbeat: ``k`` itself, for a clock whose
        tick 0 is the take's first downbeat (or whose ticks count the song's steps, as MIDI clock's do)."""
        return k


class Clock(Protocol):
    """What the performer asks of its clock: :class:`FrameClock`, :class:`OfflineClock`, and
    ``live/sync``'s ``LinkClock`` and ``MidiClockFollower``, which follow a transport."""

    on_stop: Callable[[str], None] | None  # called from wait() when a transport stops: the performer's silence
    lateness: LatenessTracker  # how late every tick came

    @property
    def period_s(self) -> float:
        """Seconds a frame lasts now."""

    @property
    def tempo(self) -> float | None:
        """The beats a minute a sync source sets; None where the performer's own ``bpm`` stands."""

    @property
    def late_ticks(self) -> int:
        """Ticks that came later than the clock's tolerance."""

    def start(self) -> None:
        """Begin the take: anchor tick 0 (a transport's clock waits for its Start instead)."""

    def wait(self) -> Tick | None:
        """Block until the next tick is due; None when ``wake()`` ended a wait held by a stopped transport."""

    def deadline(self, k: int) -> float:
        """When tick ``k`` is due, in the clock's ``now()`` seconds."""

    def wake(self) -> None:
        """End a ``wait()`` now: the performer is stopping."""

    def report(self) -> str:
        """What the clock did that the notes show (ticks lost, beat jumps), for the stop line; "" for nothing."""

    def song_step(self, k: int) -> int:
        """The step of the song tick ``k`` falls on, step 0 a downbeat (a model of the meter plays there)."""


class FrameClock(TickBook):
    """Ticks every ``period_s`` seconds on absolute deadlines.

    period_s: seconds between ticks (one piano-roll frame).
    now: a monotonic clock in seconds.
    sleep: sleeps for a number of seconds.
    late_tolerance_s: a tick returned more than this after its deadline counts
        in ``late_ticks``; default a quarter period.
    resync_after_periods: when ``wait()`` finds the next tick more than this
        many periods overdue, it re-anchors that tick to now (counted in
        ``resyncs``) instead of bursting out every overdue tick at once.
        Smaller delays are caught up: the overdue ticks return at once.
    spin_s: seconds before a deadline at which sleeping gives way to spinning.
    """

    tempo = None  # its own period: the performer's bpm
    on_stop = None  # no transport to stop it

    def __init__(
        self,
        period_s: float,
        now: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
        *,
        late_tolerance_s: float | None = None,
        resync_after_periods: float = 3.0,
        spin_s: float = 0.002,
    ) -> None:
        if not (period_s > 0 and period_s < float("inf")):
            raise ValueError(f"period must be a positive number of seconds, not {period_s}")
        if resync_after_periods <= 0 or spin_s < 0:
            raise ValueError("resync_after_periods must be positive and spin_s not negative")
        super().__init__(late_tolerance_s)
        self._period = float(period_s)
        self._now = now
        self._sleep = sleep
        self.resync_after_periods = resync_after_periods
        self.spin_s = spin_s
        self._anchor_time: float | None = None
        self._anchor_tick = 0
        self._next_tick = 0
        self.resyncs = 0  # times the clock re-anchored because it fell far behind

    @property
    def period_s(self) -> float:
        return self._period

    @property
    def started(self) -> bool:
        return self._anchor_time is not None

    @property
    def next_tick(self) -> int:
        """The index the next ``wait()`` returns."""
        return self._next_tick

    def start(self, at: float | None = None) -> None:
        """Anchor tick 0 at ``at`` (default: now). ``wait()`` starts the clock itself if needed."""
        self._anchor_time = self._now() if at is None else float(at)
        self._anchor_tick = 0
        self._next_tick = 0

    def deadline(self, k: int) -> float:
        """When tick ``k`` is due, in the ``now()`` clock's seconds."""
        if self._anchor_time is None:
            raise RuntimeError("the clock has not started")
        return self._anchor_time + (k - self._anchor_tick) * self._period

    def wait(self) -> Tick:
        """Block until the next tick's deadline; return its index and lateness in seconds."""
        if self._anchor_time is None:
            self.start()
        k = self._next_tick
        due = self.deadline(k)
        now = self._now()
        if now - due > self.resync_after_periods * self._period:
            # Far behind (a stall, a suspended laptop): start the grid again from
            # here rather than firing every missed tick back to back.
            self.resyncs += 1
            self._anchor_time, self._anchor_tick = now, k
            late = True
        else:
            now = wait_until(due, self._now, self._sleep, self.spin_s, t=now)
            late = False
        self._next_tick = k + 1
        self.count_tick(now - due, late)
        return Tick(k, now - due)

    def wake(self) -> None:
        """Nothing holds this clock: a wait ends on its own deadline."""

    def report(self) -> str:
        return ""


class OfflineClock(TickBook):
    """Frames as fast as they decode, on a time line of their own (an offline take): tick ``k``
    comes at ``k * period_s`` of ``now()``, never late, and nothing sleeps. ``run_to(k)`` moves
    the time line on to tick ``k``'s deadline without a tick (the end of a take's last frame)."""

    tempo = None
    on_stop = None

    def __init__(self, period_s: float) -> None:
        super().__init__()
        self.period_s = float(period_s)
        self._next_tick = 0
        self._time = 0.0

    def now(self) -> float:
        return self._time

    def start(self) -> None:
        self._next_tick = 0
        self._time = 0.0

    def deadline(self, k: int) -> float:
        return k * self.period_s

    def wait(self) -> Tick:
        k = self._next_tick
        self._next_tick = k + 1
        self.run_to(k)
        return Tick(k, 0.0)

    def run_to(self, k: int) -> None:
        self._time = self.deadline(k)

    def wake(self) -> None:
        pass

    def report(self) -> str:
        return ""
