"""What a controller has set: the control state the performer reads, pure data (no OSC).

``live/controls.py`` turns OSC and web messages into it; the performer reads a snapshot at
its own pace through :class:`ControlSource`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

from .key import DEFAULT_KEY_STRENGTH


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
    on: bool = True  # voice 1 is touched (with --voices N; a single voice plays regardless)
    voices: tuple["VoiceControl", ...] = ()  # voices 2..N
    key: int | None = None  # the key's pitch class 0..11 (0 is C), or None: no key (play/key.py)
    scale: str = "major"  # a name of play/key.py's SCALES
    key_strength: float = DEFAULT_KEY_STRENGTH  # 0..1: 0 plays the model as it is, 1 scale (and chord) tones only
    chord: frozenset[int] = frozenset()  # pitch classes held on the follow input (serve --follow)

    def voice(self, k: int) -> "Voice":
        """Voice ``k`` (1..N) with every control resolved: its own, else the plain one."""
        if k == 1:
            return Voice(self.x, self.y, self.z, self.on, self.density, self.velocity, self.transpose, self.hold,
                         self.touched, self.key, self.scale)
        own = self.voices[k - 2]
        return Voice(own.x, own.y, own.z, own.on, self.density if own.density is None else own.density,
                     self.velocity if own.velocity is None else own.velocity,
                     self.transpose if own.transpose is None else own.transpose,
                     self.hold if own.hold is None else own.hold, own.touched,
                     self.key if own.key is None else own.key, self.scale if own.scale is None else own.scale)


@dataclass(frozen=True)
class VoiceControl:
    """What voice 2..N has of its own; None follows the plain control."""

    x: float = 0.5
    y: float = 0.5
    z: tuple[float, ...] | None = None
    on: bool = False  # touched: voices after the first wait for a touch
    density: float | None = None
    velocity: int | None = None
    transpose: int | None = None
    hold: bool | None = None
    touched: bool = False  # a position has come for this voice
    key: int | None = None
    scale: str | None = None


@dataclass(frozen=True)
class Voice:
    """One voice's controls, resolved (``ControlState.voice``)."""

    x: float
    y: float
    z: tuple[float, ...] | None
    on: bool
    density: float
    velocity: int
    transpose: int
    hold: bool
    touched: bool
    key: int | None = None
    scale: str = "major"


class ControlSource(Protocol):
    """Where the performer reads the controls: ``live.controls.Controls``, or a fixed state offline."""

    voices: int  # voices the controls know

    def snapshot(self) -> ControlState: ...

