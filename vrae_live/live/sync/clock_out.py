"""MIDI clock out (``serve --send-clock``): vrae-live as the master a DAW follows.

24 Timing Clock messages (0xF8) per beat, Start (0xFA) just before the first one and
Stop (0xFC) after the take's last note-off, on the performer's MIDI port. The clock is
phase-locked to the frame clock: clock tick ``i`` sits at frame position
``i * frames_per_tick`` (a sixteenth frame holds 6 ticks: tick 0 on frame 0, tick 6 on
frame 1), and its deadline is interpolated between the frame clock's own absolute
deadlines for the two frames around it. Nothing is added up, so nothing drifts, and a
clock that follows Ableton Link's tempo (``link.py``) carries the clock ticks with it.

The performer drives the sender from its own loop, in its own thread: ``at_frame(k)``
right after frame ``k``'s tick (the tick on the frame goes out before the frame's notes),
then ``until_next(k)`` after the frame's work (and any decoding), which sleeps until each
of the frame's remaining clock ticks and returns before the next frame is due. So the
frame ticks' timing is untouched (the sender never sleeps past the next frame's
deadline), and a clock tick is late only while a decode runs past it (a decode longer than
a clock tick, 20.8 ms at 120 bpm). A second thread for the clock ticks would have to win
the GIL back from the decoding performer at every tick: the clock module measured that at
3-9 ms of jitter.

``now`` and ``sleep`` are injectable: tests run on fake time.
"""

from __future__ import annotations

import math
import time
from fractions import Fraction
from typing import Callable

import mido

from ...play.clock import Clock, LatenessTracker, wait_until

PPQN = 24  # MIDI clock ticks per quarter note
CLOCK, START, STOP = mido.Message("clock"), mido.Message("start"), mido.Message("stop")


def frames_per_tick(bpm: float, steps_per_beat: int | None = None, fs: float | None = None) -> Fraction:
    """How many frames one MIDI clock tick lasts: ``steps_per_beat / 24`` for a beat-based model
    (exact, whatever the tempo); for a model in frames per second, the clock runs at ``bpm``."""
    if steps_per_beat is not None:
        return Fraction(steps_per_beat, PPQN)
    if fs is None or not fs > 0 or not bpm > 0:
        raise ValueError("a clock needs steps_per_beat, or fs and a positive bpm")
    return Fraction(60) * Fraction(fs) / (Fraction(bpm) * PPQN)


class ClockSender:
    """Sends MIDI clock to ``sink`` on the deadlines of ``clock`` (any :class:`~vrae_live.play.clock.Clock`).

    frames_per_tick: see :func:`frames_per_tick`.
    spin_s: seconds before a tick's deadline at which sleeping gives way to spinning.
    """

    def __init__(self, sink, clock: Clock, frames_per_tick: Fraction | float,
                 now: Callable[[], float] = time.monotonic, sleep: Callable[[float], None] = time.sleep,
                 *, spin_s: float = 0.002) -> None:
        self.sink = sink
        self.clock = clock
        self.frames_per_tick = Fraction(frames_per_tick)
        if self.frames_per_tick <= 0:
            raise ValueError("frames_per_tick must be positive")
        self._now, self._sleep, self.spin_s = now, sleep, spin_s
        self.running = False  # between Start and Stop
        self._next = 0  # the next clock tick to send
        self.ticks = 0  # clock ticks sent
        self.starts = 0
        self.stops = 0
        self.lateness = LatenessTracker()  # every clock tick's lateness when it was sent

    def first_tick_of(self, k: int) -> int:
        """The first clock tick at or after frame ``k``."""
        return math.ceil(k / self.frames_per_tick)

    def position(self, i: int) -> Fraction:
        """Clock tick ``i``'s place on the frame grid, in frames."""
        return i * self.frames_per_tick

    def deadline(self, i: int) -> float:
        """When clock tick ``i`` is due: between its two frames' deadlines, in proportion."""
        position = self.position(i)
        k = math.floor(position)
        start = self.clock.deadline(k)
        fraction = position - k
        if not fraction:
            return start
        return start + float(fraction) * (self.clock.deadline(k + 1) - start)

    def at_frame(self, k: int) -> None:
        """Right after frame ``k``'s tick, before its notes: Start if the clock is not running
        (the first frame, or the first after a stop), then every clock tick due by now."""
        if not self.running:
            self._next = self.first_tick_of(k)
            self.sink.send(START)
            self.running = True
            self.starts += 1
        self._send_through(k, wait=False)

    def until_next(self, k: int) -> None:
        """After frame ``k``'s work: each of the frame's remaining clock ticks at its deadline."""
        if self.running:
            self._send_through(k, wait=True)

    def stop(self) -> None:
        """Stop (0xFC), once, after the last note-off; the next ``at_frame`` starts again."""
        if self.running:
            self.running = False
            self.stops += 1
            self.sink.send(STOP)

    def _send_through(self, k: int, wait: bool) -> None:
        end = k + 1
        while self.position(self._next) < end:
            due = self.deadline(self._next)
            now = self._now()
            if due > now:
                if not wait:
                    return
                now = wait_until(due, self._now, self._sleep, self.spin_s, t=now)
            self.sink.send(CLOCK)
            self.lateness.add(now - due)
            self.ticks += 1
            self._next += 1

    def line(self) -> str:
        if not self.ticks:
            return "MIDI clock out: no ticks sent"
        return (f"MIDI clock out: {self.ticks} ticks (p99 {1000 * self.lateness.percentile(99):.2f} ms, "
                f"max {1000 * self.lateness.max:.2f} ms late), {self.starts} starts, {self.stops} stops")
