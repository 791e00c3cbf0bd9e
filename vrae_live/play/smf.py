"""Recording a take into a Standard MIDI File, written as it is played and complete after every flush."""

from __future__ import annotations

import logging
import os
import struct
import threading
import time
from collections import deque
from pathlib import Path
from typing import Callable

import mido

from .sink import MidiSink

log = logging.getLogger(__name__)

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


# Offsets in a type-0 file: "MThd", its length and its 6 bytes; then "MTrk" and its length.
TRACK_LENGTH_AT = 18
EVENTS_START = 22
END_OF_TRACK = b"\x00" + _meta(0x2F, b"")


class MidiFileRecorder(MidiSink):
    """Records every message into a type-0 Standard MIDI File at ``path``.

    Times are seconds since the recorder was made, from ``clock``, converted to
    ticks at ``bpm`` and ``ticks_per_beat`` (960 ticks at 120 bpm: 0.52 ms per
    tick); the file carries that tempo, so it plays back in real time. Ticks
    are rounded from each message's absolute time, so rounding never accumulates.

    The sending thread (the performer's clock) only encodes a message and
    queues it. ``flush()`` appends what was queued to the open file and, after
    it, a trailer: a note-off for every note sounding at that point and End of
    Track; then it writes the track's new length into the header. The next
    flush writes over that trailer. So a flush costs what came since the last
    one, never the whole take, and the file is a complete, valid SMF after
    every flush. A thread flushes every ``autosave_s`` seconds (None: only on
    ``close()`` and when ``flush()`` is called, as an offline render does).

    Crash guarantee: however the process stops, SIGKILL included, the file
    holds everything up to the last flush (at most ``autosave_s`` seconds
    lost) and no note hangs in it. Flushes go to the operating system, not to
    the disk (no fsync): a power cut may lose more. The one moment the file is
    not valid is between a flush's two writes (the events, then the 4-byte
    length), a few microseconds per flush.
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
        # (tick, event bytes) from the sending thread; deque's append and popleft are thread-safe.
        self._queue: deque[tuple[int, bytes]] = deque()
        # The file and what is written in it, touched only under _file_lock (never the sink's
        # lock, so a flush never waits for a sender nor a sender for the disk).
        self._file_lock = threading.Lock()
        self._file = open(self.path, "w+b")
        self._events_end = EVENTS_START  # where the trailer starts and the next flush writes
        self._last_tick = 0
        self._sounding_in_file: set[tuple[int, int]] = set()  # (channel, note) on in what is written
        self.flushes = 0
        self.bytes_written = 0  # everything written to the file, header and trailers included
        tempo = round(60_000_000 / self.bpm)  # microseconds per beat
        self._queue.append((0, _meta(0x03, track_name.encode("utf-8", "replace"))))
        self._queue.append((0, _meta(0x51, tempo.to_bytes(3, "big"))))
        self._write_to_file(0, b"MThd" + struct.pack(">IHHH", 6, 0, 1, ticks_per_beat) + b"MTrk\0\0\0\0")
        self.flush()  # an empty but valid file from the start
        self._stop_flushing = threading.Event()
        self._flusher: threading.Thread | None = None
        if autosave_s is not None:
            self._flusher = threading.Thread(target=self._flush_every, args=(autosave_s,),
                                             name=f"vrae-record:{self.path.name}", daemon=True)
            self._flusher.start()

    def seconds(self) -> float:
        """Seconds since the recording started."""
        return self._clock() - self._t0

    def _write(self, msg: mido.Message) -> None:
        data = _event_bytes(msg)
        if data is not None:
            self._queue.append((round(self.seconds() * self._ticks_per_second), data))

    def flush(self) -> None:
        """Append what was queued to the file, then a trailer and the track's length: valid from here on."""
        with self._file_lock:
            if self._file is None:
                return
            new = bytearray()
            while self._queue:
                tick, data = self._queue.popleft()
                tick = max(tick, self._last_tick)  # a clock never runs back in a file
                new += _varlen(tick - self._last_tick) + data
                self._last_tick = tick
                self._note_sounding(data)
            if not new and self.flushes:
                return  # the file already ends as it should
            # The trailer is at the last event's tick (delta 0), so the next flush's deltas
            # still count from that event once it writes over the trailer.
            trailer = bytearray()
            for channel, note in sorted(self._sounding_in_file):
                trailer += b"\x00" + bytes([0x80 | channel, note, 0])
            trailer += END_OF_TRACK
            self._write_to_file(self._events_end, bytes(new + trailer))
            self._file.truncate()  # in case the previous trailer was longer than all that replaced it
            self._events_end += len(new)
            track_length = self._events_end + len(trailer) - EVENTS_START
            self._write_to_file(TRACK_LENGTH_AT, struct.pack(">I", track_length))
            self._file.flush()  # to the operating system: from here a kill loses nothing written
            self.flushes += 1

    def _write_to_file(self, offset: int, data: bytes) -> None:
        self._file.seek(offset)
        self._file.write(data)
        self.bytes_written += len(data)

    def _note_sounding(self, data: bytes) -> None:
        kind, channel = data[0] & 0xF0, data[0] & 0x0F
        if kind == 0x90 and data[2] > 0:
            self._sounding_in_file.add((channel, data[1]))
        elif kind in (0x80, 0x90):  # note_on with velocity 0 is an off
            self._sounding_in_file.discard((channel, data[1]))

    def _flush_every(self, interval: float) -> None:
        while not self._stop_flushing.wait(interval):
            try:
                self.flush()
            except OSError as err:  # e.g. the disk is full: say so once and stop; close() tries once more
                log.error("recording to %s stopped: %s", self.path, err.strerror or err)
                return

    def _close_port(self) -> None:
        # Called with the sink's lock held; the flusher never takes it, so joining it cannot deadlock.
        self._stop_flushing.set()
        if self._flusher is not None:
            self._flusher.join()
        try:
            self.flush()  # the note-offs close() sent, and End of Track
        finally:
            with self._file_lock:
                self._file.close()
                self._file = None
