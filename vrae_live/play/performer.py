"""The performer: controls in, stream decoder, notes, clock, MIDI out.

One thread, one loop: wait for the frame clock's next absolute deadline, send that
frame's note events (with the current transpose, channel and velocity), then decode the
next frame from the latest control state: the look-ahead is one frame. Decoding happens
right after a tick's MIDI has gone out, with a whole frame period before the next
deadline, so it never delays the output as long as a frame decodes within a period (a
frame of the shipped model takes about 0.1 ms; a frame that begins a window, with
its teacher-forced pass over the context, a few milliseconds; a second Python thread
decoding beside the clock was measured to add 3-9 ms of jitter through the GIL). A pad
move reaches the next frame decoded: it is heard at most two frames after it arrives (one
if it arrives before the tick's decode). How the stream takes a new z a frame at a time:
``stream.py``. A decode slower than a frame makes the next tick late, and the clock
counts it. Every note switched on is switched off: on stop, on panic, and on any error
(``MidiSink.close`` panics in a finally). ``serve`` runs this loop at realtime priority
where the system permits (``realtime.py``).
"""

from __future__ import annotations

import dataclasses
import logging
import threading
from collections import deque
from dataclasses import dataclass, field
from typing import Callable

import numpy as np

from ..checkpoint import Checkpoint
from ..config import DEFAULT_BPM
from ..pad import Glide
from .clock import FrameClock
from .demo import DemoPath
from .notes import NoteEmitter, NoteSettings
from .sink import MidiSink
from .state import ControlSource, ControlState
from .stream import Stream, live_hop, live_stream

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class PerformanceSettings:
    hop: int | None = None  # frames per decoded hop; None: the checkpoint's if it overlaps, else window // 2
    glide_s: float = 0.25  # seconds for the latent to cover 63 % of a jump of the pad
    bpm: float = DEFAULT_BPM  # the tempo of a beat-based model
    notes: NoteSettings = field(default_factory=NoteSettings)
    seed: int = 0
    demo: bool = False  # tour the pad on its own until the controller sends a position
    voices: int = 1  # streams played at once, one per finger (play/voices.py); 1: the one stream below


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


class Performer:
    def __init__(
        self,
        checkpoint: Checkpoint,
        controls: ControlSource,
        sink: MidiSink | None,
        settings: PerformanceSettings = PerformanceSettings(),
        clock: FrameClock | None = None,
        on_frame: Callable[[int, ControlState], None] | None = None,
    ):
        self.checkpoint = checkpoint
        self.controls = controls
        self.sink = sink
        self.settings = settings
        self.pitches = checkpoint.pitches
        self.plane = checkpoint.latent_plane()
        self.period_s = checkpoint.timing.frame_seconds(settings.bpm)
        self.hop = live_hop(checkpoint, settings.hop)
        self.stream = self.make_stream()
        self.glide = Glide(settings.glide_s)
        self.demo = DemoPath.for_songs(checkpoint.song_spots()) if settings.demo else None
        self.emitter = NoteEmitter(settings.notes)
        self.clock = clock or FrameClock(self.period_s)
        self.on_frame = on_frame
        self.stats = PerformanceStats()
        self.stop_event = threading.Event()
        self.stop_reason: str | None = None  # why run() ended early: "SIGINT", "the JACK server went away", ...
        self._stop_error: BaseException | None = None
        self._buffer: deque[tuple[np.ndarray, np.ndarray]] = deque()  # (probs, frame): the frame decoded ahead
        self._reset_stream = False
        self.current_z: np.ndarray | None = None
        self.clock_out = None  # a sync.clock_out.ClockSender (serve --send-clock), driven from this loop

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

    def make_stream(self) -> Stream:
        """The stream this performer decodes: one voice."""
        s = self.settings
        return live_stream(self.checkpoint, self.hop, s.notes, s.seed)

    # -- decoding ----------------------------------------------------------------

    def decode_frame(self) -> None:
        """Decode the frame after the buffered ones from the control state of this moment."""
        state = self.control_state(self.stats.frames + len(self._buffer))  # the frame being decoded
        if self._reset_stream:
            self._reset_stream = False
            self.stream.reset()
        z = self.glide.step(self.plane.target(state.z, state.x, state.y), self.period_s)
        self.current_z = z
        decoded = self.stream.next_frame(z, state.density, state.temperature)
        self._buffer.append((decoded.probs, decoded.frame))
        self.stats.count_join(decoded.join)

    # -- play loop ---------------------------------------------------------------

    def play_frame(self, state: ControlState) -> None:
        probs, frame = self._buffer.popleft()
        events = self.emitter.step(
            frame, probs, self.pitches,
            velocity=state.velocity or None, transpose=state.transpose, channel=state.channel - 1,
        )
        self.sink.send_events(events)
        self.stats.notes_on += sum(e.kind == "on" for e in events)
        self.stats.frames += 1

    def send_all_off(self) -> None:
        """Offs for every note this performer switched on (a voice performer: of every voice)."""
        self.sink.send_events(self.emitter.all_off())

    def panic(self) -> None:
        """Silence now: every sounding note off, then All Notes Off. The frame of the panic is
        silent, the frame decoded ahead is dropped, and the stream starts afresh after it."""
        self.send_all_off()
        self.sink.panic()
        self._buffer.clear()
        self._reset_stream = True
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
        """Play until ``stop()`` (or ``max_frames``); always ends with every note off.

        ``sink`` may be given after construction (``serve`` opens the MIDI port last), but before this.
        """
        if self.sink is None:
            raise RuntimeError("the performer has no sink to play to")
        self.decode_frame()  # the first frame before the clock starts, so the take starts on time
        panics_seen = self.controls.snapshot().panic_count
        if hasattr(self.clock, "on_stop"):  # a clock with a transport (live/sync): its Stop silences
            self.clock.on_stop = self.silence
        try:
            self.clock.start()
            while not self.stop_event.is_set():
                tick = self.clock.wait()
                if self.stop_event.is_set():  # a transport clock's wait() returns early when woken by stop()
                    break
                if tick is None:  # a clock held by a stopped transport
                    continue
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
            report = getattr(self.clock, "report", None)
            if report is not None:
                self.stats.clock = report()
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
        wake = getattr(self.clock, "wake", None)  # a transport clock may be waiting for Start: let it return
        if wake is not None:
            wake()
