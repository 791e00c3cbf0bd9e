"""MIDI output, the sink side: every destination is a :class:`MidiSink`.

A sink takes ``mido.Message`` objects (``send``), and ``panic()`` / ``close()``. The base
class tracks sounding notes per (channel, note), so ``panic()`` switches off exactly what is
on, and ``close()`` panics first, in a ``finally``: no sink ever leaves a note hanging.

- :class:`MemorySink` keeps messages in memory (tests); :class:`NullSink` drops them (an offline take
  that writes no file).
- :class:`TeeSink` sends to several sinks at once (the port and a recording).
- ``rtmidi_port.RtMidiSink`` sends to a MIDI port; ``smf.MidiFileRecorder`` records a file.
"""

from __future__ import annotations

import threading
import time
from typing import Callable, Iterable

import mido

from .notes import NoteEvent

ALL_NOTES_OFF = 123  # channel mode message, CC 123


def note_message(kind: str, note: int, velocity: int, channel: int) -> mido.Message:
    """A ``note_on`` or ``note_off`` message. mido's checks cost most of a message (every note of
    every voice, every frame): they are skipped where plain ints in range make them pass, else
    mido checks and raises as ever."""
    if (type(note) is int and type(velocity) is int and type(channel) is int
            and 0 <= note <= 127 and 0 <= velocity <= 127 and 0 <= channel <= 15):
        return mido.Message(kind, skip_checks=True, note=note, velocity=velocity, channel=channel)
    return mido.Message(kind, note=note, velocity=velocity, channel=channel)


class MidiSink:
    """Base class: sends ``mido.Message`` objects and remembers what sounds.

    Subclasses implement ``_write(msg)`` (and ``_close_port()`` if they hold
    anything). ``send`` is thread-safe: the clock thread sends while the main
    thread may panic or close.
    """

    def __init__(self) -> None:
        self._lock = threading.RLock()
        self._sounding: set[tuple[int, int]] = set()  # (channel, note)
        self._channels_used: set[int] = set()
        self.closed = False

    # --- subclass hooks -------------------------------------------------
    def _write(self, msg: mido.Message) -> None:
        raise NotImplementedError

    def _close_port(self) -> None:
        pass

    # --- public ---------------------------------------------------------
    @property
    def sounding(self) -> frozenset[tuple[int, int]]:
        """(channel, note) pairs switched on and not yet off."""
        with self._lock:
            return frozenset(self._sounding)

    def send(self, msg: mido.Message) -> None:
        with self._lock:
            if self.closed:
                raise ValueError(f"{type(self).__name__} is closed")
            # Track first: if the write fails or a KeyboardInterrupt lands in between, panic()
            # sends one note-off too many (harmless) rather than one too few (a hanging note).
            self._track(msg)
            self._write(msg)

    def _track(self, msg: mido.Message) -> None:
        channel = getattr(msg, "channel", None)
        if channel is None:
            return
        self._channels_used.add(channel)
        if msg.type == "note_on" and msg.velocity > 0:
            self._sounding.add((channel, msg.note))
        elif msg.type in ("note_on", "note_off"):  # note_on with velocity 0 is an off
            self._sounding.discard((channel, msg.note))

    def note_on(self, note: int, velocity: int = 100, channel: int = 0) -> None:
        self.send(note_message("note_on", note, velocity, channel))

    def note_off(self, note: int, channel: int = 0, velocity: int = 0) -> None:
        self.send(note_message("note_off", note, velocity, channel))

    def send_events(self, events: Iterable[NoteEvent]) -> None:
        """Send :class:`NoteEvent` objects from :class:`~vrae_live.play.notes.NoteEmitter`."""
        for event in events:
            if event.kind == "on":
                self.note_on(event.note, event.velocity, event.channel)
            else:
                self.note_off(event.note, event.channel)

    def panic(self) -> None:
        """A note-off for every sounding note, then All Notes Off (CC 123) on each channel used."""
        with self._lock:
            if self.closed:
                return
            offs = [
                mido.Message("note_off", note=note, velocity=0, channel=channel)
                for channel, note in sorted(self._sounding)
            ]
            all_notes_off = [
                mido.Message("control_change", control=ALL_NOTES_OFF, value=0, channel=channel)
                for channel in sorted(self._channels_used)
            ]
            first_error: Exception | None = None
            for msg in offs + all_notes_off:
                try:
                    self.send(msg)
                except Exception as err:  # noqa: BLE001 -- one failed off must not stop the others
                    first_error = first_error or err
            if first_error is not None:
                raise first_error

    def close(self) -> None:
        """Panic, then release the port. Safe to call twice."""
        with self._lock:
            if self.closed:
                return
            try:
                self.panic()
            finally:
                self.closed = True
                self._close_port()

    def __enter__(self):
        return self

    def __exit__(self, *exc_info) -> None:
        self.close()


class MemorySink(MidiSink):
    """Keeps every message with its time in seconds (from ``clock``) since the sink was made."""

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        super().__init__()
        self._clock = clock
        self._t0 = clock()
        self.timed: list[tuple[float, mido.Message]] = []

    @property
    def messages(self) -> list[mido.Message]:
        return [msg for _, msg in self.timed]

    def _write(self, msg: mido.Message) -> None:
        self.timed.append((self._clock() - self._t0, msg))


class NullSink(MidiSink):
    """Plays to nowhere."""

    def _write(self, msg: mido.Message) -> None:
        pass


class TeeSink(MidiSink):
    """Sends every message to each of ``sinks``; panics and closes each of them.

    A failing sink does not keep the message from the others; the first error
    is raised once all have been tried.
    """

    def __init__(self, *sinks: MidiSink) -> None:
        super().__init__()
        self.sinks = sinks

    def _each(self, action: Callable[[MidiSink], None]) -> None:
        first_error: BaseException | None = None
        for sink in self.sinks:
            try:
                action(sink)
            except Exception as err:  # noqa: BLE001 -- re-raised below, after the others had their turn
                first_error = first_error or err
        if first_error is not None:
            raise first_error

    def _write(self, msg: mido.Message) -> None:
        self._each(lambda sink: sink.send(msg))

    def panic(self) -> None:
        # Each sink knows what sounds on it, and one of them may have failed a send.
        with self._lock:
            if self.closed:
                return
            self._sounding.clear()
            self._each(lambda sink: sink.panic())

    def close(self) -> None:
        # Each sink's close() panics it; a panic of the tee first would send everything twice.
        with self._lock:
            if self.closed:
                return
            self.closed = True
            self._sounding.clear()
            self._each(lambda sink: sink.close())
