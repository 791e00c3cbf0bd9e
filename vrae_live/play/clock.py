"""A frame clock on absolute deadlines.

Tick ``k`` is due at ``anchor_time + (k - anchor_tick) * period_s``: every
deadline is computed from the anchor, never by adding up sleeps, so sleep
overshoot and the work done between ticks do not accumulate into drift.

Waiting is precise to well under a millisecond: the clock sleeps until
``spin_s`` before the deadline (an OS sleep can overshoot by tens to hundreds
of microseconds), then spins on ``now()`` until the deadline.

The GIL decides the rest. Measured on a 2-core Linux VM (50 ms and 10 ms
periods): alone in its process, or beside threads that mostly block (an OSC
server), ticks are 0.01-0.03 ms late at p99 (max 0.07 ms). Beside a Python
thread running a torch RNN decode loop (about 2 ms of per-step Python) they are
3-9 ms late at p99, whatever ``spin_s`` or ``sys.setswitchinterval``: a thread
that wakes from sleep must win the GIL back. So, for sub-millisecond ticks,
decode in the clock's own thread between ticks (a window ahead), or in another
process; not in a second Python thread.

``now`` and ``sleep`` are injectable, so tests run on a fake clock in no real time.
"""

from __future__ import annotations

import math
import time
from typing import Callable, NamedTuple

import numpy as np


class Tick(NamedTuple):
    index: int  # tick number, counting from 0 at start(); consecutive even across re-anchoring
    lateness: float  # seconds past its deadline when wait() returned it (>= 0 on a real clock)


class LatenessTracker:
    """How late ticks came, in constant memory: a count, the exact max and min, and a
    histogram of ``bin_s``-wide bins up to ``range_s`` (10 us to 100 ms: 10,001 counters,
    80 kB, however long the clock runs. A deque of every tick's lateness grew by 32 bytes
    a tick, 15 kB a minute at 8 Hz, until its cap of 100,000 ticks: 3.2 MB after 3.5 hours).

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
        self.max = -math.inf
        self.min = math.inf

    def __len__(self) -> int:
        return self.count

    def add(self, seconds: float) -> None:
        index = int(seconds / self.bin_s) if seconds > 0 else 0
        self._counts[min(index, self.bins)] += 1
        self.count += 1
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


class FrameClock:
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
        self._period = float(period_s)
        self._now = now
        self._sleep = sleep
        self._late_tolerance = late_tolerance_s
        self.resync_after_periods = resync_after_periods
        self.spin_s = spin_s
        self._anchor_time: float | None = None
        self._anchor_tick = 0
        self._next_tick = 0
        self.late_ticks = 0  # ticks returned later than the tolerance
        self.resyncs = 0  # times the clock re-anchored because it fell far behind
        self.lateness = LatenessTracker()  # every returned tick's lateness, in constant memory

    @property
    def period_s(self) -> float:
        return self._period

    @property
    def late_tolerance_s(self) -> float:
        return self._late_tolerance if self._late_tolerance is not None else self._period / 4

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
            self.late_ticks += 1
            self._anchor_time, self._anchor_tick = now, k
            self._next_tick = k + 1
            self.lateness.add(now - due)
            return Tick(k, now - due)

        remaining = due - now
        while remaining > 0:
            if remaining > self.spin_s:
                self._sleep(remaining - self.spin_s)
            now = self._now()
            remaining = due - now
        lateness = now - due
        if lateness > self.late_tolerance_s:
            self.late_ticks += 1
        self._next_tick = k + 1
        self.lateness.add(lateness)
        return Tick(k, lateness)
