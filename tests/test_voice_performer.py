"""The performer of several voices on a fake clock, into memory: voices come and go, each on its channel."""

from __future__ import annotations

import pytest

from tests.performing import assert_nothing_hangs
from vrae_live.checkpoint import load_checkpoint
from vrae_live.live.controls import Controls
from vrae_live.play.clock import FrameClock
from vrae_live.play.notes import NoteSettings
from vrae_live.play.performer import PerformanceSettings, Performer, frames_per_beat
from vrae_live.play.sink import MemorySink
from vrae_live.testing.fake_time import FakeTime

LOUD = NoteSettings(on_threshold=0.2, off_threshold=0.1)  # a tiny model's probabilities sit low


def play(ckpt, frames, at_frame, voices=3, sinks=None, messages=()):
    controls = Controls(latent_size=ckpt.config.model.latent, voices=voices)
    for address, args in messages:
        controls.handle_message(address, args)
    fake = FakeTime()
    sink = MemorySink(clock=fake.now)
    clock = FrameClock(ckpt.timing.frame_seconds(), now=fake.now, sleep=fake.sleep, spin_s=0)
    timeline = []  # (frame, sounding per channel) after each frame

    def on_frame(index, state):
        at_frame(controls, index)
        timeline.append((index, set((sinks or [sink])[0].sounding)))

    performer = Performer(ckpt, controls, sinks or sink, PerformanceSettings(voices=voices, notes=LOUD, glide_s=0),
                          clock, on_frame)
    performer.run(max_frames=frames)
    return sink, performer, timeline


def test_voices_start_on_a_touch_play_on_their_channels_and_fade_within_a_beat(beat_checkpoint):
    ckpt = load_checkpoint(beat_checkpoint)
    beat = frames_per_beat(ckpt.timing.frame_seconds(), 120.0)
    release_at = 40

    def controller(controls, index):
        if index == 0:
            controls.handle_message("/vrae/voice/1/xy", [0.0, 0.0])
            controls.handle_message("/vrae/voice/2/xy", [1.0, 1.0])
            controls.handle_message("/vrae/voice/2/on", [1])
        if index == release_at:
            controls.handle_message("/vrae/voice/2/on", [0])

    sink, performer, timeline = play(ckpt, 80, controller)
    ons = [m for m in sink.messages if m.type == "note_on" and m.velocity > 0]
    assert {m.channel for m in ons} == {0, 1}  # voice 3 was never touched
    on_channel_2 = [(index, s) for index, s in timeline if any(ch == 1 for ch, _ in s)]
    assert on_channel_2 and max(index for index, _ in on_channel_2) < release_at + beat
    # voice 2 came in softly: its first notes are quieter than its loudest
    voice2 = [m.velocity for m in ons if m.channel == 1]
    assert voice2[0] < max(voice2)
    assert_nothing_hangs(sink.messages)
    assert performer.bank.stream.active() == [0]


def test_a_panic_and_the_end_silence_every_voice(beat_checkpoint):
    ckpt = load_checkpoint(beat_checkpoint)

    def controller(controls, index):
        if index == 0:
            for k in (2, 3):
                controls.handle_message(f"/vrae/voice/{k}/on", [1])
        if index == 20:
            controls.handle_message("/vrae/panic", [])

    sink, performer, timeline = play(ckpt, 40, controller)
    assert timeline[20][1] and timeline[21][1] == set()  # the frame after: the panic silenced every voice
    assert {m.channel for m in sink.messages if m.type == "note_on" and m.velocity > 0} == {0, 1, 2}
    assert performer.stats.panics == 1
    assert_nothing_hangs(sink.messages)


def test_voice_ports_each_play_on_one_channel(beat_checkpoint):
    ckpt = load_checkpoint(beat_checkpoint)
    sinks = [MemorySink(), MemorySink()]

    def controller(controls, index):
        if index == 0:
            controls.handle_message("/vrae/voice/2/on", [1])

    play(ckpt, 30, controller, voices=2, sinks=sinks, messages=[("/vrae/channel", [5])])
    for sink in sinks:
        channels = {m.channel for m in sink.messages if m.type == "note_on" and m.velocity > 0}
        assert channels == {4}
        assert_nothing_hangs(sink.messages)


def test_the_performer_needs_controls_for_its_voices(beat_checkpoint):
    ckpt = load_checkpoint(beat_checkpoint)
    with pytest.raises(ValueError, match="voices"):
        Performer(ckpt, Controls(voices=2), MemorySink(), PerformanceSettings(voices=3))
