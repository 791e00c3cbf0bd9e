"""Time that moves only when slept on, worked on, or set: clocks, sinks and senders under test
run in no real time and repeat exactly."""

from __future__ import annotations

from typing import Callable


class FakeTime:
    """``now()`` (or calling the object) reads the time; ``sleep`` and ``work`` move it on.

    ``overshoot()`` is added to every sleep (a scheduler waking late); ``per_call`` advances
    time on every read, so a spinning wait ends.
    """

    def __init__(self, start: float = 0.0, overshoot: Callable[[], float] = lambda: 0.0, per_call: float = 0.0):
        self.t = start
        self.overshoot = overshoot
        self.per_call = per_call
        self.sleeps: list[float] = []

    def now(self) -> float:
        self.t += self.per_call
        return self.t

    __call__ = now

    def sleep(self, seconds: float) -> None:
        assert seconds >= 0, f"slept {seconds} s"
        self.sleeps.append(seconds)
        self.t += seconds + self.overshoot()

    def work(self, seconds: float) -> None:
        self.t += seconds
