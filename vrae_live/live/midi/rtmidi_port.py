"""MIDI ports through python-rtmidi: the only module that opens them.

python-rtmidi is used directly rather than through mido's rtmidi backend: the
backend API (ALSA or JACK) is picked per port here, with a fallback mido's
backend string cannot express, and rtmidi's own exception types let errors be
told apart and re-raised with the ports that exist. mido stays the message type.
"""

from __future__ import annotations

import os
import sys
import time
from typing import Callable

import mido

from ...errors import MidiPortError
from ...play.sink import MidiSink
from .jack_watch import FALLBACK_SETTLE_S, JackWatch

DEFAULT_PORT_NAME = "vrae-live"
DEFAULT_CLOCK_PORT_NAME = "vrae-live clock"  # the MIDI input a DAW sends its clock to (serve --sync midi-clock)
DEFAULT_FOLLOW_PORT_NAME = "vrae-live follow"  # the MIDI input the chords to follow come in on (serve --follow)
APIS = ("auto", "alsa", "jack", "coremidi", "winmm")
# Seconds to wait between the last send and closing the port, where no JACK watch can tell:
# ALSA's sequencer has the events once rtmidi's send returns (it drains its output queue);
# CoreMIDI and Windows MM hand on asynchronously, so a little time (not measured here).
SETTLE_S = {"alsa": 0.0, "coremidi": 0.05, "winmm": 0.05}

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


def _open_client(api: str, client_name: str, direction: str = "output"):
    """An ``rtmidi.MidiOut`` (``direction`` "input": a ``MidiIn``) on ``api`` (see :class:`RtMidiSink`), or MidiPortError."""
    rtmidi = _rtmidi()
    opener = rtmidi.MidiIn if direction == "input" else rtmidi.MidiOut
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
            return opener(constant, name=client_name)
        except rtmidi.RtMidiError as err:
            last_error = err
    hint = " (is the JACK server running?)" if api == "jack" else ""
    raise MidiPortError(f"cannot open MIDI {direction} with API {api}{hint}: {last_error}") from last_error


def list_ports(api: str = "auto", direction: str = "output") -> list[str]:
    """Names of the MIDI ports a client could connect to: outputs for an :class:`RtMidiSink`
    (``direction`` "output"), or the ports an input can listen to, a DAW's clock among them ("input")."""
    client = _open_client(api, "vrae-live-list", direction)
    try:
        return list(client.get_ports())
    finally:
        client.delete()


def choose_port(name: str, available: list[str], direction: str = "output") -> int:
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
    raise MidiPortError(f"no MIDI {direction} port {name!r}; ports that exist: {listing}")


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
        self._played: set[tuple[int, int]] = set()  # (channel, note) switched on since the last panic
        rtmidi = _rtmidi()
        self._midiout = _open_client(api, client_name)
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
        # Beside a JACK port: a watch that sees the server die and tells when a stop's last
        # messages have left (jack_watch.py says why rtmidi cannot tell either).
        self.watch = JackWatch.open(f"{client_name}-watch") if self.api == "jack" else None

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

    def on_lost(self, callback: Callable[[str], None]) -> None:
        """Call ``callback(reason)``, from another thread, when the MIDI system goes away (JACK)."""
        if self.watch is not None:
            self.watch.on_dead(callback)

    def _write(self, msg: mido.Message) -> None:
        if self.watch is not None and self.watch.dead.is_set():
            # rtmidi would queue into a ring buffer nobody empties, then spin once it is full.
            raise MidiPortError(f"{self.watch.reason}: MIDI port {self.port_name!r} is gone")
        now = time.monotonic()
        if now >= self._next_check:
            self._next_check = now + self.check_interval_s
            self.check_port()
        try:
            self._midiout.send_message(msg.bytes())
        except Exception as err:
            raise MidiPortError(f"cannot send to MIDI port {self.port_name!r} ({self.api}): {err}") from err

    def _track(self, msg: mido.Message) -> None:
        super()._track(msg)
        if msg.type == "note_on" and msg.velocity > 0:
            self._played.add((msg.channel, msg.note))

    def panic(self) -> None:
        """A note-off for every note played since the last panic, then All Notes Off.

        Every note played, not only those sounding here: a message can be lost on its way
        (a JACK server without realtime priority drops a late client's cycle under load:
        docs/benchmarks.md, "Stops: the last notes reach the DAW"), and a note
        switched off here may still sound at the receiver. The port is not checked
        meanwhile: a port found lost halfway would stop the note-offs that can get through.
        """
        with self._lock:
            self._sounding |= self._played
            self._played = set()
            next_check, self._next_check = self._next_check, float("inf")
            try:
                super().panic()
            finally:
                self._next_check = next_check

    def _close_port(self) -> None:
        """Let what was sent leave before the port goes, then release it."""
        dead = self.watch is not None and self.watch.dead.is_set()
        try:
            if not dead:
                if self.watch is not None:
                    self.watch.settle()
                else:
                    time.sleep(SETTLE_S.get(self.api, FALLBACK_SETTLE_S))
        finally:
            if self.watch is not None:
                self.watch.close()  # the watch first: the port's client outlives it, as it was opened first
            try:
                if not dead:
                    self._midiout.close_port()
            finally:
                self._midiout.delete()


class RtMidiInput:
    """A MIDI input: a virtual input port (``port`` None) called ``name``, or a connection to the
    existing output port ``port`` (exact name or a unique substring). One for a DAW's clock
    (``serve --sync midi-clock``), one for the chords to follow (``serve --follow``).

    ``on_message(data, delta_s, arrival)`` is called from rtmidi's thread for every message with
    the API's delta time and ``time.monotonic()`` read on arrival; it should only queue it (or
    do as little). SysEx and Active Sensing are dropped by rtmidi, and with ``timing`` False
    the clock's messages too (a follow input has no use for them).
    ``option``: the command line's option that names an existing port, for the error message.
    """

    def __init__(self, port: str | None, on_message: Callable[[bytes, float, float], None], *,
                 api: str = "auto", name: str = DEFAULT_CLOCK_PORT_NAME, timing: bool = True,
                 option: str = "--clock-port") -> None:
        rtmidi = _rtmidi()
        self._midiin = _open_client(api, name, direction="input")
        self.api = _api_name(rtmidi, self._midiin.get_current_api())
        self.virtual = port is None
        try:
            self._midiin.ignore_types(sysex=True, timing=not timing, active_sense=True)
            if self.virtual:
                self.port_name = name
                self._midiin.open_virtual_port(name)
            else:
                available = list(self._midiin.get_ports())
                index = choose_port(port, available, direction="input")
                self.port_name = available[index]
                self._midiin.open_port(index, name=name)
        except (rtmidi.UnsupportedOperationError, NotImplementedError) as err:
            self._midiin.delete()
            raise MidiPortError(f"cannot open a virtual MIDI input {name!r}: {self.api} does not support "
                                f"virtual ports; give an existing output port with {option}") from err
        except rtmidi.RtMidiError as err:
            self._midiin.delete()
            raise MidiPortError(f"cannot open the MIDI input {name!r} ({self.api}): {err}") from err
        except BaseException:
            self._midiin.delete()
            raise

        def callback(event, _data=None, monotonic=time.monotonic):
            arrival = monotonic()
            message, delta = event
            on_message(message, delta, arrival)

        self._midiin.set_callback(callback)

    def close(self) -> None:
        if self._midiin is None:
            return
        midiin, self._midiin = self._midiin, None
        try:
            midiin.cancel_callback()
            midiin.close_port()
        finally:
            midiin.delete()

