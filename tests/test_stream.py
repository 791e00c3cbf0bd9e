"""The latent plane, the glide, and the stream decoder (pure parts of the live path)."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from vrae_live.config import ModelConfig
from vrae_live.pad import Glide, LatentPlane
from vrae_live.live.notes import FrameGate
from vrae_live.live.stream import StreamDecoder, density_bias
from vrae_live.models import build_model


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
    stream = StreamDecoder(model, window=16, hop=8, seed=0)
    chunks = [stream.next_chunk(np.zeros(2), temperature=1.0) for _ in range(4)]
    assert [c.start for c in chunks] == [0, 8, 16, 24]
    assert all(c.frames.shape == (8, 12) and c.probs.shape == (8, 12) for c in chunks)
    assert stream.history.shape == (8, 12)
    np.testing.assert_array_equal(stream.history, chunks[-1].frames)


@torch.no_grad()
def test_a_new_window_continues_from_the_frames_played(model):
    """Without blending, a chunk's probabilities are those of a window teacher-forced through the
    previous hop's decided frames, and then fed its own decisions."""
    stream = StreamDecoder(model, window=16, hop=8, gate=FrameGate(), blend=0, seed=0)
    z = np.array([0.3, -0.7])
    first = stream.next_chunk(z, temperature=0.0)
    second = stream.next_chunk(z, temperature=0.0)
    x = torch.tensor(np.concatenate([first.frames, second.frames]), dtype=torch.float32)[None]
    probs = torch.sigmoid(model.decode(torch.tensor(z, dtype=torch.float32)[None], x))[0].numpy()
    np.testing.assert_allclose(second.probs, probs[8:], atol=1e-5)


def test_a_pad_move_is_heard_in_the_next_hop(model):
    still = StreamDecoder(model, window=16, hop=8, blend=0, seed=3)
    moved = StreamDecoder(model, window=16, hop=8, blend=0, seed=3)
    a, b = np.array([-2.0, -2.0]), np.array([2.0, 2.0])
    for stream in (still, moved):
        stream.next_chunk(a, temperature=0.0)
    same = still.next_chunk(a, temperature=0.0)
    changed = moved.next_chunk(b, temperature=0.0)
    assert not np.allclose(same.probs[0], changed.probs[0])  # from the first frame of the hop


def test_reset_forgets_the_context(model):
    stream = StreamDecoder(model, window=16, hop=8, seed=0)
    stream.next_chunk(np.zeros(2), temperature=1.0)
    stream.reset()
    assert len(stream.history) == 0 and stream.tail is None and len(stream.gate.sounding) == 0
