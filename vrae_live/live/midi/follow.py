"""The chord of the moment from a MIDI input (``serve --follow``): a keyboard player's left hand,
or a chord track in the DAW, sent to the virtual input ``vrae-live follow``.

The notes held there (on any channel) give the pitch classes the voices lean on hardest
(``play/key.py``); when every key is released the voices are back to the key alone. The
change goes into the control state at once, so the frame decoded next hears it.
"""

from __future__ import annotations

import threading
from typing import Protocol


class ChordSink(Protocol):
    def set_chord(self, classes: frozenset[int]) -> None: ...


class ChordFollower:
    """Note on and off messages in, the held notes' pitch classes out to ``controls.set_chord``.

    Fed from rtmidi's thread (``receive``). A note-on of velocity 0 is an off; All Notes Off
    (CC 123) and All Sound Off (CC 120) release a channel; anything else is ignored.
    """

    def __init__(self, controls: ChordSink) -> None:
        self.controls = controls
        self._held: set[tuple[int, int]] = set()  # (channel, note)
        self._lock = threading.Lock()
        self.changes = 0  # chords taken, for the stop line

    def receive(self, data, delta_s: float = 0.0, arrival: float = 0.0) -> None:
        """One MIDI message (bytes) from the input."""
        if len(data) < 3:
            return
        status, first, second = data[0], data[1], data[2]
        kind, channel = status & 0xF0, status & 0x0F
        with self._lock:
            before = frozenset(note % 12 for _, note in self._held)
            if kind == 0x90 and second > 0:
                self._held.add((channel, first))
            elif kind == 0x80 or kind == 0x90:
                self._held.discard((channel, first))
            elif kind == 0xB0 and first in (120, 123):
                self._held = {(c, n) for c, n in self._held if c != channel}
            else:
                return
            chord = frozenset(note % 12 for _, note in self._held)
            if chord == before:
                return
            self.changes += 1
            self.controls.set_chord(chord)

    def line(self) -> str:
        return f"follow: {self.changes} chord changes"
