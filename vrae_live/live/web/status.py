"""What the page shows of the performance: where the sound is, the tempo, the sync, notes a second,
and what a followed clock did (ticks lost and recovered, ...).

Read from the web server's thread while the clock's thread plays: only attributes the
performer replaces whole (``current_z``) or counts up (``stats``, the clock's counters) are read,
and nothing is written.
"""

from __future__ import annotations

import time
from collections import deque
from typing import Any, Callable

from ...play.performer import Performer

NOTES_WINDOW_S = 2.0  # notes a second, counted over the last this many seconds


class LiveStatus:
    """``status()`` -> ``{"at": [x, y], "tempo", "sync", "notes_per_s", "frame", "clock"}`` for
    ``protocol.state_message``; ``tempo`` the sync source's (Link's, a DAW's MIDI clock), else ``bpm``;
    ``clock`` where the clock has something to report (MIDI clock's lost ticks, always; Link's beat
    jumps, after one)."""

    def __init__(self, performer: Performer, sync: str, bpm: float, clock: Callable[[], float] = time.monotonic) -> None:
        self.performer, self.sync, self.bpm, self.clock = performer, sync, bpm, clock
        self._counts: deque[tuple[float, int]] = deque()

    def __call__(self) -> dict[str, Any]:
        performer, now = self.performer, self.clock()
        notes = performer.stats.notes_on
        self._counts.append((now, notes))
        while len(self._counts) > 2 and now - self._counts[1][0] >= NOTES_WINDOW_S:
            self._counts.popleft()
        (then, before) = self._counts[0]
        status: dict[str, Any] = {
            "sync": self.sync,
            "tempo": float(performer.clock.tempo or self.bpm),
            "notes_per_s": (notes - before) / (now - then) if now > then else 0.0,
            "frame": performer.stats.frames,
        }
        said = performer.clock.report()
        if said:
            status["clock"] = said
        z = performer.current_z
        if z is not None:
            status["at"] = [round(v, 4) for v in performer.plane.position_of(z)]
        return status
