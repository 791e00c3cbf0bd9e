"""The performer: controls in, stream, notes, clock, MIDI out; one loop for one voice, for
several (``serve --voices N``) and for an offline take.

Its state has a voice axis: a :class:`~vrae_live.play.voices.VoiceBank` over one
:class:`~vrae_live.play.stream.Stream`, one voice a bank of one. One thread, one loop: wait
for the clock's next tick, send that frame's note events of every voice (with the current
transpose, channel and velocity), then decode the next frame of every sounding voice in one
batched call from the latest control state: the look-ahead is one frame. Decoding happens
right after a tick's MIDI has gone out, with a whole frame period before the next deadline,
so it never delays the output as long as a frame decodes within a period (a frame that begins
a window takes a few milliseconds, the others far less; a second Python thread decoding beside
the clock would add milliseconds of jitter through the GIL: docs/benchmarks.md, "Decode time
per frame" and "The frame clock and the GIL"). A pad move or a touch reaches the next
frame decoded: it is heard at most two frames after it arrives (one if it arrives before the
tick's decode). How the stream takes a new z a frame at a time: ``stream.py``. A decode slower
than a frame makes the next tick late, and the clock counts it.

The clock is any :class:`~vrae_live.play.clock.Clock`: our own :class:`FrameClock`, a sync
source's (``live/sync``), or an :class:`OfflineClock` that does not sleep (``offline/render.py``
renders a take through this loop). Every note switched on is switched off: on stop, on panic,
on a transport's Stop, and on any error (``MidiSink.close`` panics in a finally). ``serve``
runs this loop at realtime priority where the system permits (``realtime.py``).
"""


from __future__ import annotations

import dataclasses
import logging
import threading
from collections import deque
from dataclasses import dataclass, field
from typing import Callable, Protocol, Sequence

import numpy as np

from ..checkpoint import Checkpoint
from ..config import DEFAULT_BPM
from .clock import Clock, FrameClock
from .demo import DemoPath
from .notes import NoteSettings
from .sink import MidiSink, TeeSink
from .state import ControlSource, ControlState
from .stream import live_hop, live_stream
from .voices import VoiceBank, VoicesFrame

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class PerformanceSettings:
    hop: int | None = None  # frames per decoded hop; None: the checkpoint's if it overlaps, else window // 2
    glide_s: float = 0.25  # seconds for the latent to cover 63 % of a jump of the pad
    bpm: float = DEFAULT_BPM  # the tempo of a beat-based model
    notes: NoteSettings = field(default_factory=NoteSettings)
    seed: int = 0
    demo: bool = False  # tour the pad on its own until the controller sends a position
    voices: int = 1  # streams played at once, one per finger (play/voices.py)
    key_cut: bool = False  # a new key or chord ends the notes outside it at once (play/key.py)


@dataclass
class PerformanceStats:
    frames: int = 0
    notes_on: int = 0
    hops: int = 0  # windows begun on the hop grid
    reanchors: int = 0  # windows begun mid-hop because the pad moved (a model fed z only in h_0)
    late_ticks: int = 0
    lateness_p99_s: float = 0.0  # how late the clock's ticks came, 99th percentile and worst
    lateness_max_s: float = 0.0
    panics: int = 0
    clock: str = ""  # what a followed clock did (lost ticks, ...), from its report(); "" for our own clock

    def count_join(self, join: str | None) -> None:
        """Count how a decoded frame joined the one before: on the hop grid, or re-anchored by a move."""
        if join == "hop":
            self.hops += 1
        elif join == "move":
            self.reanchors += 1

    def line(self) -> str:
        return (f"{self.frames} frames, {self.notes_on} notes, {self.hops} hops decoded, "
                f"{self.late_ticks} late ticks (p99 {1000 * self.lateness_p99_s:.2f} ms, "
                f"max {1000 * self.lateness_max_s:.2f} ms late), {self.panics} panics"
                + (f"; {self.clock}" if self.clock else ""))


class ClockOut(Protocol):
    """MIDI clock sent from the play loop (``serve --send-clock``: ``live/sync/clock_out.py``)."""

    running: bool

    def at_frame(self, k: int) -> None:
        """Right after frame ``k``'s tick, before its notes."""

    def until_next(self, k: int) -> None:
        """After frame ``k``'s work: the clock ticks due before the next frame."""

    def stop(self) -> None:
        """Stop (0xFC), after the last note-off."""


def frames_per_beat(period_s: float, bpm: float) -> int:
    """Frames in one beat at ``bpm`` (at least 1): how long a released voice takes to fade."""
    return max(1, round(60.0 / bpm / period_s))


class Performer:
    """Plays ``settings.voices`` voices from ``controls`` into ``sink``, one frame a tick of ``clock``.

    sink: one sink for every voice (voice k on channel ``channel + k``), or a sink per voice
        (``serve --voice-ports``: each voice on its own port, all on ``channel``); a panic and
        the close reach each of them.
    clock: default a FrameClock at the checkpoint's frame period; its Stop (a transport's) silences.
    on_frame(index, state): called after each tick's frame; ``played`` is the frame just played.
    clock_out: MIDI clock sent from this loop, locked to the frames.
    """

    def __init__(
        self,
        checkpoint: Checkpoint,
        controls: ControlSource,
        sink: MidiSink | Sequence[MidiSink],
        settings: PerformanceSettings = PerformanceSettings(),
        clock: Clock | None = None,
        on_frame: Callable[[int, ControlState], None] | None = None,
        *,
        clock_out: ClockOut | None = None,
    ):
        if controls.voices < settings.voices:
            raise ValueError(f"the controls know {controls.voices} voices, the performer plays {settings.voices}")
        own_ports = not isinstance(sink, MidiSink)
        self.voice_sinks = list(sink) if own_ports else [sink] * settings.voices
        if len(self.voice_sinks) != settings.voices:
            raise ValueError(f"{len(self.voice_sinks)} sinks for {settings.voices} voices")
        self.sink = TeeSink(*self.voice_sinks) if own_ports else sink  # what a panic and the close reach
        self.checkpoint = checkpoint
        self.controls = controls
        self.settings = settings
        self.pitches = checkpoint.pitches
        self.plane = checkpoint.latent_plane()
        self.period_s = checkpoint.timing.frame_seconds(settings.bpm)
        self.hop = live_hop(checkpoint, settings.hop)
        beat = frames_per_beat(self.period_s, settings.bpm)
        self.bank = VoiceBank(live_stream(checkpoint, self.hop, settings.notes, settings.seed, voices=settings.voices),
                              self.plane, self.pitches, self.period_s, settings.glide_s, settings.notes,
                              attack=max(1, beat // 2), release=beat, own_ports=own_ports, key_cut=settings.key_cut)
        self.demo = DemoPath.for_songs(checkpoint.song_spots()) if settings.demo else None
        self.clock = clock or FrameClock(self.period_s)
        self.clock.on_stop = self.silence  # a transport's Stop (live/sync) silences every voice
        self.clock_out = clock_out
        self.on_frame = on_frame
        self.stats = PerformanceStats()
        self.stop_event = threading.Event()
        self.stop_reason: str | None = None  # why run() ended early: "SIGINT", "the JACK server went away", ...
        self._stop_error: BaseException | None = None
        self._buffer: deque[VoicesFrame] = deque()  # the frame decoded ahead
        self._next_tick = 0  # the clock's tick the frame decoded next is played on
        self._reset_stream = False
        self.current_z: np.ndarray | None = None  # voice 1's z of the frame last decoded
        self.played: VoicesFrame | None = None  # the frame of the last tick; None when a panic silenced it

    def control_state(self, frame: int) -> ControlState:
        """The controller's state, with the demo's pad position at ``frame`` while the demo drives."""
        state = self.controls.snapshot()
        if self.demo is None:
            return state
        if state.touched:
            log.info("the controller took over from the demo")
            self.demo = None
            return state
        x, y = self.demo.at(frame * self.period_s)
        return dataclasses.replace(state, x=x, y=y, z=None)

    # -- decoding ----------------------------------------------------------------

    def decode_frame(self) -> None:
        """Decode the frame after the buffered ones, every sounding voice's, from the control state of this moment."""
        state = self.control_state(self.stats.frames + len(self._buffer))  # the frame being decoded
        if self._reset_stream:
            self._reset_stream = False
            self.bank.reset()
        self.bank.stream.align(self.clock.song_step(self._next_tick))  # a model of the meter plays in the bar
        frame = self.bank.decode(state)
        self.current_z = self.bank.current_z[0]
        self._buffer.append(frame)
        for decoded in frame.decoded.values():
            self.stats.count_join(decoded.join)

    # -- play loop ---------------------------------------------------------------

    def play_frame(self, state: ControlState) -> None:
        frame = self._buffer.popleft()
        for k, events in self.bank.play(frame, state):
            self.voice_sinks[k].send_events(events)
            self.stats.notes_on += sum(e.kind == "on" for e in events)
        self.played = frame
        self.stats.frames += 1

    def send_all_off(self) -> None:
        """Offs for every note this performer switched on, of every voice."""
        for k, events in self.bank.all_off():
            self.voice_sinks[k].send_events(events)

    def panic(self) -> None:
        """Silence now: every sounding note off, then All Notes Off. The frame of the panic is
        silent, the frame decoded ahead is dropped, and the stream starts afresh after it."""
        self.send_all_off()
        self.sink.panic()
        self._buffer.clear()
        self._reset_stream = True
        self.played = None
        self.stats.panics += 1
        self.stats.frames += 1

    def silence(self, why: str = "stop") -> None:
        """The transport stopped (a sync source's Stop): every sounding note off, then All Notes Off,
        at once, and MIDI clock Stop if we send clock. Not a panic: nothing is counted, the decoded
        frames stay, and play resumes from them."""
        self.send_all_off()
        self.sink.panic()
        if self.clock_out is not None:
            self.clock_out.stop()

    def _stop_clock_out(self) -> None:
        """MIDI clock Stop after the take's last note-off (the port's panic sends its note-offs first)."""
        if self.clock_out is None or not self.clock_out.running:
            return
        try:
            self.sink.panic()
            self.clock_out.stop()
        except Exception as err:  # noqa: BLE001 -- the port is going; close() still tries its note-offs
            log.debug("MIDI clock stop not sent: %s", err)

    def run(self, max_frames: int | None = None) -> PerformanceStats:
        """Play until ``stop()`` (or ``max_frames``); always ends with every note off."""
        self.decode_frame()  # the first frame before the clock starts, so the take starts on time
        panics_seen = self.controls.snapshot().panic_count
        try:
            self.clock.start()
            while not self.stop_event.is_set():
                tick = self.clock.wait()
                if self.stop_event.is_set():  # a transport clock's wait() returns early when woken by stop()
                    break
                if tick is None:  # a clock held by a stopped transport
                    continue
                self._next_tick = tick.index + 1  # the tick the frame decoded next is played on
                if self.clock_out is not None:
                    self.clock_out.at_frame(tick.index)
                state = self.control_state(self.stats.frames)
                if state.panic_count != panics_seen:
                    panics_seen = state.panic_count
                    self.panic()
                else:
                    self.play_frame(state)
                if self.on_frame is not None:
                    self.on_frame(tick.index, state)
                if max_frames is not None and self.stats.frames >= max_frames:
                    break
                if not self._buffer:
                    self.decode_frame()
                if self.clock_out is not None:
                    self.clock_out.until_next(tick.index)
        finally:
            self.stop_event.set()
            try:
                self.send_all_off()
            finally:
                try:
                    self._stop_clock_out()
                finally:
                    self.sink.close()  # panic: note-offs for anything sounding, then CC 123 per channel
            self.stats.late_ticks = self.clock.late_ticks
            self.stats.clock = self.clock.report()
            if self.clock.lateness:
                self.stats.lateness_p99_s = self.clock.lateness.percentile(99)
                self.stats.lateness_max_s = self.clock.lateness.max
        if self._stop_error is not None:
            raise self._stop_error
        return self.stats

    def stop(self, reason: str = "stopped", error: BaseException | None = None) -> None:
        """End ``run()`` at the next tick (from any thread or a signal handler); with ``error``,
        ``run()`` raises it once every note is off."""
        if not self.stop_event.is_set():
            self.stop_reason = reason
            self._stop_error = error
        self.stop_event.set()
        self.clock.wake()  # a transport's clock may be waiting for Start: let it return
