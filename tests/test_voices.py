"""Several voices: the stream with a voice axis, each voice's life over touches, and its controls."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from hypothesis import given, settings, strategies as st

from vrae_live.config import ModelConfig
from vrae_live.live.controllers import load_controller
from vrae_live.live.controls import Controls
from vrae_live.models import build_model
from vrae_live.play.notes import NoteSettings
from vrae_live.play.stream import Stream
from vrae_live.play.voices import VoiceNotes, VoiceOutput, play_voices, voice_channel


def model_of(every_step: bool, components: int = 1, skip: bool = False):
    torch.manual_seed(0)
    return build_model(12, ModelConfig(hidden=24, latent=2, z_every_step=every_step, components=components,
                                       z_skip=skip, hold_gate=skip))


def z_path(k: int, frames: int) -> list[np.ndarray]:
    """Voice k's own wandering z: it jumps now and then, so h_0-only windows re-anchor."""
    rng = np.random.default_rng(100 + k)
    z, path = rng.normal(size=2), []
    for _ in range(frames):
        if rng.random() < 0.15:
            z = rng.normal(size=2) * 2
        path.append(z.copy())
    return path


# -- the stream with a voice axis

RECORDED = Path(__file__).parent / "data" / "streams_before_one_class.npz"


@pytest.mark.parametrize("every_step", [False, True], ids=["z in h0", "z every step"])
def test_one_voice_plays_the_recorded_frames(every_step):
    """A stream of one voice plays, frame for frame and draw for draw, what was recorded: from the
    one-voice stream class before the two stream classes became one (voices seeded 7 + k, each from its
    own wandering z and density, polyphony and max_len at work, the last at temperature 0), and
    recorded again from this stream when the gate's polyphony began to give a new note a held one's voice."""
    model, recorded = model_of(every_step), np.load(RECORDED)
    settings_ = NoteSettings(on_threshold=0.3, off_threshold=0.2, polyphony=2, max_len=4)
    for k in range(4):
        tag = f"{'every' if every_step else 'h0'}_{k}"
        stream = Stream(model, 16, 6, settings=settings_, seed=7 + k, reanchor_distance=0.5)
        path = z_path(k, 60)
        decoded = [stream.next_frame(path[t], 0.3 + 0.1 * k, 1.0 if k != 3 else 0.0) for t in range(60)]
        np.testing.assert_array_equal(np.packbits([d.frame for d in decoded], axis=-1), recorded[f"frames_{tag}"])
        np.testing.assert_allclose([d.probs for d in decoded], recorded[f"probs_{tag}"], atol=1e-5)
        assert [{None: 0, "hop": 1, "move": 2}[d.join] for d in decoded] == recorded[f"joins_{tag}"].tolist()


@pytest.mark.parametrize("every_step, components, skip", [(False, 1, False), (True, 1, False), (True, 3, False),
                                                          (True, 3, True)],
                         ids=["z in h0", "z every step", "notes chosen together", "z and the frame before read by the output"])
def test_each_voice_plays_what_a_lone_stream_plays(every_step, components, skip):
    """Four voices decoded together, each from its own wandering z and density: voice k's
    frames are those of a stream of one voice seeded seed + k, frame for frame and draw for draw
    (for a mixture, its component's and its fade's draws too)."""
    model, frames, voices = model_of(every_step, components, skip), 60, 4
    settings_ = NoteSettings(on_threshold=0.3, off_threshold=0.2)
    bank = Stream(model, window=16, hop=6, voices=voices, settings=settings_, seed=7, reanchor_distance=0.5)
    lone = [Stream(model, 16, 6, settings=settings_, seed=7 + k, reanchor_distance=0.5) for k in range(voices)]
    for k in range(voices):
        bank.start(k)
    paths = [z_path(k, frames) for k in range(voices)]
    density = [0.3, 0.5, 0.6, 0.8]
    for t in range(frames):
        together = bank.step({k: paths[k][t] for k in range(voices)}, {k: density[k] for k in range(voices)}, 1.0)
        for k in range(voices):
            alone = lone[k].next_frame(paths[k][t], density[k], 1.0)
            np.testing.assert_allclose(together[k].probs, alone.probs, atol=1e-5)
            assert (together[k].frame == alone.frame).all() and together[k].join == alone.join
    assert sum(v.windows for v in bank.voices) == sum(s.voices[0].windows for s in lone)
    if not every_step:
        assert sum(s.voices[0].reanchors for s in lone) > 0  # the moves did re-anchor mid-hop


@pytest.mark.parametrize("every_step", [False, True], ids=["z in h0", "z every step"])
def test_some_voices_of_a_bank_play_what_lone_streams_play(every_step):
    """Voices 1, 3 and 4 of six started (the batched state taken and put back by voice), with
    polyphony and max_len at work: each still plays a one-voice stream's frames and draws."""
    model, frames, started = model_of(every_step), 50, [1, 3, 4]
    settings_ = NoteSettings(on_threshold=0.3, off_threshold=0.2, polyphony=2, max_len=4)
    bank = Stream(model, window=16, hop=6, voices=6, settings=settings_, seed=7, reanchor_distance=0.5)
    lone = {k: Stream(model, 16, 6, settings=settings_, seed=7 + k, reanchor_distance=0.5) for k in started}
    for k in started:
        bank.start(k)
    paths = {k: z_path(k, frames) for k in started}
    for t in range(frames):
        together = bank.step({k: paths[k][t] for k in started}, {k: 0.3 + 0.1 * k for k in started}, 1.0)
        for k in started:
            alone = lone[k].next_frame(paths[k][t], 0.3 + 0.1 * k, 1.0)
            np.testing.assert_allclose(together[k].probs, alone.probs, atol=1e-5)
            assert (together[k].frame == alone.frame).all() and together[k].join == alone.join
    assert [bank.voices[k].windows for k in started] == [lone[k].voices[0].windows for k in started]
    np.testing.assert_array_equal(bank.voices[3].history, lone[3].voices[0].history)


@pytest.mark.parametrize("every_step", [False, True], ids=["z in h0", "z every step"])
def test_the_model_is_called_as_often_for_sixteen_voices_as_for_one(every_step):
    model = model_of(every_step)
    calls = {}
    for voices in (1, 16):
        bank = Stream(model, window=16, hop=6, voices=voices, seed=0)
        for k in range(voices):
            bank.start(k)
        for _ in range(30):
            bank.step({k: np.zeros(2) for k in range(voices)}, temperature=1.0)
        calls[voices] = bank.model_calls
    assert calls[16] == calls[1]


def test_a_voice_started_mid_hop_joins_the_shared_grid():
    model = model_of(True)
    bank = Stream(model, window=16, hop=6, voices=2, seed=0)
    bank.start(0)
    joins = {0: [], 1: []}
    for t in range(20):
        if t == 3:
            bank.start(1)
        out = bank.step({k: np.zeros(2) for k in bank.active()}, temperature=1.0)
        for k, frame in out.items():
            joins[k].append((t, frame.join))
    assert [t for t, j in joins[0] if j] == [0, 6, 12, 18]
    assert [t for t, j in joins[1] if j] == [3, 6, 12, 18]  # its first window is cut short at the grid
    assert bank.voices[1].position == 17


def test_a_stopped_voice_is_not_decoded_and_a_restarted_one_starts_afresh():
    model = model_of(True)
    bank = Stream(model, window=16, hop=6, voices=2, seed=0)
    bank.start(0)
    bank.start(1)
    for _ in range(8):
        bank.step({0: np.zeros(2), 1: np.ones(2)}, temperature=1.0)
    bank.stop(1)
    assert bank.active() == [0]
    assert set(bank.step({0: np.zeros(2)}, temperature=1.0)) == {0}
    with pytest.raises(ValueError):
        bank.step({0: np.zeros(2), 1: np.ones(2)})
    bank.start(1)
    assert len(bank.voices[1].history) == 0 and bank.voices[1].position == 0


# -- one voice's life over touches


def frame_of(notes):
    frame = np.zeros(6, bool)
    frame[list(notes)] = True
    return frame


class Decoded:
    def __init__(self, frame):
        self.frame, self.probs, self.struck = frame, np.full(frame.shape, 0.9), None


PITCHES = [60, 62, 64, 65, 67, 69]


def test_a_touch_comes_in_over_the_attack_and_fades_within_the_release():
    voice = VoiceNotes(NoteSettings(), attack=2, release=4)
    gains, events = [], []
    for touching in [True, True, True, False, False, False, False, False]:
        plan = voice.plan(touching)
        gains.append(plan.gain)
        events.append(voice.play(plan, Decoded(frame_of([len(gains) % 6])) if plan.decodes else None, PITCHES,
                                 velocity=100))
    assert gains == [0.5, 1.0, 1.0, 0.75, 0.5, 0.25, 0.0, 0.0]
    assert [e.velocity for e in events[0] if e.kind == "on"] == [50]  # coming in, not at full force
    assert [e.velocity for e in events[1] if e.kind == "on"] == [100]
    assert [e.kind for e in events[6]] == ["off"]  # the release's end: what still sounds goes off
    assert voice.phase == "silent" and voice.emitter.sounding == frozenset() and events[7] == []


def test_a_touch_during_the_release_takes_the_voice_up_where_it_is():
    voice = VoiceNotes(attack=4, release=4)
    for touching in [True] * 4 + [False] * 2:
        voice.plan(touching)
    plan = voice.plan(True)
    assert (plan.starts, plan.decodes, plan.gain) == (False, True, 0.75)


def test_voice_channels_follow_the_first_and_wrap():
    assert [voice_channel(1, k) for k in range(3)] == [0, 1, 2]
    assert voice_channel(15, 3) == 1 and voice_channel(5, 2, own_ports=True) == 4


touch_sequences = st.lists(st.tuples(st.lists(st.booleans(), min_size=3, max_size=3),  # touches of 3 voices
                                     st.integers(1, 16),  # the channel of voice 1
                                     st.integers(-3, 3),  # transpose
                                     st.sets(st.integers(0, 5), max_size=4)),  # what the decoder plays
                           min_size=1, max_size=60)


@settings(max_examples=300, deadline=None)
@given(touch_sequences, st.integers(1, 4), st.integers(1, 5))
def test_random_touches_leave_no_note_hanging(sequence, attack, release):
    """Voices touched and released at random while the channel and transpose move: no note
    starts twice, a voice released ``release`` frames ago sounds nothing, and all off at the
    end silences everything."""
    voices = [VoiceNotes(NoteSettings(), attack, release) for _ in range(3)]
    sounding: set[tuple[int, int]] = set()
    untouched_for = [0, 0, 0]
    for touches, channel, transpose, notes in sequence:
        plans = [voice.plan(touches[k]) for k, voice in enumerate(voices)]
        decoded = {k: Decoded(frame_of(notes)) for k, plan in enumerate(plans) if plan.decodes}
        outputs = [VoiceOutput(None, transpose, voice_channel(channel, k)) for k in range(3)]
        for _, events in play_voices(voices, plans, decoded, PITCHES, outputs):
            for e in events:
                key = (e.channel, e.note)
                if e.kind == "on":
                    assert key not in sounding and 1 <= e.velocity <= 127
                    sounding.add(key)
                else:
                    assert key in sounding
                    sounding.discard(key)
        for k, voice in enumerate(voices):
            untouched_for[k] = 0 if touches[k] else untouched_for[k] + 1
            if untouched_for[k] >= release:
                assert voice.emitter.sounding == frozenset() and voice.phase == "silent"
    for voice in voices:
        for e in voice.all_off():
            sounding.discard((e.channel, e.note))
    assert sounding == set()


# -- controls


def test_voice_addresses_set_their_own_voice():
    controls = Controls(voices=3, latent_size=2)
    controls.handle_message("/vrae/voice/2/xy", [0.1, 0.9])
    controls.handle_message("/vrae/voice/2/on", [1])
    controls.handle_message("/vrae/voice/3/density", [0.9])
    controls.handle_message("/vrae/voice/1/xy", [0.7, 0.3])
    controls.handle_message("/vrae/voice/3/z", [1.0, -1.0])
    state = controls.snapshot()
    assert (state.x, state.y) == (0.7, 0.3)  # voice 1 is the plain controls
    assert state.voice(2).on and (state.voice(2).x, state.voice(2).y) == (0.1, 0.9)
    assert not state.voice(3).on and state.voice(3).z == (1.0, -1.0)
    controls.handle_message("/vrae/density", [0.2])
    state = controls.snapshot()
    assert (state.voice(1).density, state.voice(2).density, state.voice(3).density) == (0.2, 0.2, 0.9)


def test_a_voice_beyond_the_count_is_unknown_and_hold_holds_one_voice():
    controls = Controls(voices=2)
    controls.handle_message("/vrae/voice/3/xy", [0.1, 0.9])
    assert controls.stats["unknown_address"] == 1
    controls.handle_message("/vrae/voice/2/hold", [1])
    controls.handle_message("/vrae/voice/2/xy", [0.1, 0.9])
    controls.handle_message("/vrae/xy", [0.2, 0.2])
    state = controls.snapshot()
    assert controls.stats["held"] == 1 and (state.voice(2).x, state.x) == (0.5, 0.2)


def test_touchosc_multixy_fingers_are_voices():
    controls = Controls(load_controller("touchosc-multixy"), voices=2)
    controls.handle_message("/1/multixy1/2", [0.9, 0.1])  # (y, x)
    controls.handle_message("/1/multixy1/2/z", [1.0])
    controls.handle_message("/1/multixy1/1/z", [0.0])
    controls.handle_message("/1/multixy1/3/z", [1.0])  # a third finger, two voices: ignored
    state = controls.snapshot()
    assert (state.voice(2).x, state.voice(2).y, state.voice(2).on, state.voice(1).on) == (0.1, 0.9, True, False)


def test_lemur_multiball_lists_every_ball():
    controls = Controls(load_controller("lemur-multiball"), voices=3)
    controls.handle_message("/Balls/x", [0.1, 0.9, 0.5, 0.4])
    controls.handle_message("/Balls/y", [0.2, 0.8, 0.5, 0.4])
    controls.handle_message("/Balls/z", [1.0, 1.0, 0.0, 1.0])
    state = controls.snapshot()
    assert [(state.voice(k).x, state.voice(k).y, state.voice(k).on) for k in (1, 2, 3)] == [
        (0.1, 0.2, True), (0.9, 0.8, True), (0.5, 0.5, False)]
    controls.handle_message("/Balls/x", [0.1, 0.9, 0.5])  # an odd list is fine: one value per ball
    controls.handle_message("/Balls/x", [])
    assert controls.stats["wrong_args"] == 1


def test_open_stage_control_multixy_points_and_touches():
    controls = Controls(load_controller("open-stage-control-multixy"), voices=2)
    controls.handle_message("/multixy", [0.1, 0.2, 0.8, 0.9])
    controls.handle_message("/multixy/touch", [1, 1])
    controls.handle_message("/multixy", [0.1, 0.2, 0.8])
    state = controls.snapshot()
    assert (state.voice(2).x, state.voice(2).y, state.voice(2).on) == (0.8, 0.9, True)
    assert controls.stats["wrong_args"] == 1


def test_a_preset_may_not_map_a_voice_address_twice():
    from vrae_live.errors import ConfigError
    from vrae_live.live.controllers import controller_from_dict

    with pytest.raises(ConfigError, match="mapped by both"):
        controller_from_dict({"voices": {"xy": "/m/{k}"}, "density": {"address": "/m/1"}})
    with pytest.raises(ConfigError, match="missing"):
        controller_from_dict({"voices": {"on": "/m/{k}/z"}})
