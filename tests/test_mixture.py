"""A frame's notes chosen together: the mixture output (models/mixture.py) and the stream that plays it."""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from vrae_live.config import ModelConfig
from vrae_live.models import build_model
from vrae_live.models.mixture import chosen_logits, frames_nll, marginal_logits
from vrae_live.play.notes import NoteSettings
from vrae_live.play.stream import Stream


def test_one_component_is_the_papers_bernoulli_frame():
    torch.manual_seed(0)
    logits, frames = torch.randn(3, 5, 7), torch.randint(0, 2, (3, 5, 7)).float()
    expected = F.binary_cross_entropy_with_logits(logits, frames, reduction="none").sum(-1)
    torch.testing.assert_close(frames_nll(logits, None, frames), expected)
    assert marginal_logits(logits, None) is logits and chosen_logits(logits, None, torch.rand(3)) is logits


def test_the_mixture_likelihood_sums_each_components_product_by_its_weight():
    torch.manual_seed(1)
    k, c = 3, 4
    logits, weights = torch.randn(2, k * c, dtype=torch.float64), torch.randn(2, k, dtype=torch.float64)
    frames = torch.tensor([[1, 0, 1, 1], [0, 0, 0, 1]], dtype=torch.float64)
    p, pi = torch.sigmoid(logits.view(2, k, c)), torch.softmax(weights, -1)
    by_hand = (pi * torch.where(frames[:, None] > 0, p, 1 - p).prod(-1)).sum(-1)
    torch.testing.assert_close(frames_nll(logits, weights, frames), -by_hand.log())
    # a distribution: the chances of all 16 frames of 4 columns add up to 1
    every = torch.tensor(list(itertools.product([0.0, 1.0], repeat=c)), dtype=torch.float64)  # (16, C)
    total = torch.exp(-frames_nll(logits[:1].expand(16, -1), weights[:1].expand(16, -1), every)).sum()
    assert total.item() == pytest.approx(1.0, abs=1e-12)
    # each column's own chance is the weighted mean of the components'
    torch.testing.assert_close(torch.sigmoid(marginal_logits(logits, weights)), (pi[..., None] * p).sum(1))


def test_a_draw_picks_the_component_its_cumulative_weight_falls_in():
    logits = torch.arange(6.0).repeat(4, 1)  # 3 components of 2 columns: (0, 1), (2, 3), (4, 5)
    weights = torch.log(torch.tensor([0.2, 0.5, 0.3])).repeat(4, 1)
    chosen = chosen_logits(logits, weights, torch.tensor([0.1, 0.3, 0.69, 0.95]))
    assert chosen.tolist() == [[0, 1], [2, 3], [2, 3], [4, 5]]
    assert chosen_logits(logits, weights).tolist() == [[2, 3]] * 4  # no draw: the likeliest


def two_chords(components: int):
    """A VRAE of 6 pitches whose output ignores its state: with two components, half the frames strike
    pitches 0 and 1 and half strike 2 and 3; with one, each of the four has a chance of 1/2 on its own."""
    model = build_model(6, ModelConfig(hidden=8, latent=2, z_every_step=True, components=components))
    with torch.no_grad():
        model.to_logits.weight.zero_()
        chords = torch.tensor([[20.0, 20, -20, -20, -20, -20], [-20, -20, 20, 20, -20, -20]])
        if components == 2:
            model.to_weights.weight.zero_()
            model.to_weights.bias.zero_()
            model.to_logits.bias.copy_(chords.flatten())
        else:
            model.to_logits.bias.copy_(torch.tensor([0.0, 0, 0, 0, -20, -20]))
    return model


def test_a_mixture_plays_the_notes_of_one_frame_together():
    """Struck from one component, a frame's notes are one of its chords, never half of each; the
    single Bernoulli frame with the same chance for each pitch mixes them."""
    chords = {(0, 1), (2, 3)}

    def played(components: int) -> list[tuple[int, ...]]:
        stream = Stream(two_chords(components), window=8, hop=4, settings=NoteSettings(polyphony=None), seed=3)
        return [tuple(np.flatnonzero(stream.next_frame(np.zeros(2), temperature=1.0).frame)) for _ in range(200)]

    mixed = played(2)
    assert set(mixed) == chords
    assert 60 < sum(f == (0, 1) for f in mixed) < 140  # either chord, by the components' weights of 1/2
    assert set(played(1)) - chords - {()}  # the frame of independent draws: other sets of the four


def test_a_mixture_at_temperature_zero_plays_its_likeliest_component():
    model = two_chords(2)
    with torch.no_grad():
        model.to_weights.bias.copy_(torch.tensor([0.0, math.log(3)]))  # the second chord 3 times as likely
    stream = Stream(model, window=8, hop=4, seed=0)
    assert {tuple(np.flatnonzero(stream.next_frame(np.zeros(2)).frame)) for _ in range(20)} == {(2, 3)}


def test_a_model_of_one_component_keeps_the_papers_parameters():
    """A checkpoint written before mixtures holds exactly these weights, so it loads unchanged."""
    model = build_model(12, ModelConfig(hidden=24, latent=2))
    assert model.to_weights is None and model.to_logits.weight.shape == (12, 24)
    assert not any(name.startswith("to_weights") for name in model.state_dict())


def test_a_low_rank_mixture_reads_its_frames_from_that_many_numbers_of_the_state():
    model = build_model(10, ModelConfig(hidden=16, latent=2, components=4, mixture_rank=3))
    down, up = model.to_logits
    assert (down.in_features, down.out_features, up.out_features) == (16, 3, 40)
    weight = up.weight @ down.weight  # the (K * C, H) map the two make
    assert torch.linalg.matrix_rank(weight) == 3
    state = torch.randn(5, 16)
    logits, weights = model._output(state, None, None)
    assert torch.allclose(logits, state @ weight.T + up.bias, atol=1e-5) and weights.shape == (5, 4)


@pytest.mark.parametrize("rank", [0, 3])
def test_a_mixture_model_trains_on_its_bound(rank):
    torch.manual_seed(0)
    model = build_model(10, ModelConfig(hidden=16, latent=2, components=4, mixture_rank=rank))
    x = (torch.rand(8, 12, 10) < 0.3).float()
    optimiser = torch.optim.Adam(model.parameters(), lr=1e-2)
    first = None
    for _ in range(60):
        terms = model.loss_terms(x)
        loss = (terms.rec + terms.kl.sum(1)).mean()
        first = first if first is not None else loss.item()
        optimiser.zero_grad()
        loss.backward()
        optimiser.step()
    assert loss.item() < first - 5
    model.eval()
    bound = model.importance_weighted_bound(x, samples=4)
    assert bound.shape == (8,) and torch.isfinite(bound).all()


def test_only_the_vrae_mixes_frames():
    with pytest.raises(Exception, match="components"):
        build_model(12, ModelConfig(model="rnn", hidden=8, components=2))
    with pytest.raises(Exception, match="mixture-rank"):
        build_model(12, ModelConfig(model="vrnn", hidden=8, mixture_rank=4))


@pytest.mark.slow  # two trainings
def test_the_default_trains_a_mixture_says_so_and_plays_every_note_to_its_end(songs_dir, tmp_path):
    """`train` with the default preset (8 components), `info`'s words, and a take through the live path."""
    import mido
    from click.testing import CliRunner

    from vrae_live.checkpoint import load_checkpoint
    from vrae_live.cli import main

    def run(*args):
        return CliRunner().invoke(main, [str(a) for a in args], catch_exceptions=False)

    out = tmp_path / "run"
    tiny = ["--hidden", "16", "--window", "16", "--hop", "8", "--batch-size", "16", "--epochs", "2", "-q"]
    assert run("train", songs_dir, "--out", out, *tiny).exit_code == 0
    ckpt = load_checkpoint(out)
    assert ckpt.config.model.components == 8 and ckpt.model.to_weights.out_features == 8
    described = run("info", out).output
    assert "a frame's notes drawn together, from one of 8 frames" in described
    polyphony = ckpt.training["polyphony"]
    assert f"up to {polyphony} notes at once in 9 of 10 of their sounding steps" in described
    take = tmp_path / "take.mid"
    assert run("generate", out, "--out", take, "--steps", 96, "--density", 0.8).exit_code == 0
    events = [m for m in mido.MidiFile(take) if m.type in ("note_on", "note_off")]
    ons = sum(1 for m in events if m.type == "note_on" and m.velocity > 0)
    assert ons and sum(1 for m in events if m.type == "note_off" or m.velocity == 0) == ons

    rnn = tmp_path / "rnn"  # the preset's mixture is the VRAE's: the baseline draws each pitch on its own
    assert run("train", songs_dir, "--out", rnn, "--model", "rnn", *tiny).exit_code == 0
    assert load_checkpoint(rnn).config.model.components == 1
