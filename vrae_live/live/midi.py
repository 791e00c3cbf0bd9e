"""MIDI output: the only module that opens MIDI ports.

Every sink is a :class:`MidiSink`: ``send(msg)`` a ``mido.Message``, ``panic()``,
``close()``. The base class tracks sounding notes per (channel, note), so
``panic()`` switches off exactly what is on, and ``close()`` panics first, in a
``finally``: no sink ever leaves a note hanging.

- :class:`MemorySink` keeps messages in memory (tests).
- :class:`RtMidiSink` sends to a virtual port or an existing port through python-rtmidi.
- :class:`MidiFileRecorder` records a take into a Standard MIDI File that is
  complete at any moment.
- :class:`TeeSink` sends to several sinks at once (the port and a recording).

python-rtmidi is used directly rather than through mido's rtmidi backend: the
backend API (ALSA or JACK) is picked per port here, with a fallback mido's
backend string cannot express, and rtmidi's own exception types let errors be
told apart and re-raised with the ports that exist. mido stays the message type.
"""

from __future__ import annotations

import os
import struct
import sys
import threading
import time
from pathlib import Path
from typing import Callable, Iterable

import mido

from ..errors import MidiPortError
from .notes import NoteEvent

DEFAULT_PORT_NAME = "vrae-live"
APIS = ("auto", "alsa", "jack", "coremidi", "winmm")
ALL_NOTES_OFF = 123  # channel mode message, CC 123


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
        self.send(mido.Message("note_on", note=note, velocity=velocity, channel=channel))

    def note_off(self, note: int, channel: int = 0, velocity: int = 0) -> None:
        self.send(mido.Message("note_off", note=note, velocity=velocity, channel=channel))

    def send_events(self, events: Iterable[NoteEvent]) -> None:
        """Send :class:`NoteEvent` objects from :class:`~vrae_live.live.notes.NoteEmitter`."""
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


# --- rtmidi ---------------------------------------------------------------------


def _rtmidi():
    try:
        import rtmidi
    except ImportError as err:  # pragma: no cover - a dependency of the package
        raise MidiPortError("python-rtmidi is not installed: pip install python-rtmidi") from err
    return rtmidi


def _api_constants(rtmidi) -> dict[str, int]:
    return {
        "alsa": rtmidi.API_LINUX_ALSA,
        "jack": rtmidi.API_UNIX_JACK,
        "coremidi": rtmidi.API_MACOSX_CORE,
        "winmm": rtmidi.API_WINDOWS_MM,
    }


def _api_name(rtmidi, constant: int) -> str:
    for name, value in _api_constants(rtmidi).items():
        if value == constant:
            return name
    return rtmidi.get_api_name(constant)


def alsa_sequencer_exists() -> bool:
    return os.path.exists("/dev/snd/seq")


def _open_midiout(api: str, client_name: str):
    """An ``rtmidi.MidiOut`` on ``api`` (see :class:`RtMidiSink`), or MidiPortError."""
    rtmidi = _rtmidi()
    if api not in APIS:
        raise MidiPortError(f"unknown MIDI API {api!r}; known: {', '.join(APIS)}")
    compiled = rtmidi.get_compiled_api()
    constants = _api_constants(rtmidi)
    if api == "auto":
        if rtmidi.API_LINUX_ALSA in compiled and alsa_sequencer_exists():
            candidates = [rtmidi.API_LINUX_ALSA]
        elif rtmidi.API_UNIX_JACK in compiled:
            # rtmidi refuses (SystemError) when no JACK server runs; then the platform default.
            candidates = [rtmidi.API_UNIX_JACK, rtmidi.API_UNSPECIFIED]
        else:
            candidates = [rtmidi.API_UNSPECIFIED]
    else:
        if constants[api] not in compiled:
            built = ", ".join(_api_name(rtmidi, c) for c in compiled) or "none"
            raise MidiPortError(f"python-rtmidi was built without the {api} MIDI API; built with: {built}")
        candidates = [constants[api]]

    last_error: Exception | None = None
    for constant in candidates:
        try:
            return rtmidi.MidiOut(constant, name=client_name)
        except rtmidi.RtMidiError as err:
            last_error = err
    hint = " (is the JACK server running?)" if api == "jack" else ""
    raise MidiPortError(f"cannot open MIDI output with API {api}{hint}: {last_error}") from last_error


def list_output_ports(api: str = "auto") -> list[str]:
    """Names of the MIDI ports that an :class:`RtMidiSink` could connect to."""
    midiout = _open_midiout(api, "vrae-live-list")
    try:
        return list(midiout.get_ports())
    finally:
        midiout.delete()


def choose_port(name: str, available: list[str]) -> int:
    """Index of the port called ``name``, or else of the one port whose name contains it.

    The substring match ignores case, so ``--midi-port loopmidi`` finds
    ``loopMIDI Port 1``. MidiPortError lists the ports when there is no match
    or more than one.
    """
    if name in available:
        return available.index(name)
    matches = [i for i, port in enumerate(available) if name.lower() in port.lower()]
    if len(matches) == 1:
        return matches[0]
    listing = ", ".join(repr(p) for p in available) or "none"
    if matches:
        ambiguous = ", ".join(repr(available[i]) for i in matches)
        raise MidiPortError(f"MIDI port name {name!r} matches several ports: {ambiguous}; give more of the name")
    raise MidiPortError(f"no MIDI output port {name!r}; ports that exist: {listing}")


class RtMidiSink(MidiSink):
    """Sends to a MIDI port through python-rtmidi.

    port: None opens a virtual output port called ``virtual_name`` (macOS,
        Linux ALSA or JACK) for the DAW to record from; a name connects to that
        existing port instead (exact name, or a unique substring).
    api: ``auto`` | ``alsa`` | ``jack`` | ``coremidi`` | ``winmm``. ``auto`` takes
        ALSA when an ALSA sequencer exists (``/dev/snd/seq``), else JACK when a
        JACK server is running, else the platform's default.
    client_name: how this program appears to the MIDI system.
    check_interval_s: at most this often, ``send`` checks that a connected
        port still exists (a listing, about 20 us on JACK) and raises
        MidiPortError when it has gone. A virtual port has nothing to lose on
        our side; a dead JACK server is not reported by rtmidi.
    """

    def __init__(
        self,
        port: str | None = None,
        *,
        api: str = "auto",
        virtual_name: str = DEFAULT_PORT_NAME,
        client_name: str = DEFAULT_PORT_NAME,
        check_interval_s: float = 1.0,
    ) -> None:
        super().__init__()
        rtmidi = _rtmidi()
        self._midiout = _open_midiout(api, client_name)
        self.api = _api_name(rtmidi, self._midiout.get_current_api())
        self.virtual = port is None
        self.check_interval_s = check_interval_s
        self._next_check = time.monotonic() + check_interval_s
        try:
            if self.virtual:
                self.port_name = virtual_name
                self._open_virtual(rtmidi, virtual_name)
            else:
                available = list(self._midiout.get_ports())
                index = choose_port(port, available)
                self.port_name = available[index]
                try:
                    self._midiout.open_port(index, name=virtual_name)
                except rtmidi.RtMidiError as err:
                    raise MidiPortError(f"cannot open MIDI port {self.port_name!r} ({self.api}): {err}") from err
        except BaseException:
            self._midiout.delete()
            raise

    def _open_virtual(self, rtmidi, name: str) -> None:
        try:
            self._midiout.open_virtual_port(name)
        except (rtmidi.UnsupportedOperationError, NotImplementedError) as err:
            raise MidiPortError(
                f"cannot open a virtual MIDI port {name!r}: {self.api} does not support virtual ports"
                + (
                    ". On Windows, create a port with loopMIDI and pass its name with --midi-port"
                    if sys.platform.startswith("win") or self.api == "winmm"
                    else ""
                )
                + f"; existing ports: {', '.join(self._midiout.get_ports()) or 'none'}"
            ) from err
        except rtmidi.RtMidiError as err:
            raise MidiPortError(f"cannot open a virtual MIDI port {name!r} ({self.api}): {err}") from err

    def check_port(self) -> None:
        """Raise MidiPortError when the connected port has disappeared."""
        if self.virtual:
            return
        available = self._midiout.get_ports()
        if self.port_name not in available:
            raise MidiPortError(
                f"MIDI port {self.port_name!r} was lost; ports that exist: {', '.join(available) or 'none'}"
            )

    def _write(self, msg: mido.Message) -> None:
        now = time.monotonic()
        if now >= self._next_check:
            self._next_check = now + self.check_interval_s
            self.check_port()
        try:
            self._midiout.send_message(msg.bytes())
        except Exception as err:
            raise MidiPortError(f"cannot send to MIDI port {self.port_name!r} ({self.api}): {err}") from err

    def panic(self) -> None:
        # Panic sends without checking the port: a port found lost halfway would
        # otherwise stop the note-offs that can still get through.
        with self._lock:
            next_check, self._next_check = self._next_check, float("inf")
            try:
                super().panic()
            finally:
                self._next_check = next_check

    def _close_port(self) -> None:
        self._midiout.close_port()
        self._midiout.delete()


# --- Standard MIDI File recording --------------------------------------------------


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
