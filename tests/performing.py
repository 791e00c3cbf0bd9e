"""The performer on a fake clock, into memory: what `serve` plays, without real time or MIDI."""

from __future__ import annotations

from vrae_live.checkpoint import Checkpoint, load_checkpoint
from vrae_live.live.controls import Controls
from vrae_live.play.clock import FrameClock
from vrae_live.play.performer import PerformanceSettings, Performer
from vrae_live.play.sink import MemorySink
from vrae_live.testing.fake_time import FakeTime


def perform(checkpoint, frames, messages=(), seed=0, at_frame=None, initial=None, fake=None, played=None, **settings):
    """Play ``frames`` frames on a fake clock into memory, as ``serve`` would.

    ``checkpoint``: a Checkpoint or its directory. The controls start from ``initial`` (a
    ControlState) and get ``messages`` (address, args) first; ``at_frame(controls, index,
    performer)`` is called after each frame, to act as a controller mid-take; ``settings``
    go to PerformanceSettings; ``fake`` is the FakeTime to play on. Returns the sink, the stats, the controls and the performer.
    """
    ckpt = checkpoint if isinstance(checkpoint, Checkpoint) else load_checkpoint(checkpoint)
    controls = Controls(latent_size=ckpt.config.model.latent, initial=initial, voices=settings.get("voices", 1))
    for address, args in messages:
        controls.handle_message(address, list(args))
    fake = fake or FakeTime()
    sink = MemorySink(clock=fake.now)
    clock = FrameClock(ckpt.timing.frame_seconds(), now=fake.now, sleep=fake.sleep, spin_s=0)

    def on_frame(index, state):
        if played is not None and performer.played is not None:
            played.append(performer.played.decoded[0].probs)
        if at_frame:
            at_frame(controls, index, performer)

    performer = Performer(ckpt, controls, sink, PerformanceSettings(seed=seed, **settings), clock, on_frame)
    stats = performer.run(max_frames=frames)
    return sink, stats, controls, performer


def note_ons(sink):
    return [m for m in sink.messages if m.type == "note_on" and m.velocity > 0]


def assert_nothing_hangs(messages):
    sounding = set()
    for m in messages:
        if m.type == "note_on" and m.velocity > 0:
            assert (m.channel, m.note) not in sounding
            sounding.add((m.channel, m.note))
        elif m.type in ("note_off", "note_on"):
            sounding.discard((m.channel, m.note))
    assert not sounding
