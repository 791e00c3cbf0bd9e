"""Several voices, one per finger: each its own place on the pad, stream, notes and MIDI channel.

Two parts, kept apart so that the note logic is tested without a model:

- :class:`VoiceNotes` is one voice's life over touches, pure: a touch down starts it from
  silence with its velocities rising over ``attack`` frames (so it comes in, not on with a
  full chord at once), a touch up lowers them over ``release`` frames (a beat) and then
  switches every note of the voice off and stops decoding it. A touch down during the
  release takes the voice up again where it is, its stream running on. Every note
  remembers its channel (``NoteEmitter``), so no note hangs when a voice stops, starts or
  changes channel.
- :class:`VoiceBank` drives N of them from the control state with one
  :class:`~vrae_live.play.stream.Stream`: each frame, every sounding voice is
  decoded in one batched model call, each from its own z (its pad position through its own
  glide) and density.

Voice k (0-based here, ``/vrae/voice/{k+1}/...`` outside) plays on MIDI channel
``channel + k`` (wrapping after 16), or on ``channel`` when each voice has its own port.
A bank of one voice (``serve --voices 1``, the offline takes) plays it whatever the touches
say, at full level from its first frame. Pure: no sockets or ports; the performer
(``performer.py``) sends what it returns.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import NamedTuple, Sequence

import numpy as np

from ..pad import Glide, LatentPlane
from .key import Lean, lean_for, signature
from .notes import NoteEmitter, NoteEvent, NoteSettings
from .state import ControlState, Voice
from .stream import DecodedFrame, Stream

_EPS = 1e-9


class VoicePlan(NamedTuple):
    """What one voice does on one frame, decided when the frame is decoded (a tuple: one a voice a frame)."""

    decodes: bool  # the stream decodes this voice this frame
    starts: bool  # from silence: its stream starts afresh
    gain: float  # 0..1, scales the velocity of the notes it starts
    ends: bool  # the release is over: every note of the voice off, and it stops


SILENT = VoicePlan(decodes=False, starts=False, gain=0.0, ends=False)


class VoiceNotes:
    """One voice over touches: its level (attack and release) and its notes.

    ``plan(touching)`` once per decoded frame says what the voice does; ``play(plan, ...)``
    once per played frame turns the plan and the decoded frame into note events.
    """

    def __init__(self, settings: NoteSettings | None = None, attack: int = 2, release: int = 4) -> None:
        if attack < 1 or release < 1:
            raise ValueError(f"attack and release are at least 1 frame, not {attack} and {release}")
        self.attack, self.release = attack, release
        self.emitter = NoteEmitter(settings)
        self.level = 0.0  # 0: silent; rises by 1/attack a frame while touched, falls by 1/release after
        self.sounding_voice = False  # decoding: touched, or releasing
        self._releasing = False

    @property
    def phase(self) -> str:
        if not self.sounding_voice:
            return "silent"
        return "releasing" if self._releasing else "sounding"

    def plan(self, touching: bool) -> VoicePlan:
        if touching:
            starts = not self.sounding_voice
            if starts:
                self.level = 0.0
            self.sounding_voice, self._releasing = True, False
            self.level = min(1.0, self.level + 1.0 / self.attack)
            return VoicePlan(decodes=True, starts=starts, gain=self.level, ends=False)
        if not self.sounding_voice:
            return SILENT
        self._releasing = True
        self.level -= 1.0 / self.release
        if self.level <= _EPS:
            self.level, self.sounding_voice, self._releasing = 0.0, False, False
            return VoicePlan(decodes=False, starts=False, gain=0.0, ends=True)
        return VoicePlan(decodes=True, starts=False, gain=self.level, ends=False)

    def play(self, plan: VoicePlan, decoded: DecodedFrame | None, pitches: Sequence[int], *,
             velocity: int | None = None, transpose: int = 0, channel: int = 0,
             busy: frozenset[tuple[int, int]] = frozenset()) -> list[NoteEvent]:
        """The events of one frame: the decoded frame's notes at the plan's gain, or all off at the end.
        ``busy``: (channel, note) pairs other voices hold, which this one leaves alone."""
        if plan.ends:
            return self.emitter.all_off()
        if decoded is None:
            return []
        return self.emitter.step(decoded.frame, decoded.probs, pitches, velocity=velocity, transpose=transpose,
                                 channel=channel, gain=plan.gain, busy=busy, struck=decoded.struck)

    def all_off(self) -> list[NoteEvent]:
        return self.emitter.all_off()


@dataclass(frozen=True)
class VoiceOutput:
    """How voice k's new notes go out: velocity (None: from probability), transpose, channel 0..15."""

    velocity: int | None
    transpose: int
    channel: int


def play_voices(voices: Sequence[VoiceNotes], plans: Sequence[VoicePlan], decoded: dict[int, DecodedFrame],
                pitches: Sequence[int], outputs: Sequence[VoiceOutput],
                own_ports: bool = False) -> list[tuple[int, list[NoteEvent]]]:
    """Every voice's events for one frame, offs of all voices first. A voice does not start a
    (channel, note) another voice holds: after a channel change two voices may share a channel
    for a while, and a note switched off by one must not silence (or double) the other's. Voices
    on ports of their own (``own_ports``) share nothing."""
    ending = [(k, voices[k].play(plan, None, pitches)) for k, plan in enumerate(plans) if plan.ends]
    played = [(k, events) for k, events in ending if events]
    holds = [frozenset() if own_ports else v.emitter.sounding for v in voices]  # renewed as a voice's notes change
    for k, plan in enumerate(plans):
        if plan.ends:
            continue
        out = outputs[k]
        events = voices[k].play(plan, decoded.get(k), pitches, velocity=out.velocity, transpose=out.transpose,
                                channel=out.channel, busy=frozenset().union(*holds[:k], *holds[k + 1:]))
        if events:
            played.append((k, events))
            if not own_ports:
                holds[k] = voices[k].emitter.sounding
    return played


def voice_channel(base: int, k: int, own_ports: bool = False) -> int:
    """MIDI channel 0..15 of voice ``k`` (0-based) when voice 1 plays on ``base`` (1..16)."""
    return base - 1 if own_ports else (base - 1 + k) % 16


@dataclass
class VoicesFrame:
    """One decoded frame of every voice: its plan, and its frame and z where it decoded."""

    plans: list[VoicePlan]
    decoded: dict[int, DecodedFrame]
    zs: dict[int, np.ndarray]


class VoiceBank:
    """N voices over one model: plans from touches, one batched decode, notes per voice.
    A bank of one ignores touches and comes in at full level (``attack`` 1)."""

    def __init__(self, stream: Stream, plane: LatentPlane, pitches: Sequence[int], period_s: float,
                 glide_s: float, settings: NoteSettings | None = None, attack: int = 2, release: int = 4,
                 own_ports: bool = False, key_cut: bool = False) -> None:
        self.stream = stream
        self.count = len(stream.voices)
        self.plane = plane
        self.pitches = list(pitches)
        self.period_s = period_s
        self.glide_s = glide_s
        self.own_ports = own_ports
        self.solo = self.count == 1
        self.notes = [VoiceNotes(settings, 1 if self.solo else attack, release) for _ in range(self.count)]
        self.glides = [Glide(glide_s) for _ in range(self.count)]
        self.current_z: list[np.ndarray | None] = [None] * self.count
        self._targets: list[tuple] = [((), None)] * self.count  # voice k's last (z, x, y) and the z it asks for
        self._resolved: tuple = (None, [], [])  # the last control state, its voices and their outputs
        self.key_cut = key_cut  # a new key or chord ends a voice's notes outside it at once
        self._leans: list[tuple] = [((), None)] * self.count  # voice k's last lean, and what it was worked out from

    def decode(self, state: ControlState) -> VoicesFrame:
        """Plan every voice from the touches of ``state`` and decode the sounding ones together."""
        plans, zs, densities, leans, cut = [], {}, {}, {}, set()
        for k, voice in enumerate(self._resolve(state)[0]):
            plan = self.notes[k].plan(voice.on or self.solo)
            plans.append(plan)
            if plan.starts:
                self.stream.start(k)
                self.glides[k] = Glide(self.glide_s)  # a new touch lands where it lands: no glide from the last
            elif plan.ends:
                self.stream.stop(k)
            if plan.decodes:
                zs[k] = self.current_z[k] = self.glides[k].step(self._target(k, voice), self.period_s)
                densities[k] = voice.density
                leans[k], changed = self._lean(k, voice, state)
                if changed and self.key_cut:
                    cut.add(k)
        decoded = self.stream.step(zs, densities, state.temperature, leans, frozenset(cut))
        return VoicesFrame(plans, decoded, zs)

    def _lean(self, k: int, voice: Voice, state: ControlState) -> tuple[Lean | None, bool]:
        """Voice ``k``'s lean to the key and the chord (``key.py``), worked out again only when they
        change; and whether its key, scale or chord changed since the last frame."""
        asked, lean = self._leans[k]
        now = (voice.key, voice.scale, state.chord, state.key_strength, voice.transpose)
        if now == asked:
            return lean, False
        lean = lean_for(self.pitches, voice.transpose, voice.key, voice.scale, state.key_strength, state.chord)
        self._leans[k] = (now, lean)
        # a decoder told the key plays in the key of the notes sent, before the voice's transpose
        self.stream.set_key(k, None if voice.key is None else signature(voice.key - voice.transpose, voice.scale))
        return lean, bool(asked) and now[:3] != asked[:3]

    def _target(self, k: int, voice: Voice) -> np.ndarray:
        """The z voice ``k``'s controls ask for, worked out again only when they change: the same
        objects (a control state's values are immutable) ask for the same z, bit for bit."""
        asked, target = self._targets[k]
        if len(asked) != 3 or any(a is not b for a, b in zip(asked, (voice.z, voice.x, voice.y))):
            asked = (voice.z, voice.x, voice.y)
            target = self.plane.target(*asked)
            self._targets[k] = (asked, target)
        return target

    def play(self, frame: VoicesFrame, state: ControlState) -> list[tuple[int, list[NoteEvent]]]:
        """Each voice's events for ``frame``, with the velocity, transpose and channel of ``state``."""
        return play_voices(self.notes, frame.plans, frame.decoded, self.pitches, self._resolve(state)[1], self.own_ports)

    def _resolve(self, state: ControlState) -> tuple[list[Voice], list[VoiceOutput]]:
        """Every voice's controls and outputs under ``state``, worked out once a state: a snapshot is the
        same object while no message changes it, and immutable."""
        if state is not self._resolved[0]:
            voices = [state.voice(k + 1) for k in range(self.count)]
            outputs = [VoiceOutput(voice.velocity or None, voice.transpose, voice_channel(state.channel, k, self.own_ports))
                       for k, voice in enumerate(voices)]
            self._resolved = (state, voices, outputs)
        return self._resolved[1], self._resolved[2]

    def all_off(self) -> list[tuple[int, list[NoteEvent]]]:
        """Offs for every sounding note of every voice."""
        return [(k, events) for k, notes in enumerate(self.notes) if (events := notes.all_off())]

    def reset(self) -> None:
        """After a panic: every voice's stream starts afresh (a touched voice at full level again)."""
        self.stream.reset()
