"""Controller dialects: the canonical controls, their units, and presets that map a controller onto them.

A controller preset (``presets/controllers/NAME.toml``) maps a controller's own addresses
(TouchOSC's ``/1/xy1 f f``, Lemur's ``/Pad.x``, a fader's 0..127) onto the canonical
``/vrae/...`` controls in canonical units; the file is checked by pydantic (``PresetFile``).
Pure: no sockets.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any, Callable, Mapping, Optional, Sequence

from annotated_types import Ge, MinLen
from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    ValidationError,
    create_model,
    field_validator,
    model_validator,
)

from ..config import Bool, Float, Int, Str, presets_dir, read_toml
from ..errors import ConfigError
from ..validation import error_message

# Canonical units of each control: (lowest, highest). Values outside are clamped.
CONTROL_RANGES: dict[str, tuple[float, float]] = {
    "x": (0.0, 1.0),
    "y": (0.0, 1.0),
    "density": (0.0, 1.0),
    "temperature": (0.0, 2.0),
    "velocity": (0, 127),
    "transpose": (-24, 24),
    "channel": (1, 16),
    "key_strength": (0.0, 1.0),
}
INTEGER_CONTROLS = frozenset({"velocity", "transpose", "channel"})
POSITION_FIELDS = frozenset({"x", "y", "z"})

CANONICAL_PREFIX = "/vrae/"


# ---------------------------------------------------------------------------
# Argument validation: each raises Rejected(reason), counted under that reason


class Rejected(Exception):
    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


def as_number(value: Any) -> float:
    """An OSC int, float or True/False as a finite float."""
    if isinstance(value, bool):
        return float(value)
    if not isinstance(value, (int, float)):
        raise Rejected("wrong_type")
    number = float(value)
    if not math.isfinite(number):
        raise Rejected("not_finite")
    return number


def exact_numbers(args: Sequence[Any], count: int) -> list[float]:
    if len(args) != count:
        raise Rejected("wrong_args")
    return [as_number(a) for a in args]



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
        first, second = exact_numbers(args, 2)
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
            if args and as_number(args[0]) == 0:
                raise Rejected("button_release")
            return {"panic": True}
        (value,) = exact_numbers(args, 1)
        if self.control == "hold":
            return {"hold": value != 0}
        changes: dict[str, Any] = {self.control: self.scale.to_control(value)}
        if self.control in POSITION_FIELDS:
            changes["z"] = None
        return changes

    def feedback(self, value: float) -> tuple[str, list[float]]:
        return self.addresses[0], [self.scale.from_control(value)]


MAX_TOUCHES = 16  # touches a multi-touch preset maps (voices beyond --voices are ignored)


@dataclass(frozen=True)
class VoicesMapping:
    """A multi-touch control mapped onto the voices: touch n (counted from ``first``) plays voice n - first + 1.

    Each of ``xy``, ``x``, ``y`` and ``on`` is either a pattern with ``{k}`` (one address per touch,
    TouchOSC's ``/1/multixy1/{k}``) or one address whose arguments list every touch (Lemur's
    ``/MultiBall/x f f f``; an ``xy`` list goes x1 y1 x2 y2 ...). ``touch`` is an address
    carrying ``index state`` pairs (Open Stage Control's touch messages).
    """

    xy: str | None = None
    x: str | None = None
    y: str | None = None
    on: str | None = None
    touch: str | None = None
    first: int = 1
    x_scale: Scale = Scale((0.0, 1.0), (0.0, 1.0))
    y_scale: Scale = Scale((0.0, 1.0), (0.0, 1.0))
    swap: bool = False

    def _voice(self, touch: float) -> int:
        if touch != int(touch):
            raise Rejected("wrong_args")
        return int(touch) - self.first + 1

    def _pair(self, first: float, second: float) -> dict[str, Any]:
        if self.swap:
            first, second = second, first
        return {"x": self.x_scale.to_control(first), "y": self.y_scale.to_control(second), "z": None}

    def routes(self) -> dict[str, Callable[[Sequence[Any]], dict[str, Any]]]:
        routes: dict[str, Callable[[Sequence[Any]], dict[str, Any]]] = {}

        def per_touch(pattern: str, make: Callable[[Sequence[Any]], dict[str, Any]]) -> None:
            for n in range(self.first, self.first + MAX_TOUCHES):
                routes[pattern.replace("{k}", str(n))] = lambda args, k=n - self.first + 1: {"voices": {k: make(args)}}

        def listing(address: str, width: int, make: Callable[[list[float]], dict[str, Any]]) -> None:
            def route(args):
                values = [as_number(a) for a in args]
                if not values or len(values) % width:
                    raise Rejected("wrong_args")
                return {"voices": {i + 1: make(values[i * width:(i + 1) * width])
                                   for i in range(min(len(values) // width, MAX_TOUCHES))}}
            routes[address] = route

        def on(args):
            return {"on": exact_numbers(args, 1)[0] != 0}

        if self.xy:
            if "{k}" in self.xy:
                per_touch(self.xy, lambda args: self._pair(*exact_numbers(args, 2)))
            else:
                listing(self.xy, 2, lambda v: self._pair(*v))
        for address, axis, scale in ((self.x, "x", self.x_scale), (self.y, "y", self.y_scale)):
            if address and "{k}" in address:
                per_touch(address, lambda args, a=axis, s=scale: {a: s.to_control(exact_numbers(args, 1)[0]), "z": None})
            elif address:
                listing(address, 1, lambda v, a=axis, s=scale: {a: s.to_control(v[0]), "z": None})
        if self.on and "{k}" in self.on:
            per_touch(self.on, on)
        elif self.on:
            listing(self.on, 1, lambda v: {"on": v[0] != 0})
        if self.touch:
            def touch(args):
                index, state = exact_numbers(args, 2)
                return {"voices": {self._voice(index): {"on": state != 0}}}
            routes[self.touch] = touch
        return routes

    def addresses(self) -> list[str]:
        return [a for a in (self.xy, self.x, self.y, self.on, self.touch) if a]


@dataclass(frozen=True)
class ControllerMap:
    """A controller's dialect: its addresses mapped onto the canonical ``/vrae/...`` ones."""

    name: str = "canonical"
    pair: PairMapping | None = None
    values: tuple[ValueMapping, ...] = ()
    status_address: str | None = None  # a label the feedback writes its status text to
    source: str | None = None  # the file it was read from
    voices: VoicesMapping | None = None  # a multi-touch control, one touch per voice

    def routes(self) -> dict[str, Callable[[Sequence[Any]], dict[str, Any]]]:
        """Address to a function from the message's arguments to changes in canonical units."""
        routes: dict[str, Callable[[Sequence[Any]], dict[str, Any]]] = {}
        if self.voices is not None:
            routes.update(self.voices.routes())
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
        if self.voices is not None:
            lines.append(f"{', '.join(self.voices.addresses())} -> /vrae/voice/K/... (touch {self.voices.first} is voice 1)")
        return lines


CANONICAL = ControllerMap()


# ---------------------------------------------------------------------------
# The preset file, checked by pydantic as config.py checks the model presets: whatever is
# wrong is one ConfigError line naming the file and the field, e.g.
# ``touchosc.toml: [xy] swap: expected true or false, got the string 'yes'``


def _osc_address(address: str) -> str:
    if not address.startswith("/") or " " in address:
        raise ValueError(f'must be an OSC address like "/1/xy1", not {address!r}')
    if address.startswith(CANONICAL_PREFIX):
        raise ValueError(f"{address} is canonical ({CANONICAL_PREFIX}...) and always accepted: map only the controller's own")
    return address


def _one_or_a_list(value: Any) -> Any:
    if isinstance(value, str):
        return [value]
    if not isinstance(value, list):
        raise ValueError('must be an OSC address like "/1/xy1", or a list of them')
    return value


def _two_different(value: list[float]) -> tuple[float, float]:
    if len(value) != 2 or value[0] == value[1]:
        raise ValueError(f"must be two different numbers [low, high] that the control sends, not {value!r}")
    return (value[0], value[1])


Address = Annotated[Str, AfterValidator(_osc_address)]
Addresses = Annotated[list[Address], BeforeValidator(_one_or_a_list), MinLen(1)]
SendsRange = Annotated[list[Float], AfterValidator(_two_different)]  # what the control sends, low to high


class _Table(BaseModel):
    model_config = ConfigDict(extra="forbid", allow_inf_nan=False, frozen=True)


class AddressTable(_Table):
    """``[hold]``, ``[panic]``, ``[status]``: only an address (or several)."""

    address: Addresses

    def mapping(self, control: str) -> ValueMapping:
        return ValueMapping(control, tuple(self.address))


class ControlTable(AddressTable):
    """``[x]``, ``[density]``, ...: one value onto one control; without ``range``, the control's own units."""

    invert: Bool = False
    range: Optional[SendsRange] = None

    def mapping(self, control: str) -> ValueMapping:
        units = CONTROL_RANGES[control]
        return ValueMapping(control, tuple(self.address), Scale(self.range or units, units, self.invert))


class _PadTable(_Table):
    """A pad's two axes: what it sends on both (``range``) or on one (``range_x``, ``range_y``)."""

    swap: Bool = False  # the control sends (y, x)
    invert_x: Bool = False
    invert_y: Bool = False
    range: SendsRange = (0.0, 1.0)
    range_x: Optional[SendsRange] = None
    range_y: Optional[SendsRange] = None

    def scales(self) -> tuple[Scale, Scale]:
        return (Scale(self.range_x or self.range, CONTROL_RANGES["x"], self.invert_x),
                Scale(self.range_y or self.range, CONTROL_RANGES["y"], self.invert_y))


class PairTable(_PadTable):
    """``[xy]``: one address carrying x and y together."""

    address: Addresses

    def mapping(self) -> PairMapping:
        return PairMapping(tuple(self.address), *self.scales(), swap=self.swap)


class VoicesTable(_PadTable):
    """``[voices]``: a multi-touch control, one touch a voice (VoicesMapping says how each address is read)."""

    xy: Optional[Address] = None
    x: Optional[Address] = None
    y: Optional[Address] = None
    on: Optional[Address] = None
    touch: Optional[Address] = None
    first: Annotated[Int, Ge(0)] = 1  # the number of the first touch (0 or 1)

    @field_validator("touch")
    @classmethod
    def _numbered_by_its_arguments(cls, touch: str | None) -> str | None:
        if touch is not None and "{k}" in touch:
            raise ValueError("carries the touch's number in its arguments: no {k}")
        return touch

    @model_validator(mode="after")
    def _positions(self) -> "VoicesTable":
        if not self.xy and not (self.x and self.y):
            raise ValueError("xy (or both x and y) is missing: the touches' positions")
        return self

    def mapping(self) -> VoicesMapping:
        x_scale, y_scale = self.scales()
        return VoicesMapping(xy=self.xy, x=self.x, y=self.y, on=self.on, touch=self.touch, first=self.first,
                             x_scale=x_scale, y_scale=y_scale, swap=self.swap)


VALUE_CONTROLS = (*CONTROL_RANGES, "hold", "panic")  # one address, one value: a ValueMapping each
TABLES: dict[str, type[_Table]] = {
    "xy": PairTable,
    **{control: ControlTable for control in CONTROL_RANGES},
    "hold": AddressTable,
    "panic": AddressTable,
    "status": AddressTable,
    "voices": VoicesTable,
}
PresetFile = create_model("PresetFile", __base__=_Table, name=(Optional[Str], None),
                          **{table: (Optional[cls], None) for table, cls in TABLES.items()})
KNOWN_KEYS: dict[tuple[str, ...], list[str]] = {  # listed after an unknown one, the address first
    (): list(PresetFile.model_fields),
    **{(table,): sorted(cls.model_fields, key=lambda key: key != "address") for table, cls in TABLES.items()},
}


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
    """A ControllerMap from a parsed preset; anything wrong is one ConfigError line naming ``source`` and the field."""
    try:
        preset = PresetFile.model_validate(d)
    except ValidationError as err:
        raise ConfigError(f"{source}: {error_message(err, known=KNOWN_KEYS, sections=TABLES)}") from None
    pair = preset.xy.mapping() if preset.xy is not None else None
    values = tuple(getattr(preset, control).mapping(control) for control in d if control in VALUE_CONTROLS)  # file order
    status = preset.status.address[0] if preset.status is not None else None
    voices = preset.voices.mapping() if preset.voices is not None else None
    name = preset.name if preset.name is not None else Path(source).stem
    controller = ControllerMap(name, pair, values, status, source, voices)
    seen: dict[str, str] = {address: "voices" for address in (voices.routes() if voices else ())}
    for mapping in ([pair] if pair else []) + list(values):
        for address in mapping.addresses:
            owner = "xy" if mapping is pair else mapping.control
            if address in seen:
                raise ConfigError(f"{source}: address {address} is mapped by both [{seen[address]}] and [{owner}]")
            seen[address] = owner
    return controller
