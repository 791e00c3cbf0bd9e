"""Recording a take into a Standard MIDI File that is complete at any moment."""

from __future__ import annotations

import os
import struct
import time
from pathlib import Path
from typing import Callable

import mido

from .sink import MidiSink

def _varlen(value: int) -> bytes:
    """A MIDI variable-length quantity."""
    out = [value & 0x7F]
    value >>= 7
    while value:
        out.append(0x80 | (value & 0x7F))
        value >>= 7
    return bytes(reversed(out))


def _meta(kind: int, data: bytes) -> bytes:
    return bytes([0xFF, kind]) + _varlen(len(data)) + data


def _event_bytes(msg: mido.Message) -> bytes | None:
    """The track-event bytes for a message (no delta time), or None for what a file cannot hold."""
    if msg.type == "sysex":
        data = bytes(msg.data) + b"\xf7"
        return b"\xf0" + _varlen(len(data)) + data
    if getattr(msg, "channel", None) is None:
        return None  # clock, start, song position ...: realtime and system common have no place in a file
    return bytes(msg.bytes())


class MidiFileRecorder(MidiSink):
    """Records every message into a type-0 Standard MIDI File at ``path``.

    Times are seconds since the recorder was made, from ``clock``, converted to
    ticks at ``bpm`` and ``ticks_per_beat`` (960 ticks at 120 bpm: 0.52 ms per
    tick); the file carries that tempo, so it plays back in real time. Ticks
    are rounded from each message's absolute time, so rounding never accumulates.

    The file is complete at any moment: events are encoded as they arrive and
    the whole file is written atomically (temporary file, then ``os.replace``)
    on ``close()`` and every ``autosave_s`` seconds of performance, from the
    sending thread (a take of 10,000 events is about 40 kB to write). A
    snapshot ends with note-offs for the notes sounding at that moment, so even
    the file left by a hard kill has no hanging notes.
    """

    def __init__(
        self,
        path: str | os.PathLike,
        *,
        bpm: float = 120.0,
        ticks_per_beat: int = 960,
        clock: Callable[[], float] = time.monotonic,
        autosave_s: float | None = 2.0,
        track_name: str = "vrae-live",
    ) -> None:
        super().__init__()
        if not bpm > 0 or not 1 <= ticks_per_beat < 0x8000:
            raise ValueError("bpm must be positive and ticks_per_beat in 1..32767")
        self.path = Path(path)
        self.ticks_per_beat = ticks_per_beat
        self.bpm = float(bpm)
        self._ticks_per_second = ticks_per_beat * self.bpm / 60.0
        self._clock = clock
        self._t0 = clock()
        self.autosave_s = autosave_s
        self._next_save = autosave_s if autosave_s is not None else float("inf")
        self._last_tick = 0
        tempo = round(60_000_000 / self.bpm)  # microseconds per beat
        self._events = bytearray()
        self._events += b"\x00" + _meta(0x03, track_name.encode("utf-8", "replace"))
        self._events += b"\x00" + _meta(0x51, tempo.to_bytes(3, "big"))
        self.saves = 0
        self.save()  # an empty but valid file from the start

    def seconds(self) -> float:
        """Seconds since the recording started."""
        return self._clock() - self._t0

    def _write(self, msg: mido.Message) -> None:
        t = self.seconds()
        data = _event_bytes(msg)
        if data is not None:
            self._events += self._delta(t) + data
        if t >= self._next_save:
            self._next_save = t + self.autosave_s
            self.save()

    def _delta(self, t: float) -> bytes:
        tick = max(round(t * self._ticks_per_second), self._last_tick)
        delta = tick - self._last_tick
        self._last_tick = tick
        return _varlen(delta)

    def _file_bytes(self) -> bytes:
        """Header, and the track so far closed with offs for what sounds and End of Track."""
        tail = bytearray()
        for channel, note in sorted(self._sounding):
            tail += b"\x00" + bytes([0x80 | channel, note, 0])
        tail += b"\x00" + _meta(0x2F, b"")
        track_length = len(self._events) + len(tail)
        header = b"MThd" + struct.pack(">IHHH", 6, 0, 1, self.ticks_per_beat)
        return header + b"MTrk" + struct.pack(">I", track_length) + bytes(self._events) + bytes(tail)

    def save(self) -> None:
        """Write the file as it stands, atomically."""
        with self._lock:
            data = self._file_bytes()
            # Beside the target (os.replace is atomic only within one file system);
            # open() rather than mkstemp so the file gets the usual umask permissions.
            tmp = self.path.with_name(f".{self.path.name}.{os.getpid()}.tmp")
            try:
                with open(tmp, "wb") as f:
                    f.write(data)
                os.replace(tmp, self.path)
            except BaseException:
                tmp.unlink(missing_ok=True)
                raise
            self.saves += 1

    def _close_port(self) -> None:
        self.save()
