"""Live controls: what a controller sets over OSC, validated and kept as one state.

Pure: no sockets. ``live/osc/server.py`` receives datagrams and hands the raw bytes to
``Controls.handle_datagram``, so everything here is tested with bytes.

Canonical addresses; every controller preset maps onto these, and they are
always accepted as well:

    /vrae/xy f f          position on the latent plane, each 0..1 (x right, y up)
    /vrae/z f...          a whole latent vector, any length (see ``latent_size``)
    /vrae/density f       0..1, how readily notes sound; 0.5 is neutral
    /vrae/temperature f   0..2; 0 thresholds the probabilities, above 0 samples them
    /vrae/velocity f|i    0: velocity from the note's probability, else 1..127
    /vrae/transpose i|f   -24..24 semitones, rounded
    /vrae/channel i|f     MIDI channel 1..16, rounded
    /vrae/hold i|f        nonzero freezes the position (xy and z)
    /vrae/panic ...       all notes off; any arguments
    /vrae/key i|s         the key: a pitch class 0..11 (0 is C) or a name ("F#", "Bb"); -1 or "none": no key
    /vrae/scale s         the key's scale, a name of play/key.py's SCALES ("minor", "dorian", "blues", ...)
    /vrae/key-strength f  0..1: 0 plays the model as it is, 1 only the scale's (and a held chord's) notes

With several voices (``serve --voices N``), voice K (1..N) has its own:

    /vrae/voice/K/xy f f        its position on the plane
    /vrae/voice/K/z f...        its whole latent vector
    /vrae/voice/K/on i|f        a touch down (nonzero) or up (0): the voice starts, or fades out
    /vrae/voice/K/density f     its own density, velocity, transpose and hold; until set,
    /vrae/voice/K/velocity f|i  voice K follows the plain /vrae/... control of that name
    /vrae/voice/K/transpose i|f
    /vrae/voice/K/hold i|f
    /vrae/voice/K/key i|s       its own key and scale
    /vrae/voice/K/scale s

Voice 1 is the plain controls: ``/vrae/voice/1/xy`` is ``/vrae/xy``, ``/vrae/voice/1/density``
is ``/vrae/density`` (and so the density of every voice that has none of its own).

Handlers only validate and store the latest value: the decoder reads a
``snapshot()`` at its own pace, so a flood of messages never piles up work.
Bad input is never raised; it is dropped and counted in ``Controls.stats``.
"""

from __future__ import annotations

import dataclasses
import logging
import threading
from collections import Counter
from typing import Any, Callable, Mapping, Sequence

from ..errors import ConfigError
from ..play.key import parse_key, parse_scale
from ..play.state import ControlState, VoiceControl
from .controllers import (
    CANONICAL,
    CONTROL_RANGES,
    INTEGER_CONTROLS,
    POSITION_FIELDS,
    ControllerMap,
    Rejected,
    as_number,
    exact_numbers,
)
from .osc.packets import MalformedPacket, split_packet

log = logging.getLogger(__name__)

# A latent coordinate under a standard normal prior lies within +-4 almost surely;
# far beyond that the decoder only extrapolates, and 1e30 would poison its state.
Z_LIMIT = 10.0


def _fit(name: str, value: float) -> tuple[float | int, bool]:
    """``value`` rounded (integer controls) and clamped to the control's range; and whether it was clamped."""
    lo, hi = CONTROL_RANGES[name]
    if name in INTEGER_CONTROLS:
        value = int(round(value))
    fitted = min(max(value, lo), hi)
    return fitted, fitted != value


def _fit_changes(changes: Mapping[str, Any]) -> tuple[dict[str, Any], bool]:
    """Changes in canonical units, rounded and clamped; and whether anything was clamped."""
    fitted: dict[str, Any] = {}
    clamped = False
    for name, value in changes.items():
        if name in CONTROL_RANGES:
            fitted[name], was_clamped = _fit(name, value)
        elif name == "voices":
            fitted[name] = {}
            for k, voice_changes in value.items():
                fitted[name][k], was_clamped = _fit_changes(voice_changes)
                clamped = clamped or was_clamped
            was_clamped = False
        elif name == "z" and value is not None:
            fitted[name] = tuple(min(max(v, -Z_LIMIT), Z_LIMIT) for v in value)
            was_clamped = fitted[name] != tuple(value)
        else:
            fitted[name], was_clamped = value, False
        clamped = clamped or was_clamped
    return fitted, clamped



VOICE_PREFIX = "/vrae/voice/"
VOICE_CONTROLS = ("xy", "z", "on", "density", "velocity", "transpose", "hold", "key", "scale")
MAX_VOICES = 16


def _canonical_routes(latent_size: int | None, voices: int = 1) -> dict[str, Callable[[Sequence[Any]], dict[str, Any]]]:
    def xy(args):
        x, y = exact_numbers(args, 2)
        return {"x": x, "y": y, "z": None}

    def z(args):
        if not args or (latent_size is not None and len(args) != latent_size):
            raise Rejected("wrong_args")
        return {"z": [as_number(a) for a in args]}

    def one(name):
        return lambda args: {name: exact_numbers(args, 1)[0]}

    routes = {
        "/vrae/xy": xy,
        "/vrae/z": z,
        "/vrae/density": one("density"),
        "/vrae/temperature": one("temperature"),
        "/vrae/velocity": one("velocity"),
        "/vrae/transpose": one("transpose"),
        "/vrae/channel": one("channel"),
        "/vrae/hold": lambda args: {"hold": exact_numbers(args, 1)[0] != 0},
        "/vrae/panic": lambda args: {"panic": True},
        "/vrae/key": _key,
        "/vrae/scale": _scale,
        "/vrae/key-strength": lambda args: {"key_strength": exact_numbers(args, 1)[0]},
    }
    plain = {"xy": routes["/vrae/xy"], "z": routes["/vrae/z"], "density": routes["/vrae/density"],
             "velocity": routes["/vrae/velocity"], "transpose": routes["/vrae/transpose"],
             "hold": routes["/vrae/hold"], "on": lambda args: {"on": exact_numbers(args, 1)[0] != 0},
             "key": _key, "scale": _scale}
    for k in range(1, voices + 1):
        for name in VOICE_CONTROLS:
            routes[f"{VOICE_PREFIX}{k}/{name}"] = plain[name] if k == 1 else _for_voice(k, plain[name])
    return routes


def _one_argument(args: Sequence[Any]) -> Any:
    if len(args) != 1:
        raise Rejected("wrong_args")
    return args[0]


def _key(args: Sequence[Any]) -> dict[str, Any]:
    """``/vrae/key``: a pitch class 0..11, a note name, or -1 / "none" for no key; another name is counted."""
    value = _one_argument(args)
    if isinstance(value, str):
        if value.strip().lower() in ("none", "off", ""):
            return {"key": None}
        try:
            return {"key": parse_key(value)}
        except ConfigError:
            raise Rejected("unknown_name") from None
    number = as_number(value)
    if number == -1:
        return {"key": None}
    if number != int(number) or not 0 <= number <= 11:
        raise Rejected("unknown_name")
    return {"key": int(number)}


def _scale(args: Sequence[Any]) -> dict[str, Any]:
    value = _one_argument(args)
    if not isinstance(value, str):
        raise Rejected("wrong_type")
    try:
        return {"scale": parse_scale(value)}
    except ConfigError:
        raise Rejected("unknown_name") from None


def _for_voice(k: int, route: Callable[[Sequence[Any]], dict[str, Any]]) -> Callable[[Sequence[Any]], dict[str, Any]]:
    return lambda args: {"voices": {k: route(args)}}


class Controls:
    """The current ControlState, set from OSC datagrams by one thread, read by others.

    ``stats`` counts every datagram (``datagrams``), every applied message
    (``accepted``, and ``clamped`` among them), and every dropped one by
    reason: ``malformed``, ``unsupported_type``, ``wrong_args``, ``wrong_type``,
    ``not_finite``, ``unknown_address``, ``unknown_name`` (a key or scale), ``held`` (a position while hold is on),
    ``button_release``, ``empty`` (a bundle without messages), ``error``;
    and ``refused``, datagrams from a sender the server does not obey (counted
    among ``datagrams`` too, never parsed).
    """

    def __init__(
        self,
        controller: ControllerMap | None = None,
        *,
        latent_size: int | None = None,
        initial: ControlState | None = None,
        voices: int = 1,
    ) -> None:
        """``latent_size``: the length a ``/vrae/z`` vector must have; None accepts any length.
        ``voices``: how many voices ``/vrae/voice/K/...`` (and a preset's multi-touch) may address."""
        if not 1 <= voices <= MAX_VOICES:
            raise ValueError(f"voices must be 1..{MAX_VOICES}, not {voices}")
        self.controller = controller or CANONICAL
        self.latent_size = latent_size
        self.voices = voices
        # A preset's own addresses never shadow canonical ones (the loader rejects /vrae/...).
        self._routes = {**self.controller.routes(), **_canonical_routes(latent_size, voices)}
        state = initial or ControlState()
        if len(state.voices) < voices - 1:
            state = dataclasses.replace(state, voices=state.voices + (VoiceControl(),) * (voices - 1 - len(state.voices)))
        self._state = state
        self._stats: Counter[str] = Counter()
        self._changed = threading.Condition(threading.Lock())

    # -- reading

    def snapshot(self) -> ControlState:
        """The current state; immutable, so it may be kept and read without a lock."""
        with self._changed:
            return self._state

    @property
    def stats(self) -> Counter[str]:
        """A copy of the counters (see the class docstring)."""
        with self._changed:
            return Counter(self._stats)

    def wait_for_version(self, version: int, timeout: float | None = None) -> ControlState | None:
        """Block until the state's version is at least ``version``; the state, or None after ``timeout`` seconds."""
        with self._changed:
            if self._changed.wait_for(lambda: self._state.version >= version, timeout):
                return self._state
            return None

    # -- writing

    def handle_datagram(self, data: bytes) -> None:
        """Apply every message in one UDP datagram. Never raises: bad input is counted and dropped."""
        self._count("datagrams")
        try:
            messages = split_packet(data)
        except MalformedPacket as err:
            self._count(err.reason, f"{len(data)} bytes: {err}")
            return
        except Exception:  # a python-osc failure mode not seen yet; the server thread must survive it
            log.debug("unexpected error parsing a datagram of %d bytes", len(data), exc_info=True)
            self._count("error")
            return
        if not messages:
            self._count("empty")
        for message in messages:
            self.handle_message(message.address, message.params)

    def set_chord(self, classes: frozenset[int]) -> None:
        """The pitch classes held on the follow input (``serve --follow``): not OSC, so not counted."""
        with self._changed:
            if classes != self._state.chord:
                self._state = dataclasses.replace(self._state, chord=frozenset(classes), version=self._state.version + 1)
                self._changed.notify_all()

    def refuse_datagram(self, sender: str) -> None:
        """Count a datagram from ``sender`` that is not obeyed (the server decides who is); it is not parsed."""
        self._count("datagrams")
        self._count("refused", f"from {sender}, not in --allow")

    def handle_message(self, address: str, args: Sequence[Any]) -> None:
        """Apply one message. Never raises: bad input is counted and dropped."""
        route = self._routes.get(address)
        if route is None:
            self._count("unknown_address", address)
            return
        try:
            changes, clamped = _fit_changes(route(args))
        except Rejected as rejected:
            self._count(rejected.reason, f"{address} {list(args)!r}")
            return
        except Exception:
            log.debug("unexpected error handling %s %r", address, args, exc_info=True)
            self._count("error")
            return
        self._apply(changes, clamped)

    def _apply(self, changes: dict[str, Any], clamped: bool) -> None:
        per_voice = {k: c for k, c in changes.pop("voices", {}).items() if 1 <= k <= self.voices}
        if 1 in per_voice:
            changes.update(per_voice.pop(1))
        with self._changed:
            state = self._state
            held_voices = 0
            if per_voice:
                state, held_voices = self._apply_voices(state, per_voice)
            if state.hold and "hold" not in changes and POSITION_FIELDS & changes.keys():
                held = True
                if held_voices < len(per_voice):  # other voices of one multi-touch message still move
                    self._state = dataclasses.replace(state, version=state.version + 1)
                    self._stats["accepted"] += 1
                    self._changed.notify_all()
            elif not changes and per_voice and held_voices == len(per_voice):
                held = True
            else:
                held = False
                if changes.pop("panic", False):
                    changes["panic_count"] = state.panic_count + 1
                if POSITION_FIELDS & changes.keys():
                    changes["touched"] = True
                self._state = dataclasses.replace(state, version=state.version + 1, **changes)
                self._stats["accepted"] += 1
                if clamped:
                    self._stats["clamped"] += 1
                self._changed.notify_all()
        if held:
            self._count("held", "a position while hold is on")

    @staticmethod
    def _apply_voices(state: ControlState, per_voice: dict[int, dict[str, Any]]) -> tuple[ControlState, int]:
        """``state`` with voices 2..N changed (not yet counted or versioned); and how many were held."""
        voices = list(state.voices)
        held = 0
        for k, changes in per_voice.items():
            own = voices[k - 2]
            is_held = own.hold if own.hold is not None else state.hold
            if is_held and "hold" not in changes and POSITION_FIELDS & changes.keys():
                held += 1
                continue
            if POSITION_FIELDS & changes.keys():
                changes = {**changes, "touched": True}
            voices[k - 2] = dataclasses.replace(own, **changes)
        return dataclasses.replace(state, voices=tuple(voices)), held

    def _count(self, reason: str, detail: str = "") -> None:
        with self._changed:
            self._stats[reason] += 1
            n = self._stats[reason]
        # With --verbose: the first of each kind, then the 10th, 100th, ... so a flood of bad
        # packets cannot flood the terminal (and, through the GIL, the clock).
        if reason != "datagrams" and log.isEnabledFor(logging.DEBUG) and str(n).strip("0") == "1":
            log.debug(f"OSC ignored ({reason}, {n} so far): {detail}")
