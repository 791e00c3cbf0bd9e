"""A delay-locked loop that filters the arrival times of MIDI clock: pure, fake-time tested.

MIDI beat clock is 24 ticks (0xF8) per quarter note, each stamped when it arrives here,
with whatever jitter the sender, the cable or driver and our own thread add (a DAW sends
its ticks from its audio callback, so a few milliseconds are common). Playing a frame on
the arrival of a tick would copy that jitter into the notes; instead the loop keeps an
estimate of the tick period and of the time of the next tick, and frames are played on
the estimate.

The loop is the second-order DLL of Fons Adriaensen, "Using a DLL to filter time" (2005),
the one JACK uses for its own clock. With the next tick predicted at ``t1`` and the period
estimated as ``e2``, a tick arriving at ``t`` gives the error ``e = t - t1``, and::

    t1 += e2 + b * e        e2 += c * e        b = sqrt(2) * w,  c = w * w

``w`` is the loop bandwidth in radians per tick (``2 pi B T`` in Adriaensen's terms, B in
Hz, T the period): counting it per tick rather than in Hz keeps the loop's behaviour the
same, in beats, at every tempo. Critically damped (b = sqrt(2) w), it follows a step in
phase or in tempo without a steady error.

Bandwidth, measured on synthetic clocks (``tests/test_sync_dll.py``, ``scripts/bench_live.py
--parts clock``): a narrow loop rejects jitter and a wide one follows a tempo change fast;
no single ``w`` does both for 3 ms of jitter on a 20.8 ms tick (120 bpm) and a jump from
120 to 90 bpm locked within a beat (24 ticks). So the loop shifts gear: it runs wide
(``WIDE``) after a (re)start and whenever a tick lands further than ``unlock_s`` from its
prediction, and narrows by ``NARROWING`` a tick down to ``NARROW`` while ticks land near
their prediction. Numbers are in ``docs/benchmarks.md``.

Positions count ticks from the song's start: a Start (0xFA) makes the next tick position
0, a Song Position Pointer (0xF2, in sixteenths) sets the next tick's position to
``6 * sixteenths``, a Continue (0xFB) resumes counting from where Stop (0xFC) left it. The
loop keeps filtering ticks while the transport is stopped (most DAWs keep sending clock),
so a Start can be played on a prediction; with no ticks to go on it plays on the first
tick's arrival. No tick for ``timeout_periods`` (3.5) periods means the clock has stopped: three
ticks missing in a row, not two, which a driver that dropped two cycles leaves, the tick after
them a JACK cycle or so late.

A tick that comes ``n`` whole periods after its prediction (a gap of about ``n + 1`` periods
before it) is one of three things, and the tick after it tells which; until then it counts as
one and leaves the loop as it was:

- **Lost ticks**: the next tick comes a period after it, and one of the two lies on the old grid,
  the one the ticks before the gap lay on (``STEADY_TICKS`` of them in a row), to within
  ``grid_tolerance_s()`` (a few times the clock's measured jitter, at least 2 ms). One is enough:
  a stamp can come late on its own (the thread that stamps it waited, for the GIL or a busy CPU),
  while a sender whose clock moved puts both off the grid. A cycle the
  sender's driver dropped (an xrun, the dummy driver on a busy machine) or a byte a cable lost
  took ``n`` ticks with it, and the DAW's position went on regardless: the ``n`` ticks are
  counted in (``lost_ticks``), and the position catches up with the DAW's. The grid stays.
- **Held up, then a burst** (a stalled driver handing on what it held): the next tick comes
  within half a period. Every tick counts as one; the loop takes the late one's error.
- **A change of tempo**: the next tick comes over a period and a half after it (a slower
  clock's spacing again, where lost ticks would have left one period): the count stays, and
  the loop, wide again, follows the new tempo.

A tick still as late a period after it but off the old grid (by more than the tolerance) is a
sender that stalled and runs on later (its clock moved, none of its ticks is missing): the count
stays and the loop's phase moves with it (``phase_jumps``). A stall that happens to move the
clock by whole periods, to within the tolerance, cannot be told from lost ticks by timing alone;
a Song Position Pointer from the DAW corrects the count at once.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

TICKS_PER_BEAT = 24  # MIDI beat clock: 24 per quarter note
TICKS_PER_SIXTEENTH = 6

CLOCK, START, CONTINUE, STOP, SONG_POSITION = 0xF8, 0xFA, 0xFB, 0xFC, 0xF2

WIDE = 0.7  # radians per tick: a step from 120 to 90 bpm locked (within 1 ms) in 8-12 ticks
NARROW = 0.04  # radians per tick (0.3 Hz at 120 bpm): +-1.5 ms of jitter filtered to 0.45 ms p99, +-3 ms to 0.9 ms
NARROWING = 0.95  # per tick on time, the bandwidth shrinks by this factor, from WIDE to NARROW
UNLOCK_S = 0.005  # a tick this far from its prediction (and 15 % of a period) widens the loop again
UNLOCK_FRACTION = 0.15
GRID_TOLERANCE_S = 0.002  # the least distance from the old grid within which ticks after a gap are on it
GRID_JITTERS = 4  # ... or this many times the clock's jitter (its mean error), up to a quarter period
JITTER_SMOOTHING = 1 / 16  # the jitter's running mean takes this share of each on-time tick's error
STEADY_TICKS = 4  # a grid is "old" (ticks can be lost from it) once this many ticks in a row came near it


@dataclass
class TickEstimate:
    """What the loop knows after a tick: the next tick's position and predicted time, and the period."""

    position: int  # the next tick's position in ticks from the song's start
    time: float  # when the next tick is predicted, seconds on the stamps' clock
    period: float  # seconds per tick


class ClockDLL:
    """The loop and the transport state; feed it ``clock(t)``, ``start()``, ``stop()``, ``continue_()``,
    ``song_position(sixteenths)`` in order of arrival, and ask ``time_of(position)``.

    initial_period_s: the period assumed until two ticks have arrived (from --bpm).
    """

    def __init__(self, initial_period_s: float = 60 / (120 * TICKS_PER_BEAT), *, wide: float = WIDE,
                 narrow: float = NARROW, narrowing: float = NARROWING, unlock_s: float = UNLOCK_S,
                 unlock_fraction: float = UNLOCK_FRACTION, timeout_periods: float = 3.5) -> None:
        if not (initial_period_s > 0 and 0 < narrow <= wide < 2 and 0 < narrowing <= 1):
            raise ValueError("the period must be positive and 0 < narrow <= wide < 2, 0 < narrowing <= 1")
        self.initial_period_s = float(initial_period_s)
        self.wide, self.narrow, self.narrowing = wide, narrow, narrowing
        self.unlock_s, self.unlock_fraction = unlock_s, unlock_fraction
        self.timeout_periods = timeout_periods
        self.playing = False  # the transport: True after Start or Continue, until Stop or a timeout
        self.position = 0  # the position of the next tick, in ticks from the song's start
        self.phase_jumps = 0  # times the clock's phase moved by whole periods, off the old grid (a stalled sender)
        self.lost_ticks = 0  # ticks inferred lost from the gaps they left, and counted in while playing
        self.recoveries = 0  # gaps after which the count caught up with the sender's
        self.jitter_s = 0.0  # running mean of the on-time ticks' distance from their prediction
        self.unlocks = 0  # ticks that landed too far from their prediction and widened the loop
        self.timeouts = 0  # times the clock stopped arriving while playing
        self.ticks = 0  # ticks received
        self.last_error = 0.0  # the last tick's arrival minus its prediction, seconds
        self._period_measured = False  # True once any two consecutive ticks measured a period
        self._reset_loop()

    # -- the loop ---------------------------------------------------------------

    def _reset_loop(self) -> None:
        self._t1: float | None = None  # the next tick's predicted time; None: no tick yet
        self._period = self.initial_period_s
        self._periods_known = False  # True once two consecutive ticks measured a period (since the last reset)
        self._last_arrival: float | None = None
        # The last tick came whole periods late: (periods, seconds off the old grid, or None where there was no
        # steady grid to be on); lost ticks, held up, or a tempo?
        self._held: tuple[int, float | None] | None = None
        self._steady = 0  # ticks in a row that came near their prediction
        self.bandwidth = self.wide

    @property
    def period_s(self) -> float:
        return self._period

    @property
    def tracking(self) -> bool:
        """True once a tick has arrived and the clock has not timed out since: predictions stand on ticks."""
        return self._t1 is not None

    @property
    def locked(self) -> bool:
        return self.tracking and self._periods_known and self.bandwidth <= self.narrow * 1.0001

    def grid_tolerance_s(self) -> float:
        """How close to the old grid ticks after a gap must come to be taken for lost ticks, in seconds."""
        return min(self._period / 4, max(GRID_TOLERANCE_S, GRID_JITTERS * self.jitter_s))

    def estimate(self) -> TickEstimate | None:
        return None if self._t1 is None else TickEstimate(self.position, self._t1, self._period)

    def time_of(self, position: float) -> float | None:
        """When the tick at ``position`` is predicted (None before any tick)."""
        if self._t1 is None:
            return None
        return self._t1 + (position - self.position) * self._period

    def clock(self, t: float) -> int | None:
        """A tick (0xF8) arrived at ``t``; returns its position, None while stopped."""
        self.ticks += 1
        if self._t1 is None:  # the first tick: it is where it is
            self._t1 = t + self._period
            self._last_arrival = t
            return self._advance(1)
        if not self._periods_known:
            # The second measures the period: the assumed one (--bpm) may be any tempo, so a gap here
            # cannot be told from a slower clock, and is not taken for dropped ticks. After a lost
            # clock the ticks may come back in a burst (a stalled driver): a spacing under half the
            # period measured before is no tempo; the tick counts, and the next one measures.
            burst = self._period_measured and t - self._last_arrival < self._period / 2
            if not burst:
                self._period = max(t - self._last_arrival, 1e-4)
                self._periods_known = self._period_measured = True
            self._t1 = t + self._period
            self._last_arrival = t
            return self._advance(1)
        late = max(0, round((t - self._t1) / self._period))  # whole periods after its prediction
        if self._held is not None:
            (held, off_grid), self._held = self._held, None
            if late == held and abs(t - self._last_arrival - self._period) < self._period / 2:
                # Still as late, a period after the late one: the clock runs on ``held`` periods later than
                # the count says. Either on the old grid (a stamp may be late on its own): ticks were lost,
                # and the count catches up (the predictions of every position stay). Both off it: the sender
                # stalled and runs on later; the count stays and the predictions move to its new phase.
                self._t1 += held * self._period
                if off_grid is not None and min(abs(off_grid), abs(t - self._t1)) <= self.grid_tolerance_s():
                    if self.playing:
                        self.position += held
                        self.lost_ticks += held
                        self.recoveries += 1
                else:
                    self.phase_jumps += 1
            # Otherwise a burst (the next tick came within half a period) or a new tempo (a longer
            # spacing again): every tick counted as one, and the loop below takes the error.
        elif late:
            # Whole periods late: lost ticks before it, a stalled driver (it hands the held-up ticks on in a
            # burst), a stalled sender or a slower tempo. Count it as one and keep the loop as it was; the
            # next tick tells (see the module's doc).
            steady = self._steady >= STEADY_TICKS
            self._held = (late, t - self._t1 - late * self._period if steady else None)
            self._steady = 0
            self.last_error = t - self._t1
            self._t1 += self._period
            self._last_arrival = t
            return self._advance(1)
        e = t - self._t1
        self.last_error = e
        if abs(e) > max(self.unlock_s, self.unlock_fraction * self._period):
            if self.bandwidth < self.wide:
                self.unlocks += 1
            self.bandwidth = self.wide
            self._steady = 0
        else:
            self.jitter_s += JITTER_SMOOTHING * (abs(e) - self.jitter_s)
            self._steady += 1
            self.bandwidth = max(self.narrow, self.bandwidth * self.narrowing)
        w = self.bandwidth
        self._t1 += self._period + math.sqrt(2) * w * e
        self._period += w * w * e
        self._period = max(self._period, 1e-4)
        self._last_arrival = t
        return self._advance(1)

    def _advance(self, n: int) -> int | None:
        """The position of the tick just received (None while stopped: the position stays)."""
        if not self.playing:
            return None
        self.position += n
        return self.position - 1

    def timed_out(self, now: float) -> bool:
        """True when no tick has come for ``timeout_periods`` periods past the last one's successor."""
        return self._t1 is not None and now > self._t1 + (self.timeout_periods - 1) * self._period

    def lose_clock(self) -> None:
        """The clock stopped arriving: stopped, position kept, the loop starts afresh on the next tick."""
        if self.playing:
            self.timeouts += 1
        self.playing = False
        self._reset_loop_keep_period()

    def _reset_loop_keep_period(self) -> None:
        period, measured = self._period, self._period_measured
        self._reset_loop()
        self._period, self._period_measured = period, measured  # the best guess for the next first tick

    # -- the transport ----------------------------------------------------------

    def start(self) -> None:
        """Start (0xFA): the next tick is position 0, the song's start."""
        self.playing = True
        self.position = 0

    def continue_(self) -> None:
        """Continue (0xFB): play on from the position Stop (or a Song Position Pointer) left."""
        self.playing = True

    def stop(self) -> None:
        """Stop (0xFC): stopped; the position stays where it is."""
        self.playing = False

    def song_position(self, sixteenths: int) -> None:
        """Song Position Pointer (0xF2): the next tick is at ``sixteenths`` sixteenths from the start.

        It settles a late tick still in question: the sender says where it is, so no ticks are
        counted in for it, and the next tick is predicted a period after it, whichever it was."""
        self.position = TICKS_PER_SIXTEENTH * int(sixteenths)
        if self._held is not None:
            self._held = None
            self._t1 = self._last_arrival + self._period

    def message(self, data, t: float) -> str | None:
        """One MIDI message (bytes) arriving at ``t``: returns 'clock', 'start', 'continue', 'stop',
        'position' or None (anything else, ignored)."""
        if not data:
            return None
        status = data[0]
        if status == CLOCK:
            self.clock(t)
            return "clock"
        if status == START:
            self.start()
            return "start"
        if status == CONTINUE:
            self.continue_()
            return "continue"
        if status == STOP:
            self.stop()
            return "stop"
        if status == SONG_POSITION and len(data) >= 3:
            self.song_position((data[1] & 0x7F) | (data[2] & 0x7F) << 7)
            return "position"
        return None
