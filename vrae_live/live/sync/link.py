"""Ableton Link (``serve --sync link``): the performer's frames on the Link session's beat.

:class:`LinkClock` is a :class:`~vrae_live.play.clock.Clock` with Link's beat in place of
a fixed period: frame ``k`` is due when the session's beat reaches
``start_beat + k / steps_per_beat``, where ``start_beat`` is the first multiple of the
quantum (default 4 beats: a bar) at or after the clock starts. Deadlines are beats, not
seconds, so a tempo change mid-bar moves every later frame with it and keeps the phase.

The clock never runs an asyncio loop. It reads the session (``beat``, ``tempo``,
``playing``: aalink's properties, thread-safe C++ reads of about 0.2 us) between short
sleeps: it sleeps towards the next frame at the current tempo, at most ``max_sleep_s`` at
a time (a tempo change is followed within that), then spins on ``now()`` until the
deadline computed from the last snapshot (beat, tempo, time): ``play/clock.py``'s
:func:`~vrae_live.play.clock.sleep_then_spin`. aalink's own asyncio loop
(its callbacks: tempo, peers, start/stop) runs in a helper thread (:class:`LinkSession`).

Start/stop sync: once a peer with Start Stop Sync has started the session's transport, the
clock follows it. When the transport stops, ``wait()`` calls ``on_stop("stop")`` (the
performer sets it: it switches its notes off and sends MIDI Stop, as for MIDI clock's Stop) and holds until the
transport starts again,
then resumes on the next quantum boundary (a start seen up to one frame after a boundary is
taken as on it: that first frame is late). A session that has never played (no peer uses start/stop sync) does not hold
the clock: vrae-live plays on the beat grid from the start. ``wake()`` (the performer
stopping) ends a hold: ``wait()`` then returns None.

A jump of the session's beat (a peer moved the timeline; a session joined and its beat aligned
to ours by phase) re-aligns at once: between two readings the beat must have moved as the
tempo says (at the old tempo or the new one, if it changed in between); if it lands over half
a frame from that, the next frame is anchored on the next grid step of the new beat, rather than
played back to back with the frames the jump skipped, or after a silence as long as the jump
went back (``realigns``, in ``report()``). Our own stall (a beat that moved as the tempo says,
with frames left behind) is not a jump: ``resync_after_periods`` deals with it.

aalink and Link are GPL-2.0-or-later; vrae-live imports aalink only here, only for ``--sync
link`` (``pip install 'vrae-live[link]'``).
"""

from __future__ import annotations

import asyncio
import math
import threading
import time
from typing import Callable, Protocol

from ...errors import ConfigError
from ...play.clock import Tick, TickBook, sleep_then_spin

EPSILON_S = 1e-9
MISSING_AALINK = "--sync link needs the optional aalink package (GPL): pip install 'vrae-live[link]'"


class Session(Protocol):
    """What the clock reads: aalink.Link, or a fake with the same attributes."""

    beat: float  # the session's beat now (aligned to the quantum)
    tempo: float  # beats per minute
    playing: bool  # the transport (start/stop sync)


class LinkClock(TickBook):
    """Frames on a Link session's beat grid.

    steps_per_beat: frames per beat (the checkpoint's timing).
    quantum: beats; the first frame waits for the next multiple of it.
    late_tolerance_s, resync_after_periods, spin_s: as FrameClock's. Far behind (beyond
        ``resync_after_periods`` frames), the next frame is re-anchored on the grid step
        just passed, so the phase holds. The beat jumping back by more than a quantum (a
        session joined) re-anchors to the next grid step.
    max_sleep_s: the longest sleep between two readings of the session.
    poll_s: how often a held (stopped) clock reads the transport.
    """

    def __init__(self, session: Session, steps_per_beat: int, quantum: float = 4.0,
                 now: Callable[[], float] = time.monotonic, sleep: Callable[[float], None] = time.sleep, *,
                 late_tolerance_s: float | None = None, resync_after_periods: float = 3.0,
                 spin_s: float = 0.002, max_sleep_s: float = 0.02, poll_s: float = 0.005) -> None:
        if steps_per_beat < 1 or not quantum > 0:
            raise ValueError("steps_per_beat must be at least 1 and the quantum positive")
        super().__init__(late_tolerance_s)
        self.session = session
        self.steps_per_beat = int(steps_per_beat)
        self.quantum = float(quantum)
        self._now, self._sleep = now, sleep
        self.resync_after_periods = resync_after_periods
        self.spin_s, self.max_sleep_s, self.poll_s = spin_s, max_sleep_s, poll_s
        self.on_stop: Callable[[str], None] | None = None  # called in wait() when the transport stops
        self._woken = threading.Event()
        self._anchor_beat: float | None = None
        self._anchor_tick = 0
        self._next_tick = 0
        self._snapshot = (0.0, 0.0, float(session.tempo))  # (time, beat, tempo) last read
        self._previous = self._snapshot  # the reading before it
        self.seen_playing = False
        self.paused = False
        self.resyncs = 0
        self.realigns = 0  # jumps of the session's beat, after which the frames re-anchored on its grid
        self.pauses = 0

    # -- the session, read --------------------------------------------------------

    def _read(self) -> tuple[float, float, float]:
        before = self._now()
        beat, tempo = float(self.session.beat), float(self.session.tempo)
        after = self._now()
        self._previous, self._snapshot = self._snapshot, ((before + after) / 2, beat, tempo)
        return self._snapshot

    def _jumped(self) -> bool:
        """Whether the beat, between the last two readings, moved over half a frame further than
        the tempo (the old one or the new) took it."""
        (t0, beat0, tempo0), (t1, beat1, tempo1) = self._previous, self._snapshot
        reach = sorted(beat0 + (t1 - t0) * tempo / 60.0 for tempo in (tempo0, tempo1))
        off = max(reach[0] - beat1, beat1 - reach[1], 0.0)
        return off > 0.5 / self.steps_per_beat

    def report(self) -> str:
        """The session's beat jumps the frames re-aligned after (for the stop line and the page); "" for none."""
        return f"Link's beat jumped {self.realigns} time{'' if self.realigns == 1 else 's'}, re-aligned" \
            if self.realigns else ""

    @property
    def tempo(self) -> float:
        return self._snapshot[2]

    @property
    def period_s(self) -> float:
        """Seconds per frame at the tempo last read."""
        return 60.0 / (self.tempo * self.steps_per_beat)

    @property
    def started(self) -> bool:
        return self._anchor_beat is not None

    @property
    def next_tick(self) -> int:
        return self._next_tick

    def beat_of(self, k: int) -> float:
        """The session beat on which frame ``k`` is due."""
        if self._anchor_beat is None:
            raise RuntimeError("the clock has not started")
        return self._anchor_beat + (k - self._anchor_tick) / self.steps_per_beat

    def song_step(self, k: int) -> int:
        """The step of the session frame ``k`` is due on: its beat in steps, so a quantum's first beat is a
        downbeat (before the clock starts, ``k``: the first frame waits for a quantum boundary)."""
        return k if self._anchor_beat is None else round(self.beat_of(k) * self.steps_per_beat)

    def deadline(self, k: int) -> float:
        """When frame ``k`` is due, in ``now()`` seconds, at the tempo last read."""
        t, beat, tempo = self._snapshot
        return t + (self.beat_of(k) - beat) * 60.0 / tempo

    def _boundary(self, beat: float, slack: float = 0.0) -> float:
        """The first quantum boundary at or after ``beat - slack``."""
        return math.ceil((beat - slack) / self.quantum) * self.quantum

    def start(self) -> None:
        """Anchor frame 0 on the next quantum boundary (the next bar, with a quantum of 4)."""
        _, beat, _ = self._read()
        self.seen_playing = bool(self.session.playing)
        self._anchor_beat, self._anchor_tick, self._next_tick = self._boundary(beat), 0, 0

    # -- waiting ------------------------------------------------------------------

    def _held(self) -> bool:
        """Whether the transport holds the clock now; calls on_stop once when it stops."""
        playing = bool(self.session.playing)
        if playing:
            self.seen_playing = True
            return False
        if not self.seen_playing:
            return False
        if not self.paused:
            self.paused = True
            self.pauses += 1
            if self.on_stop is not None:
                self.on_stop("stop")
        return True

    def wait(self) -> Tick | None:
        """Block until the next frame's beat; its index and lateness in seconds. None when
        ``wake()`` was called while the transport holds the clock."""
        if self._anchor_beat is None:
            self.start()
        k = self._next_tick
        while True:
            if self._held():
                if self._woken.is_set():
                    return None
                self._sleep(self.poll_s)
                continue
            t, beat, tempo = self._read()
            if self.paused:  # the transport started again: on its next boundary
                self.paused = False
                # A start seen up to a frame late (a peer without others maps its start to the beat
                # now) is taken as on its boundary: that frame comes late, the rest on time.
                self._anchor_beat, self._anchor_tick = self._boundary(beat, 1.0 / self.steps_per_beat), k
            elif self._jumped():
                self._anchor_beat, self._anchor_tick = math.ceil(beat * self.steps_per_beat) / self.steps_per_beat, k
                self.realigns += 1
            beats_ahead = self.beat_of(k) - beat
            seconds_per_beat = 60.0 / tempo
            if beats_ahead > self.quantum + 1.0 / self.steps_per_beat:
                # The beat went back (a session joined, its timeline aligned to ours by phase): the next grid step.
                self._anchor_beat, self._anchor_tick = math.ceil(beat * self.steps_per_beat) / self.steps_per_beat, k
                self.resyncs += 1
                continue
            if -beats_ahead * seconds_per_beat > self.resync_after_periods * self.period_s:
                # Far behind: this frame now, on the grid step just passed; the next on the next step.
                self.resyncs += 1
                self._anchor_beat = self.beat_of(k) + math.floor(-beats_ahead * self.steps_per_beat) / self.steps_per_beat
                self._anchor_tick = k
                return self._tick(k, (beat - self.beat_of(k)) * seconds_per_beat)
            remaining = beats_ahead * seconds_per_beat
            if remaining <= EPSILON_S:  # due (a nanosecond short of a beat computed in floats is due)
                return self._tick(k, max(0.0, -remaining))
            due = t + remaining
            now = sleep_then_spin(due, self._now, self._sleep, self.spin_s, t=t, max_sleep_s=self.max_sleep_s)
            if now is not None:
                return self._tick(k, now - due)

    def wake(self) -> None:
        """End a hold now (the performer is stopping): ``wait()`` returns None."""
        self._woken.set()

    def _tick(self, k: int, lateness: float) -> Tick:
        self.count_tick(lateness)
        self._next_tick = k + 1
        return Tick(k, lateness)


class LinkSession:
    """aalink's ``Link`` with its asyncio loop in a helper thread; the clock reads its properties.

    ``on_change(tempo, peers)`` is called (from the helper thread) when the tempo or the
    number of peers changes. ``close()`` leaves the session.
    """

    def __init__(self, bpm: float, quantum: float, on_change: Callable[[float, int], None] | None = None) -> None:
        try:
            import aalink
        except ImportError as err:
            raise ConfigError(MISSING_AALINK) from err
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, name="vrae-link", daemon=True)
        self._thread.start()
        self._on_change = on_change

        async def make():  # aalink takes the running loop for its callbacks
            return aalink.Link(bpm)

        try:
            self.link = asyncio.run_coroutine_threadsafe(make(), self._loop).result(timeout=10)
            self.link.quantum = quantum
            self.link.start_stop_sync_enabled = True
            self.link.set_tempo_callback(lambda tempo: self._changed())
            self.link.set_num_peers_callback(lambda peers: self._changed())
            self.link.enabled = True
        except BaseException:
            self.close()
            raise

    def _changed(self) -> None:
        if self._on_change is not None:
            self._on_change(self.tempo, self.num_peers)

    @property
    def beat(self) -> float:
        return self.link.beat

    @property
    def tempo(self) -> float:
        return self.link.tempo

    @property
    def playing(self) -> bool:
        return self.link.playing

    @property
    def num_peers(self) -> int:
        return self.link.num_peers

    def close(self) -> None:
        link = getattr(self, "link", None)
        if link is not None:
            link.enabled = False
        if self._loop.is_running():
            self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(timeout=5)


def describe(tempo: float, peers: int) -> str:
    return f"Link: {tempo:.1f} bpm, {peers} peer{'' if peers == 1 else 's'}"
