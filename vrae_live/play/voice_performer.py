"""The performer with several voices (``serve --voices N``): the same clock loop, a voice bank
in place of the one stream.

Each tick sends every voice's note events for that frame (voice k on its own channel, or its
own port), then decodes the next frame of every sounding voice in one batched call
(``voices.py``, ``stream.py``). Touches are read when a frame is decoded, so a touch
down is heard on the next frame, like a pad move. Panic, a transport's Stop and the end of
the take switch off the notes of every voice.
"""

from __future__ import annotations

from typing import Callable, Sequence

from ..checkpoint import Checkpoint
from .clock import FrameClock
from .notes import NoteEvent
from .performer import PerformanceSettings, Performer
from .sink import MidiSink
from .state import ControlSource, ControlState
from .stream import Stream, live_stream
from .voices import VoiceBank


def frames_per_beat(period_s: float, bpm: float) -> int:
    """Frames in one beat at ``bpm`` (at least 1): how long a released voice takes to fade."""
    return max(1, round(60.0 / bpm / period_s))


class VoicePerformer(Performer):
    """A Performer of ``settings.voices`` voices. ``voice_sinks``: a sink per voice (``--voice-ports``);
    None: every voice plays on ``sink``, on its own channel."""

    def __init__(self, checkpoint: Checkpoint, controls: ControlSource, sink: MidiSink | None,
                 settings: PerformanceSettings = PerformanceSettings(), clock: FrameClock | None = None,
                 on_frame: Callable[[int, ControlState], None] | None = None,
                 voice_sinks: Sequence[MidiSink] | None = None):
        if controls.voices < settings.voices:
            raise ValueError(f"the controls know {controls.voices} voices, the performer plays {settings.voices}")
        super().__init__(checkpoint, controls, sink, settings, clock, on_frame)
        beat = frames_per_beat(self.period_s, settings.bpm)
        self.bank = VoiceBank(self.stream, self.plane, self.pitches, self.period_s, settings.glide_s, settings.notes,
                              attack=max(1, beat // 2), release=beat, own_ports=voice_sinks is not None)
        self.voice_sinks = list(voice_sinks) if voice_sinks is not None else None

    def make_stream(self) -> Stream:
        """The stream of every voice, one row each."""
        s = self.settings
        return live_stream(self.checkpoint, self.hop, s.notes, s.seed, voices=s.voices)

    def _send(self, k: int, events: list[NoteEvent]) -> None:
        (self.voice_sinks[k] if self.voice_sinks is not None else self.sink).send_events(events)

    def decode_frame(self) -> None:
        state = self.control_state(self.stats.frames + len(self._buffer))
        if self._reset_stream:
            self._reset_stream = False
            self.bank.reset()
        frame = self.bank.decode(state)
        self.current_z = self.bank.current_z[0]
        self._buffer.append(frame)
        for decoded in frame.decoded.values():
            self.stats.count_join(decoded.join)

    def play_frame(self, state: ControlState) -> None:
        frame = self._buffer.popleft()
        for k, events in self.bank.play(frame, state):
            self._send(k, events)
            self.stats.notes_on += sum(e.kind == "on" for e in events)
        self.stats.frames += 1

    def send_all_off(self) -> None:
        for k, events in self.bank.all_off():
            self._send(k, events)


def make_performer(checkpoint: Checkpoint, controls: ControlSource, settings: PerformanceSettings,
                   clock: FrameClock | None = None) -> Performer:
    """One stream (``settings.voices`` 1, today's Performer exactly) or a voice bank."""
    if settings.voices == 1:
        return Performer(checkpoint, controls, None, settings, clock=clock)
    return VoicePerformer(checkpoint, controls, None, settings, clock=clock)
