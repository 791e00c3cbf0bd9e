"""The latent plane, the glide, and one voice's stream (pure parts of the live path)."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from vrae_live.config import ModelConfig
from vrae_live.models import build_model
from vrae_live.pad import Glide, LatentPlane
from vrae_live.play.stream import Stream, density_bias


def test_plane_maps_pad_corners_to_the_measured_region():
    plane = LatentPlane(np.zeros(2), np.eye(2), np.array([-1.0, -3.0]), np.array([1.0, 3.0]))
    np.testing.assert_allclose(plane.z_at(0, 0), [-1, -3])
    np.testing.assert_allclose(plane.z_at(1, 1), [1, 3])
    np.testing.assert_allclose(plane.z_at(0.5, 0.5), [0, 0])
    assert plane.position_of(plane.z_at(0.2, 0.9)) == pytest.approx((0.2, 0.9))


def test_plane_in_more_dimensions_moves_along_its_axes():
    axes = np.array([[0.6, 0.8, 0, 0], [0, 0, 1.0, 0]])
    plane = LatentPlane(np.ones(4), axes, np.array([-2.0, -1.0]), np.array([2.0, 1.0]))
    step = plane.z_at(1, 0.5) - plane.z_at(0, 0.5)
    np.testing.assert_allclose(step, 4 * axes[0])
    assert LatentPlane.standard(5).z_at(0.5, 0.5).shape == (5,)


def test_glide_covers_63_percent_of_a_jump_in_one_time_constant():
    glide = Glide(0.5)
    np.testing.assert_allclose(glide.step(np.zeros(2), 0.05), [0, 0])  # the first call jumps
    for _ in range(10):  # 10 x 50 ms = one time constant
        value = glide.step(np.ones(2), 0.05)
    np.testing.assert_allclose(value, 1 - math.exp(-1), rtol=1e-9)
    assert Glide(0).step(np.ones(2), 0.05).tolist() == [1, 1]


def test_density_is_a_logit_offset():
    assert density_bias(0.5) == 0 and density_bias(1.0) > 0 > density_bias(0.0)


@pytest.fixture
def model():
    torch.manual_seed(0)
    return build_model(12, ModelConfig(hidden=24, latent=2))


def test_chunks_are_hop_frames_long_and_contiguous(model):
    stream = Stream(model, window=16, hop=8, seed=0)
    chunks = [stream.next_chunk(np.zeros(2), temperature=1.0) for _ in range(4)]
    assert [c.start for c in chunks] == [0, 8, 16, 24]
    assert all(c.frames.shape == (8, 12) and c.probs.shape == (8, 12) for c in chunks)
    assert stream.voices[0].history.shape == (8, 12)
    np.testing.assert_array_equal(stream.voices[0].history, chunks[-1].frames)


@torch.no_grad()
def test_a_new_window_continues_from_the_frames_played(model):
    """Without blending, a chunk's probabilities are those of a window teacher-forced through the
    previous hop's decided frames, and then fed its own decisions."""
    stream = Stream(model, window=16, hop=8, blend=0, seed=0)
    z = np.array([0.3, -0.7])
    first = stream.next_chunk(z, temperature=0.0)
    second = stream.next_chunk(z, temperature=0.0)
    x = torch.tensor(np.concatenate([first.frames, second.frames]), dtype=torch.float32)[None]
    probs = torch.sigmoid(model.decode(torch.tensor(z, dtype=torch.float32)[None], x))[0].numpy()
    np.testing.assert_allclose(second.probs, probs[8:], atol=1e-5)


def test_a_pad_move_is_heard_in_the_next_hop(model):
    still = Stream(model, window=16, hop=8, blend=0, seed=3)
    moved = Stream(model, window=16, hop=8, blend=0, seed=3)
    a, b = np.array([-2.0, -2.0]), np.array([2.0, 2.0])
    for stream in (still, moved):
        stream.next_chunk(a, temperature=0.0)
    same = still.next_chunk(a, temperature=0.0)
    changed = moved.next_chunk(b, temperature=0.0)
    assert not np.allclose(same.probs[0], changed.probs[0])  # from the first frame of the hop


@pytest.fixture
def z_every_step_model():
    torch.manual_seed(0)
    return build_model(12, ModelConfig(hidden=24, latent=2, z_every_step=True))


@pytest.mark.parametrize("every_step", [False, True], ids=["z in h0", "z every step"])
@pytest.mark.parametrize("k", range(8))
def test_a_pad_move_mid_hop_is_heard_in_the_next_frame(model, z_every_step_model, every_step, k):
    """A move after frame 8 + k reaches frame 9 + k, whatever the phase k of the hop."""
    net = z_every_step_model if every_step else model
    still = Stream(net, window=16, hop=8, seed=3)
    moved = Stream(net, window=16, hop=8, seed=3)
    a, b = np.array([-2.0, -2.0]), np.array([2.0, 2.0])
    for i in range(9 + k):
        p, q = still.next_frame(a, temperature=1.0), moved.next_frame(a, temperature=1.0)
        np.testing.assert_array_equal(p.probs, q.probs)
    p, q = still.next_frame(a, temperature=1.0), moved.next_frame(b, temperature=1.0)
    assert not np.array_equal(p.probs, q.probs)  # (an untrained decoder fed z only in h_0 forgets it within
    # a window: late in a hop the two differ by 1e-6; a trained one holds it better, and z_every_step far better)
    assert p.join == ("hop" if k == 7 else None)
    assert q.join == ("hop" if k == 7 else None if every_step else "move")


@torch.no_grad()
def test_a_reanchored_window_is_teacher_forced_through_the_context(model):
    """A model fed z only in h_0 re-anchors mid-hop: h_0 from the new z, teacher-forced through the
    last ``context`` frames played, as a window on the hop grid is, until the next boundary."""
    stream = Stream(model, window=16, hop=8, blend=0, seed=0)
    a, b = np.array([0.3, -0.7]), np.array([-1.5, 1.0])
    frames = [stream.next_frame(a).frame for _ in range(8 + 3)]  # a hop, then 3 frames into the next
    rest = [stream.next_frame(b) for _ in range(5)]  # the rest of that hop, from b
    assert [f.join for f in rest] == ["move", None, None, None, None] and stream.voices[0].reanchors == 1
    x = torch.tensor(np.concatenate([frames[-8:], [f.frame for f in rest]]), dtype=torch.float32)[None]
    probs = torch.sigmoid(model.decode(torch.tensor(b, dtype=torch.float32)[None], x))[0].numpy()
    np.testing.assert_allclose(np.stack([f.probs for f in rest]), probs[8:], atol=1e-5)
    assert stream.next_frame(b).join == "hop"  # and the grid of hops stays where it was


def test_small_moves_wait_for_the_next_hop(model):
    """Below ``reanchor_distance`` a model fed z only in h_0 keeps its window until the hop's end."""
    stream = Stream(model, window=16, hop=8, seed=0, reanchor_distance=0.5)
    z = np.zeros(2)
    joins = [stream.next_frame(z + 0.01 * i).join for i in range(12)]
    assert joins == ["hop"] + [None] * 7 + ["hop"] + [None] * 3
    assert [stream.next_frame(z + 1.0).join for _ in range(5)] == ["move"] + [None] * 3 + ["hop"]


def test_frames_at_a_fixed_z_are_the_chunks(model):
    by_chunk = Stream(model, window=16, hop=8, seed=5)
    by_frame = Stream(model, window=16, hop=8, seed=5)
    chunks = np.concatenate([by_chunk.next_chunk(np.ones(2), temperature=1.0).probs for _ in range(3)])
    frames = np.stack([by_frame.next_frame(np.ones(2), temperature=1.0).probs for _ in range(24)])
    np.testing.assert_array_equal(chunks, frames)


def test_reset_forgets_the_context(model):
    stream = Stream(model, window=16, hop=8, seed=0)
    stream.next_chunk(np.zeros(2), temperature=1.0)
    stream.reset()
    assert len(stream.voices[0].history) == 0 and not stream.voices[0].sounding.any()
    assert stream.next_frame(np.zeros(2)).join == "hop"  # a new window, from nothing


def test_a_model_of_onsets_streams_notes_that_start_on_onsets():
    torch.manual_seed(0)
    model = build_model(24, ModelConfig(hidden=24, latent=2))  # 12 pitches and their onsets
    stream = Stream(model, window=16, hop=8, seed=0, onsets=True)
    chunks = [stream.next_chunk(np.zeros(2), density=0.7, temperature=1.0) for _ in range(6)]
    frames = np.concatenate([c.frames for c in chunks])
    struck = np.concatenate([c.struck for c in chunks])
    assert frames.shape == struck.shape == (48, 12) and chunks[0].probs.shape == (8, 12)
    begins = frames & ~np.vstack([np.zeros((1, 12), bool), frames[:-1]])
    assert begins.any() and (struck >= begins).all()  # every note begins on an onset
    assert not (struck & ~frames).any()
    assert stream.voices[0].history.shape == (8, 24)  # fed back: what sounded and what was struck
    np.testing.assert_array_equal(stream.voices[0].history, np.hstack([frames, struck])[-8:])


def holds_what_sounds() -> torch.nn.Module:
    """A model of onsets of 2 pitches that holds a pitch while it is fed sounding (sustain ~1, else ~0), and
    strikes pitch 0 where it is silent once z's first unit is 1 (never at 0); pitch 1 never sounds."""
    model = build_model(4, ModelConfig(hidden=2, latent=2, z_every_step=True))
    with torch.no_grad():
        for parameter in model.parameters():
            parameter.zero_()
        model.decoder.weight_ih_l0[0, 0] = 10  # h_0: pitch 0 sounded in the frame fed
        model.decoder.weight_ih_l0[1, 4] = 10  # h_1: z's first unit
        model.to_logits.weight[0, 0] = 20
        model.to_logits.bias[:2] = -10  # sounds on where it sounded
        model.to_logits.weight[2] = torch.tensor([-40.0, 40.0])
        model.to_logits.bias[2:] = -20  # pitch 0 struck where it is silent and z says so
    return model


def test_a_note_struck_during_a_fade_holds_while_the_new_window_holds_it():
    """The look past of the window replaced runs blind, fed its own draws and the z of the hop boundary: it
    knows none of the notes struck since. Whether a note holds is the new window's call, so a note struck
    early in a fade, where the look past still outweighs the new window, lasts as long as the model holds it."""
    early = 0
    for seed in range(40):
        stream = Stream(holds_what_sounds(), window=32, hop=16, blend=16, seed=seed, onsets=True)
        zs = [np.zeros(2)] * 17 + [np.array([1.0, 0.0])] * 23  # struck from frame 17, the fade's second frame on
        frames = np.array([stream.next_frame(z, temperature=1.0).frame[0] for z in zs])
        first = int(np.argmax(frames))
        assert first >= 17 and frames[first:].all()
        early += first <= 19  # its next frame weighs the look past at 13/17 or more
    assert early >= 3


@pytest.mark.parametrize("songs, given, plays", [({"polyphony": 1}, None, 1), ({"polyphony": 4}, 6, 6), ({}, None, 8)],
                         ids=["the songs' one note", "--polyphony over the songs'", "a checkpoint that does not say"])
def test_the_live_stream_keeps_to_the_songs_notes_at_once_unless_told(tmp_path, songs, given, plays):
    from vrae_live.checkpoint import load_checkpoint, save_checkpoint
    from vrae_live.config import load_config
    from vrae_live.models import model_for
    from vrae_live.play.notes import NoteSettings
    from vrae_live.play.stream import live_stream

    config = load_config("live-2d", {"hidden": 8, "components": 1})
    pitches = list(range(60, 72))
    ckpt = load_checkpoint(save_checkpoint(tmp_path / "m", model_for(config, len(pitches)), config, pitches,
                                           meta={"training": songs} if songs else None))
    notes = NoteSettings() if given is None else NoteSettings(polyphony=given)
    stream = live_stream(ckpt, notes=notes)
    assert stream.settings.voice_limit == plays
    frames = [stream.next_frame(np.zeros(ckpt.config.model.latent), 0.9, 1.0).frame for _ in range(48)]
    assert max(int(f[:len(pitches)].sum()) for f in frames) <= plays
