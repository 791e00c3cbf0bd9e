"""Follow a DAW's MIDI clock: the performer's clock when ``serve --sync midi-clock``.

:class:`MidiClockFollower` is a :class:`~vrae_live.play.clock.Clock` whose frames
are due on the delay-locked loop's predicted times (``dll.py``) of every ``24 /
steps_per_beat``-th tick (a sixteenth for 4 steps per beat), waited for on absolute
deadlines like FrameClock's (``play/clock.py``'s sleep-then-spin). ``Tick.index`` is the
frame's position in the song: 0 on the bar where Start was pressed, ``sixteenths *
steps_per_beat / 4`` after a Song Position Pointer, at once, while playing as well (a DAW's
loop or a jump of its cursor).

Lost ticks: the loop tells a tick lost in a gap from a late one, a burst and a new tempo by
the tick after it (``dll.py``), and counts lost ones in, so the frames stay on the DAW's grid.
Until that tick comes, frames are due on the old grid, which is where they belong if ticks were
lost. ``report()`` says how many were, for the stop line and the web page.

The transport: Start plays frame 0 on the first tick after it; Stop (or no tick for 3.5
periods) calls ``on_stop`` at once, which silences every sounding note (the performer's
``silence``), keeps the position, and ``wait()`` blocks until Continue (resume from the kept
position, or the position a Song Position Pointer set meanwhile), Start, or the ticks coming
back. ``wake()`` ends a blocked ``wait()`` at once (the performer's ``stop``).

A model whose frames are seconds (``fs``, the paper presets) has no beat to put on the
clock's: it follows Start, Stop and Continue, starts its frame 0 on Start's first tick, and
plays at its own rate. Song Position Pointers and tempo do not move it.

Messages come in through ``feed(data, t)`` from the MIDI input's callback (another thread):
appended to a deque and an Event set, nothing more; ``wait()`` handles them in order, in
the performer's thread, and one that is queued while it spins for a frame's deadline before
that frame is played. The spin holds the GIL, so a Stop in the last 2 ms before a sixteenth can
come too late for it (docs/benchmarks.md, "A Stop during the spin"). ``now`` and ``pause`` are
injectable, so tests run on fake time.
"""

from __future__ import annotations

import logging
import math
import threading
import time
from collections import deque
from typing import Callable

from ...errors import ConfigError
from ...play.clock import Tick, TickBook, sleep_then_spin
from .dll import TICKS_PER_BEAT, ClockDLL

log = logging.getLogger(__name__)

IDLE_CHECK_S = 0.25  # while nothing is due, look at the clock this often (a lost clock, a wake)


def ticks_per_frame(steps_per_beat: int) -> int:
    """MIDI clock ticks per frame of a beat-based model; ConfigError when the grid does not fit 24 ppqn."""
    if steps_per_beat <= 0 or TICKS_PER_BEAT % steps_per_beat:
        raise ConfigError(f"--sync midi-clock needs a model whose steps per beat divide 24 (MIDI clock's ticks "
                          f"per beat: 1, 2, 3, 4, 6, 8, 12 or 24); this one has {steps_per_beat}")
    return TICKS_PER_BEAT // steps_per_beat


class ArrivalStamper:
    """Times for incoming messages on the ``monotonic`` clock, from the MIDI API's delta times.

    The input callback runs in a Python thread that must win the GIL first (a decoding
    performer can hold it for milliseconds), so ``monotonic()`` read in the callback is late
    by that much now and then. The API's delta times were taken before the GIL (in the
    driver's thread); their running sum gives the messages' spacing, and the smallest
    ``arrival - sum`` seen (the least-delayed message) pins that sum to ``monotonic``. The
    pin leaks upward by ``leak_s`` a message, so a slow drift between the two clocks is followed.
    """

    def __init__(self, leak_s: float = 1e-5) -> None:
        self.leak_s = leak_s
        self._sum = 0.0
        self._offset: float | None = None

    def stamp(self, delta_s: float, arrival: float) -> float:
        self._sum += max(0.0, delta_s)
        raw = arrival - self._sum
        self._offset = raw if self._offset is None else min(self._offset + self.leak_s, raw)
        return self._sum + self._offset


class MidiClockFollower(TickBook):
    """The performer's clock, following MIDI clock (see the module's doc).

    steps_per_beat: the model's grid; None for a model whose frames are ``frame_period_s`` seconds.
    frame_period_s: the frame's seconds for an ``fs`` model; for a beat-based one, the period
        assumed (from --bpm) until the clock has measured its own.
    """

    def __init__(self, steps_per_beat: int | None, frame_period_s: float, *,
                 now: Callable[[], float] = time.monotonic, pause: Callable[[float], None] | None = None,
                 spin_s: float = 0.002, late_tolerance_s: float | None = None, dll: ClockDLL | None = None) -> None:
        super().__init__(late_tolerance_s)
        self.ticks_per_frame = ticks_per_frame(steps_per_beat) if steps_per_beat is not None else None
        self._frame_period = float(frame_period_s)
        tick_period = frame_period_s / self.ticks_per_frame if self.ticks_per_frame else 60 / (120 * TICKS_PER_BEAT)
        self.dll = dll or ClockDLL(tick_period)
        self._now = now
        self._pause = pause or self._wait_for_input
        self.spin_s = spin_s
        self._inbox: deque[tuple[float, bytes]] = deque()
        self._stamper = ArrivalStamper()
        self._arrived = threading.Event()
        self._woken = threading.Event()
        self._next_frame = 0
        self._anchor: tuple[int, float] | None = None  # fs models: (frame, time) the frames count from
        self._anchor_on_tick = False  # fs models: anchor on the next tick's arrival
        self._resume_on_clock = False  # the clock was lost while playing: its return resumes
        self.on_stop: Callable[[str], None] | None = None  # called in wait(): silence everything, now
        self.skipped = 0  # frames passed over because they were due over a frame ago
        self.transport: list[tuple[float, str]] = []  # (time, "start" | "stop" | ...): what wait() saw, in order
        self.realigns = 0  # Song Position Pointers received while playing

    # -- the Clock face ------------------------------------------------------------

    @property
    def period_s(self) -> float:
        """Seconds per frame: the clock's for a beat-based model, once it has measured one."""
        if self.ticks_per_frame:
            return self.dll.period_s * self.ticks_per_frame
        return self._frame_period

    @property
    def tempo(self) -> float | None:
        """The DAW's tempo as the clock measures it; None for a model whose frames are seconds."""
        return 60.0 / (self.dll.period_s * TICKS_PER_BEAT) if self.ticks_per_frame else None

    @property
    def next_tick(self) -> int:
        return self._next_frame

    @property
    def playing(self) -> bool:
        return self.dll.playing

    def report(self) -> str:
        """What the clock did that the notes show: ticks lost and counted in, moves of its phase,
        Song Position Pointers while playing, losses of the clock (for the stop line and the page)."""
        dll = self.dll
        parts = [f"{dll.lost_ticks} clock tick{'' if dll.lost_ticks == 1 else 's'} lost, recovered"
                 if dll.lost_ticks else "no clock ticks lost"]
        for count, what in ((dll.phase_jumps, "clock moved by whole ticks"), (self.realigns, "Song Position Pointer "
                            "while playing"), (dll.timeouts, "clock lost")):
            if count:
                parts.append(f"{what} {count} time{'' if count == 1 else 's'}")
        return ", ".join(parts)

    def start(self) -> None:
        """Nothing to anchor: the DAW's Start does."""

    def deadline(self, k: int) -> float:
        """When frame ``k`` is due as predicted now (MIDI clock out may interpolate between frames);
        infinity while stopped or before the first tick."""
        due = self._due_of(k)
        return math.inf if due is None else due

    def feed(self, data, t: float) -> None:
        """A MIDI message arrived at ``t`` (from any thread)."""
        self._inbox.append((t, bytes(data)))
        self._arrived.set()

    def receive(self, data, delta_s: float, arrival: float) -> None:
        """A message from the MIDI input's callback: stamped (see :class:`ArrivalStamper`) and queued."""
        self.feed(data, self._stamper.stamp(delta_s, arrival))

    def wake(self) -> None:
        """End a ``wait()`` now (the performer is stopping): it returns a tick the performer will not play."""
        self._woken.set()
        self._arrived.set()

    def wait(self) -> Tick:
        """Block until the next frame is due and return it (its song position, its lateness)."""
        while True:
            self._arrived.clear()
            self._drain()
            if self._woken.is_set():
                return Tick(self._next_frame, 0.0)
            now = self._now()
            if self.dll.tracking and self.dll.timed_out(now):
                self._lose_clock(now)
            due = self._due()
            if due is None:
                timeout = IDLE_CHECK_S
                if self.dll.tracking:
                    timeout = min(timeout, max(0.0, self._timeout_at() - now) + 1e-4)
                self._pause(timeout)
                continue
            while now - due > self.period_s:  # over a frame late (the tempo leapt): go on from the present
                self._next_frame += 1
                self.skipped += 1
                due = self._due()
            # Sleeping, wake for new ticks (they refine the deadline) and to notice a lost clock.
            now = sleep_then_spin(due, self._now, self._pause, self.spin_s, t=now,
                                  max_sleep_s=max(1e-4, self._timeout_at() - now), interrupt=lambda: bool(self._inbox))
            if now is None or self._inbox:  # a Stop that came during the spin: handled before this frame is played
                continue
            self.count_tick(now - due)
            frame = self._next_frame
            self._next_frame += 1
            return Tick(frame, now - due)

    # -- inside -----------------------------------------------------------------

    def _wait_for_input(self, seconds: float) -> None:
        self._arrived.wait(seconds)

    def _timeout_at(self) -> float:
        return self.dll.time_of(self.dll.position) + (self.dll.timeout_periods - 1) * self.dll.period_s \
            if self.dll.tracking else math.inf

    def _due(self) -> float | None:
        """When the next frame is due; None while stopped or before the first tick."""
        return self._due_of(self._next_frame)

    def _due_of(self, k: int) -> float | None:
        if not self.dll.playing:
            return None
        if self.ticks_per_frame:
            return self.dll.time_of(k * self.ticks_per_frame)
        if self._anchor is None:
            return None
        frame, at = self._anchor
        return at + (k - frame) * self._frame_period

    def _drain(self) -> None:
        while self._inbox:
            t, data = self._inbox.popleft()
            self._message(data, t)

    def _message(self, data: bytes, t: float) -> None:
        dll = self.dll
        if data and data[0] == 0xF8 and self._resume_on_clock and not dll.playing:
            self._resume_on_clock = False
            dll.continue_()
            self._anchor, self._anchor_on_tick = None, True
            self._transport(t, "resume")
        if data and data[0] == 0xF8 and self._anchor_on_tick and dll.playing:
            # An fs model's first frame: on this tick's prediction, or its arrival without one.
            predicted = dll.time_of(dll.position)
            self._anchor = (self._next_frame, t if predicted is None else predicted)
            self._anchor_on_tick = False
        kind = dll.message(data, t)
        if kind in ("start", "continue"):
            self._resume_on_clock = False
            if kind == "start":
                self._next_frame = 0
            self._anchor, self._anchor_on_tick = None, True
            self._transport(t, kind)
        elif kind == "stop":
            self._resume_on_clock = False
            self._silence(t, "stop")
        elif kind == "position" and self.ticks_per_frame:
            self._next_frame = math.ceil(dll.position / self.ticks_per_frame)
            if dll.playing:
                self.realigns += 1
            self._transport(t, "position")

    def _lose_clock(self, now: float) -> None:
        was_playing = self.dll.playing
        self.dll.lose_clock()
        if was_playing:
            log.warning("MIDI clock lost while playing: notes off, waiting for it")
            self._resume_on_clock = True
            self._silence(now, "clock lost")

    def _silence(self, t: float, why: str) -> None:
        self._anchor = None
        self._transport(t, why)
        if self.on_stop is not None:
            self.on_stop(why)

    def _transport(self, t: float, what: str) -> None:
        self.transport.append((t, what))
        if len(self.transport) > 1000:
            del self.transport[:500]
