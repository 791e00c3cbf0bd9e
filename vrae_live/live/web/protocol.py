"""What the page and the daemon say to each other over the WebSocket: JSON text, one object a message.

Pure: no sockets; ``server.py`` carries the text. The page sends one control at a time,

    {"set": "xy", "value": [0.2, 0.8], "seq": 17}     position on the pad, each 0..1
    {"set": "density", "value": 0.6}                  also temperature, velocity, transpose, hold
    {"set": "key", "value": 7}                        also scale ("dorian") and key-strength (0..1)
    {"set": "panic"}                                  all notes off

which :func:`parse_control` turns into the canonical OSC message (``/vrae/xy 0.2 0.8``), so
``Controls.handle_message`` validates and applies it exactly as it does a datagram from
TouchOSC. With a ``seq``, the daemon answers ``{"type": "applied", "seq": 17}`` once applied.

The daemon sends ``hello`` (the model, its map, the control ranges, the keys and scales) after connecting, then
``state`` (the controls, where the sound is, the status) whenever it changes.
"""

from __future__ import annotations

import json
import math
from dataclasses import asdict
from typing import Any, Callable

from ...play.key import NOTE_NAMES, SCALES
from ...play.state import ControlState
from ..controllers import CONTROL_RANGES

MAX_MESSAGE = 1024  # characters: a control message is under 100; anything longer is refused unread
SETTABLE = ("xy", "density", "temperature", "velocity", "transpose", "hold", "key", "scale", "key-strength", "panic")


class Ignored(Exception):
    """A message the daemon drops; ``reason`` is the counter it is counted under."""

    def __init__(self, reason: str):
        super().__init__(reason)
        self.reason = reason


def parse_control(text: str | bytes) -> tuple[str, list[Any], int | None]:
    """One message from the page as ``(address, args, seq)``; :class:`Ignored` when it is not one.

    Reasons: ``oversized``, ``binary``, ``bad_json``, ``unknown_control``, ``bad_seq``. The
    values themselves are checked by ``Controls``, as an OSC message's are.
    """
    if isinstance(text, bytes):
        raise Ignored("binary")
    if len(text) > MAX_MESSAGE:
        raise Ignored("oversized")
    try:
        message = json.loads(text)
    except ValueError:  # JSONDecodeError, and a number too deep to parse
        raise Ignored("bad_json") from None
    if not isinstance(message, dict):
        raise Ignored("bad_json")
    name, value, seq = message.get("set"), message.get("value"), message.get("seq")
    if name not in SETTABLE:
        raise Ignored("unknown_control")
    if seq is not None and (type(seq) is not int or not 0 <= seq < 2**53):
        raise Ignored("bad_seq")
    if name == "panic":
        args: list[Any] = []
    elif isinstance(value, list):
        args = value
    else:
        args = [value]
    return f"/vrae/{name}", args, seq


class RateLimit:
    """A token bucket: ``rate`` messages a second on average, bursts of up to ``burst``."""

    def __init__(self, rate: float, burst: float, clock: Callable[[], float]):
        self.rate, self.burst, self.clock = rate, burst, clock
        self._tokens, self._at = burst, clock()

    def allow(self) -> bool:
        now = self.clock()
        self._tokens = min(self.burst, self._tokens + (now - self._at) * self.rate)
        self._at = now
        if self._tokens >= 1:
            self._tokens -= 1
            return True
        return False


def _finite(value: Any) -> Any:
    return value if not isinstance(value, float) or math.isfinite(value) else None


def controls_of(state: ControlState) -> dict[str, Any]:
    """The control state as the page shows it (no ``z``: the page has no use for a whole vector)."""
    shown = {k: _finite(v) for k, v in asdict(state).items() if k not in ("z", "chord")}
    shown["z_set"] = state.z is not None
    shown["chord"] = sorted(state.chord)
    return shown


def hello(model: str, window_map: dict[str, Any] | None, status: dict[str, Any], state: ControlState,
          axes: dict[str, Any] | None = None) -> str:
    """``axes``: what the pad's edges play (``attributes.pad_labels``), None for a pad of the songs' directions."""
    ranges = {name: list(CONTROL_RANGES[control]) for name in SETTABLE
              if (control := name.replace("-", "_")) in CONTROL_RANGES}
    return json.dumps({"type": "hello", "model": model, "map": window_map, "ranges": ranges,
                       "controls": controls_of(state), "status": status, "axes": axes,
                       "keys": list(NOTE_NAMES), "scales": list(SCALES)})


def state_message(state: ControlState, status: dict[str, Any]) -> str:
    """``status``: where the sound is (``at``: pad position after the glide, demo included), tempo, sync, notes/s."""
    return json.dumps({"type": "state", "controls": controls_of(state), "status": status})


def applied(seq: int) -> str:
    return json.dumps({"type": "applied", "seq": seq})
