"""Live controls: what a controller sets over OSC, validated and kept as one state.

Pure: no sockets. ``live/osc.py`` receives datagrams and hands the raw bytes to
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

Handlers only validate and store the latest value: the decoder reads a
``snapshot()`` at its own pace, so a flood of messages never piles up work.
Bad input is never raised; it is dropped and counted in ``Controls.stats``.
"""

from __future__ import annotations

import dataclasses
import logging
import math
import struct
import threading
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Mapping, Sequence

from pythonosc import osc_message
from pythonosc.parsing import osc_types

from ..config import presets_dir, read_toml
from ..errors import ConfigError

log = logging.getLogger(__name__)

# Canonical units of each control: (lowest, highest). Values outside are clamped.
CONTROL_RANGES: dict[str, tuple[float, float]] = {
    "x": (0.0, 1.0),
    "y": (0.0, 1.0),
    "density": (0.0, 1.0),
    "temperature": (0.0, 2.0),
    "velocity": (0, 127),
    "transpose": (-24, 24),
    "channel": (1, 16),
}
INTEGER_CONTROLS = frozenset({"velocity", "transpose", "channel"})
POSITION_FIELDS = frozenset({"x", "y", "z"})

# A latent coordinate under a standard normal prior lies within +-4 almost surely;
# far beyond that the decoder only extrapolates, and 1e30 would poison its state.
Z_LIMIT = 10.0

CANONICAL_PREFIX = "/vrae/"


@dataclass(frozen=True)
class ControlState:
    """Everything the controller sets, as one immutable value.

    ``z`` is the whole latent vector from the latest ``/vrae/z``; a position
    message on the plane (``/vrae/xy`` or a preset's pad) sets it back to None,
    so the consumer uses ``z`` when it is set and ``(x, y)`` otherwise.
    ``version`` rises by one with every applied message; ``panic_count`` rises
    with every panic, so a consumer acts when it differs from the one it last saw.
    """

    x: float = 0.5  # 0..1, left to right
    y: float = 0.5  # 0..1, bottom to top
    z: tuple[float, ...] | None = None  # a whole latent vector, each within +-Z_LIMIT
    density: float = 0.5  # 0..1; 0.5 neutral
    temperature: float = 1.0  # 0..2; 0 thresholds, 1 samples the model's own probabilities
    velocity: int = 0  # 0: from the note's probability; else 1..127
    transpose: int = 0  # semitones, -24..24
    channel: int = 1  # MIDI channel, 1..16
    hold: bool = False  # True: position messages are ignored
    touched: bool = False  # a position has come from the controller (the demo hands over)
    panic_count: int = 0
    version: int = 0


# ---------------------------------------------------------------------------
# Datagram parsing


class MalformedPacket(ValueError):
    """A datagram that is not an OSC packet we can parse; ``reason`` names the stats key."""

    def __init__(self, message: str, reason: str = "malformed") -> None:
        super().__init__(message)
        self.reason = reason


_BUNDLE_PREFIX = b"#bundle\x00"
_BUNDLE_HEADER = len(_BUNDLE_PREFIX) + 8  # the prefix and a 64-bit time tag
MAX_BUNDLE_DEPTH = 4  # no controller nests deeper; python-osc itself recurses without a bound
# Type tags python-osc parses. It skips any other tag with a warning but does not
# skip its bytes, so the arguments after it would be read from the wrong place.
_PARSEABLE_TYPE_TAGS = frozenset("ihfdsbrmtTFN[]")


def split_packet(data: bytes) -> list[osc_message.OscMessage]:
    """The OSC messages in one datagram, bundles flattened in order.

    Bundle time tags are ignored: a control is a latest value, applied at once.
    Raises ``MalformedPacket`` and nothing else for bytes that do not parse.

    Bundle framing is walked here rather than by python-osc's ``OscBundle``,
    which loops forever on a negative element size; each message is parsed by
    python-osc's ``OscMessage``.
    """
    messages: list[osc_message.OscMessage] = []
    try:
        _collect_messages(bytes(data), 0, messages)
    except (osc_message.ParseError, osc_types.ParseError, UnicodeDecodeError) as err:
        raise MalformedPacket(f"not parseable: {err}") from err
    return messages


def _collect_messages(data: bytes, depth: int, out: list[osc_message.OscMessage]) -> None:
    # OSC 1.0: the size of every packet, and of every bundle element, is a positive multiple of 4.
    if not data or len(data) % 4:
        raise MalformedPacket(f"size {len(data)} is not a positive multiple of 4")
    if data.startswith(_BUNDLE_PREFIX):
        if depth >= MAX_BUNDLE_DEPTH:
            raise MalformedPacket(f"bundles nested deeper than {MAX_BUNDLE_DEPTH}")
        if len(data) < _BUNDLE_HEADER:
            raise MalformedPacket("bundle shorter than its header")
        index = _BUNDLE_HEADER
        while index < len(data):
            if index + 4 > len(data):
                raise MalformedPacket("bundle element size cut off")
            (size,) = struct.unpack_from(">i", data, index)
            index += 4
            if size <= 0 or index + size > len(data):
                raise MalformedPacket(f"bundle element size {size} out of bounds")
            _collect_messages(data[index : index + size], depth + 1, out)
            index += size
    elif data.startswith(b"/"):
        _check_arguments(data)
        out.append(osc_message.OscMessage(data))
    else:
        raise MalformedPacket("neither an OSC message nor a bundle")


_ARGUMENT_SIZES = {"i": 4, "f": 4, "r": 4, "m": 4, "h": 8, "d": 8, "t": 8}  # bytes; T F N [ ] take none


def _check_arguments(data: bytes) -> None:
    """Type tags python-osc can parse, and arguments that fill the message exactly.

    python-osc reads a float cut short, or missing at the end, as if padded with
    zeros; a truncated /vrae/xy would move the pad to 0.
    """
    _, index = osc_types.get_string(data, 0)
    if index >= len(data):
        return  # no type tag string: a message without arguments
    tags, index = osc_types.get_string(data, index)
    if not tags.startswith(","):
        raise MalformedPacket("type tag string without its leading comma")
    unknown = set(tags[1:]) - _PARSEABLE_TYPE_TAGS
    if unknown:
        raise MalformedPacket(f"unsupported type tag(s) {sorted(unknown)}", reason="unsupported_type")
    for tag in tags[1:]:
        if tag == "s":
            _, index = osc_types.get_string(data, index)
        elif tag == "b":
            _, index = osc_types.get_blob(data, index)
        else:
            index += _ARGUMENT_SIZES.get(tag, 0)
    if index != len(data):
        raise MalformedPacket(f"arguments take {index} bytes of a {len(data)}-byte message")


# ---------------------------------------------------------------------------
# Argument validation: each raises _Rejected(reason), counted under that reason


class _Rejected(Exception):
    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


def _as_number(value: Any) -> float:
    """An OSC int, float or True/False as a finite float."""
    if isinstance(value, bool):
        return float(value)
    if not isinstance(value, (int, float)):
        raise _Rejected("wrong_type")
    number = float(value)
    if not math.isfinite(number):
        raise _Rejected("not_finite")
    return number


def _numbers(args: Sequence[Any], count: int) -> list[float]:
    if len(args) != count:
        raise _Rejected("wrong_args")
    return [_as_number(a) for a in args]


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
        elif name == "z" and value is not None:
            fitted[name] = tuple(min(max(v, -Z_LIMIT), Z_LIMIT) for v in value)
            was_clamped = fitted[name] != tuple(value)
        else:
            fitted[name], was_clamped = value, False
        clamped = clamped or was_clamped
    return fitted, clamped


# ---------------------------------------------------------------------------
# Controller presets: a dialect's addresses mapped onto the canonical ones


@dataclass(frozen=True)
class Scale:
    """Maps what a control sends (``sends``, e.g. 0..127 or -1..1) linearly onto canonical units (``to``)."""

    sends: tuple[float, float]
    to: tuple[float, float]
    invert: bool = False

    def to_control(self, value: float) -> float:
        t = (value - self.sends[0]) / (self.sends[1] - self.sends[0])
        if self.invert:
            t = 1.0 - t
        return self.to[0] + t * (self.to[1] - self.to[0])

    def from_control(self, value: float) -> float:
        t = (value - self.to[0]) / (self.to[1] - self.to[0])
        if self.invert:
            t = 1.0 - t
        return self.sends[0] + t * (self.sends[1] - self.sends[0])


@dataclass(frozen=True)
class PairMapping:
    """One address that carries x and y together, e.g. TouchOSC's ``/1/xy1 f f``."""

    addresses: tuple[str, ...]
    x: Scale
    y: Scale
    swap: bool = False  # the control sends (y, x)

    def to_changes(self, args: Sequence[Any]) -> dict[str, Any]:
        first, second = _numbers(args, 2)
        if self.swap:
            first, second = second, first
        return {"x": self.x.to_control(first), "y": self.y.to_control(second), "z": None}

    def feedback(self, x: float, y: float) -> tuple[str, list[float]]:
        values = [self.x.from_control(x), self.y.from_control(y)]
        return self.addresses[0], values[::-1] if self.swap else values


@dataclass(frozen=True)
class ValueMapping:
    """One address whose single value drives one control (Lemur's ``/Pad.x``, a fader, a button)."""

    control: str  # x, y, density, temperature, velocity, transpose, channel, hold or panic
    addresses: tuple[str, ...]
    scale: Scale | None = None  # None for hold and panic, which only ask "nonzero?"

    def to_changes(self, args: Sequence[Any]) -> dict[str, Any]:
        if self.control == "panic":
            # A push button sends 1 when pressed and 0 when released: panic once, on press.
            if args and _as_number(args[0]) == 0:
                raise _Rejected("button_release")
            return {"panic": True}
        (value,) = _numbers(args, 1)
        if self.control == "hold":
            return {"hold": value != 0}
        changes: dict[str, Any] = {self.control: self.scale.to_control(value)}
        if self.control in POSITION_FIELDS:
            changes["z"] = None
        return changes

    def feedback(self, value: float) -> tuple[str, list[float]]:
        return self.addresses[0], [self.scale.from_control(value)]


@dataclass(frozen=True)
class ControllerMap:
    """A controller's dialect: its addresses mapped onto the canonical ``/vrae/...`` ones."""

    name: str = "canonical"
    pair: PairMapping | None = None
    values: tuple[ValueMapping, ...] = ()
    status_address: str | None = None  # a label the feedback writes its status text to
    source: str | None = None  # the file it was read from

    def routes(self) -> dict[str, Callable[[Sequence[Any]], dict[str, Any]]]:
        """Address to a function from the message's arguments to changes in canonical units."""
        routes: dict[str, Callable[[Sequence[Any]], dict[str, Any]]] = {}
        for mapping in ((self.pair,) if self.pair else ()) + self.values:
            for address in mapping.addresses:
                routes[address] = mapping.to_changes
        return routes

    def position_feedback(self, x: float, y: float) -> list[tuple[str, list[float]]]:
        """The messages that show position (x, y) on the controller's own pad; canonical if it has none."""
        singles = {m.control: m for m in self.values if m.control in ("x", "y")}
        if self.pair is not None:
            return [self.pair.feedback(x, y)]
        if singles:
            return [singles[axis].feedback(value) for axis, value in (("x", x), ("y", y)) if axis in singles]
        return [("/vrae/xy", [x, y])]

    def describe(self) -> list[str]:
        """One line per mapped address, to print when the server starts."""
        lines = []
        if self.pair is not None:
            order = "(y, x)" if self.pair.swap else "(x, y)"
            lines.append(f"{' or '.join(self.pair.addresses)} {order} -> /vrae/xy")
        for m in self.values:
            lines.append(f"{' or '.join(m.addresses)} -> {m.control}")
        return lines


CANONICAL = ControllerMap()

_SCALED_CONTROLS = tuple(CONTROL_RANGES)  # x, y, density, temperature, velocity, transpose, channel
SECTION_KEYS: dict[str, tuple[str, ...]] = {
    "xy": ("address", "swap", "invert_x", "invert_y", "range", "range_x", "range_y"),
    **{name: ("address", "invert", "range") for name in _SCALED_CONTROLS},
    "hold": ("address",),
    "panic": ("address",),
    "status": ("address",),
}
TOP_LEVEL_KEYS = ("name",)


def controllers_dir() -> Path:
    return presets_dir() / "controllers"


def list_controllers() -> list[str]:
    """The names of the controller presets that ship with vrae-live."""
    return sorted(p.stem for p in controllers_dir().glob("*.toml"))


def load_controller(name_or_path: str | Path) -> ControllerMap:
    """A controller preset by name (``presets/controllers/NAME.toml``) or a path to a .toml file."""
    path = Path(name_or_path)
    if not (path.suffix == ".toml" and path.is_file()):
        path = controllers_dir() / f"{name_or_path}.toml"
        if not path.is_file():
            known = ", ".join(list_controllers()) or "none"
            raise ConfigError(f"no controller preset {str(name_or_path)!r}; known: {known}, or a path to a .toml file")
    return controller_from_dict(read_toml(path), source=str(path))


def controller_from_dict(d: Mapping[str, Any], source: str = "controller preset") -> ControllerMap:
    """A ControllerMap from a parsed preset; unknown sections or keys are errors that list the known ones."""
    known_top = TOP_LEVEL_KEYS + tuple(SECTION_KEYS)
    unknown = sorted(set(d) - set(known_top))
    if unknown:
        raise ConfigError(f"{source}: unknown section(s) or key(s) {unknown}; known: {', '.join(known_top)}")
    sections = {}
    for section, body in d.items():
        if section in TOP_LEVEL_KEYS:
            continue
        if not isinstance(body, Mapping):
            raise ConfigError(f"{source}: [{section}] must be a table with an address, e.g. [{section}] address = \"/...\"")
        bad = sorted(set(body) - set(SECTION_KEYS[section]))
        if bad:
            raise ConfigError(f"{source}: unknown [{section}] key(s) {bad}; known: {', '.join(SECTION_KEYS[section])}")
        sections[section] = _Section(source, section, body)

    pair = None
    if "xy" in sections:
        s = sections.pop("xy")
        both = s.range("range", (0.0, 1.0))
        pair = PairMapping(
            addresses=s.addresses(),
            x=Scale(s.range("range_x", both), CONTROL_RANGES["x"], s.flag("invert_x")),
            y=Scale(s.range("range_y", both), CONTROL_RANGES["y"], s.flag("invert_y")),
            swap=s.flag("swap"),
        )
    status = sections.pop("status").addresses()[0] if "status" in sections else None
    values = []
    for control, s in sections.items():
        scale = None
        if control in CONTROL_RANGES:
            scale = Scale(s.range("range", CONTROL_RANGES[control]), CONTROL_RANGES[control], s.flag("invert"))
        values.append(ValueMapping(control, s.addresses(), scale))

    controller = ControllerMap(str(d.get("name", Path(source).stem)), pair, tuple(values), status, source)
    seen: dict[str, str] = {}
    for mapping in ([pair] if pair else []) + values:
        for address in mapping.addresses:
            owner = "xy" if mapping is pair else mapping.control
            if address in seen:
                raise ConfigError(f"{source}: address {address} is mapped by both [{seen[address]}] and [{owner}]")
            seen[address] = owner
    return controller


class _Section:
    """One table of a controller preset, with typed getters that name the preset and key in errors."""

    def __init__(self, source: str, name: str, body: Mapping[str, Any]) -> None:
        self.source, self.name, self.body = source, name, body

    def _where(self, key: str) -> str:
        return f"{self.source}: [{self.name}] {key}"

    def addresses(self) -> tuple[str, ...]:
        value = self.body.get("address")
        if value is None:
            raise ConfigError(f"{self._where('address')} is missing")
        found = (value,) if isinstance(value, str) else tuple(value) if isinstance(value, list) else ()
        if not found or not all(isinstance(a, str) and a.startswith("/") and " " not in a for a in found):
            raise ConfigError(f"{self._where('address')} must be an OSC address like \"/1/xy1\", or a list of them")
        for address in found:
            if address.startswith(CANONICAL_PREFIX):
                raise ConfigError(f"{self._where('address')} {address}: {CANONICAL_PREFIX}... addresses are canonical and always accepted")
        return found

    def flag(self, key: str) -> bool:
        value = self.body.get(key, False)
        if not isinstance(value, bool):
            raise ConfigError(f"{self._where(key)} must be true or false, not {value!r}")
        return value

    def range(self, key: str, default: tuple[float, float]) -> tuple[float, float]:
        if key not in self.body:
            return default
        value = self.body[key]
        ok = (
            isinstance(value, list)
            and len(value) == 2
            and all(isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v) for v in value)
            and value[0] != value[1]
        )
        if not ok:
            raise ConfigError(f"{self._where(key)} must be two different numbers [low, high] that the control sends, not {value!r}")
        return (float(value[0]), float(value[1]))


# ---------------------------------------------------------------------------
# The state holder


def _canonical_routes(latent_size: int | None) -> dict[str, Callable[[Sequence[Any]], dict[str, Any]]]:
    def xy(args):
        x, y = _numbers(args, 2)
        return {"x": x, "y": y, "z": None}

    def z(args):
        if not args or (latent_size is not None and len(args) != latent_size):
            raise _Rejected("wrong_args")
        return {"z": [_as_number(a) for a in args]}

    def one(name):
        return lambda args: {name: _numbers(args, 1)[0]}

    return {
        "/vrae/xy": xy,
        "/vrae/z": z,
        "/vrae/density": one("density"),
        "/vrae/temperature": one("temperature"),
        "/vrae/velocity": one("velocity"),
        "/vrae/transpose": one("transpose"),
        "/vrae/channel": one("channel"),
        "/vrae/hold": lambda args: {"hold": _numbers(args, 1)[0] != 0},
        "/vrae/panic": lambda args: {"panic": True},
    }


class Controls:
    """The current ControlState, set from OSC datagrams by one thread, read by others.

    ``stats`` counts every datagram (``datagrams``), every applied message
    (``accepted``, and ``clamped`` among them), and every dropped one by
    reason: ``malformed``, ``unsupported_type``, ``wrong_args``, ``wrong_type``,
    ``not_finite``, ``unknown_address``, ``held`` (a position while hold is on),
    ``button_release``, ``empty`` (a bundle without messages), ``error``.
    """

    def __init__(
        self,
        controller: ControllerMap | None = None,
        *,
        latent_size: int | None = None,
        initial: ControlState | None = None,
    ) -> None:
        """``latent_size``: the length a ``/vrae/z`` vector must have; None accepts any length."""
        self.controller = controller or CANONICAL
        self.latent_size = latent_size
        # A preset's own addresses never shadow canonical ones (the loader rejects /vrae/...).
        self._routes = {**self.controller.routes(), **_canonical_routes(latent_size)}
        self._state = initial or ControlState()
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

    def handle_message(self, address: str, args: Sequence[Any]) -> None:
        """Apply one message. Never raises: bad input is counted and dropped."""
        route = self._routes.get(address)
        if route is None:
            self._count("unknown_address", address)
            return
        try:
            changes, clamped = _fit_changes(route(args))
        except _Rejected as rejected:
            self._count(rejected.reason, f"{address} {list(args)!r}")
            return
        except Exception:
            log.debug("unexpected error handling %s %r", address, args, exc_info=True)
            self._count("error")
            return
        self._apply(changes, clamped)

    def _apply(self, changes: dict[str, Any], clamped: bool) -> None:
        with self._changed:
            state = self._state
            if state.hold and "hold" not in changes and POSITION_FIELDS & changes.keys():
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

    def _count(self, reason: str, detail: str = "") -> None:
        with self._changed:
            self._stats[reason] += 1
            n = self._stats[reason]
        # With --verbose: the first of each kind, then the 10th, 100th, ... so a flood of bad
        # packets cannot flood the terminal (and, through the GIL, the clock).
        if reason != "datagrams" and log.isEnabledFor(logging.DEBUG) and str(n).strip("0") == "1":
            log.debug(f"OSC ignored ({reason}, {n} so far): {detail}")
