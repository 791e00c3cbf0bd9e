"""The VRNN (Chung et al. 2015) against its equations, its bounds, training, checkpoints, the CLI
and the live path; and the plain RNN baseline."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
import torch
from click.testing import CliRunner

from tests.performing import assert_nothing_hangs, perform
from vrae_live.checkpoint import load_checkpoint, save_checkpoint
from vrae_live.cli import main
from vrae_live.config import Config, ConfigError, ModelConfig, load_config
from vrae_live.models import RNN, VRNN, build_model
from vrae_live.models.vrnn import gaussian_kl_between
from vrae_live.play.notes import NoteEmitter
from vrae_live.play.stream import Stream
from vrae_live.training.run import read_metrics

P, T, H, L, F_ = 7, 9, 11, 3, 5


def tiny(model="vrnn", cell="rnn", seed=0, hidden=H, latent=L, features=F_, pitches=P):
    torch.manual_seed(seed)
    return build_model(pitches, ModelConfig(model=model, cell=cell, hidden=hidden, latent=latent, features=features))


def rolls(batch=4, steps=T, pitches=P, seed=1):
    g = torch.Generator().manual_seed(seed)
    return (torch.rand(batch, steps, pitches, generator=g) < 0.3).float()


def relu(v):
    return torch.clamp(v, min=0)


def equations_step_by_step(model, x, eps):
    """Chung et al. (2015), section 3, with the model's weights, one step and one sequence at a time.

    Returns the logits, and the posterior and prior parameters, each stacked over time.
    """
    cell = model.cell
    h = torch.zeros(H)  # h_0 = 0
    c = torch.zeros(H)
    out = {k: [] for k in ("logits", "z", "mu_q", "logvar_q", "mu_p", "logvar_p")}
    for t in range(len(x)):
        phi_x = relu(model.phi_x.weight @ x[t] + model.phi_x.bias)
        a0 = relu(model.prior.weight @ h + model.prior.bias)  # prior from h_{t-1}
        mu_p = model.prior_mu.weight @ a0 + model.prior_mu.bias
        logvar_p = model.prior_logvar.weight @ a0 + model.prior_logvar.bias
        aq = relu(model.posterior.weight @ torch.cat([phi_x, h]) + model.posterior.bias)  # from phi_x(x_t), h_{t-1}
        mu_q = model.posterior_mu.weight @ aq + model.posterior_mu.bias
        logvar_q = model.posterior_logvar.weight @ aq + model.posterior_logvar.bias
        z = mu_q + torch.exp(0.5 * logvar_q) * eps[t]
        phi_z = relu(model.phi_z.weight @ z + model.phi_z.bias)
        ad = relu(model.generation.weight @ torch.cat([phi_z, h]) + model.generation.bias)  # from phi_z(z_t), h_{t-1}
        logits = model.to_logits.weight @ ad + model.to_logits.bias
        inp = torch.cat([phi_x, phi_z])
        if model.config.cell == "rnn":  # h_t = tanh(W_ih [phi_x; phi_z] + b_ih + W_hh h_{t-1} + b_hh)
            h = torch.tanh(cell.weight_ih @ inp + cell.bias_ih + cell.weight_hh @ h + cell.bias_hh)
        elif model.config.cell == "gru":
            r_i, z_i, n_i = (cell.weight_ih @ inp + cell.bias_ih).chunk(3)
            r_h, z_h, n_h = (cell.weight_hh @ h + cell.bias_hh).chunk(3)
            r, u = torch.sigmoid(r_i + r_h), torch.sigmoid(z_i + z_h)
            n = torch.tanh(n_i + r * n_h)
            h = (1 - u) * n + u * h
        else:
            i, f, g, o = (cell.weight_ih @ inp + cell.bias_ih + cell.weight_hh @ h + cell.bias_hh).chunk(4)
            c = torch.sigmoid(f) * c + torch.sigmoid(i) * torch.tanh(g)
            h = torch.sigmoid(o) * torch.tanh(c)
        for key, value in zip(out, (logits, z, mu_q, logvar_q, mu_p, logvar_p)):
            out[key].append(value)
    return {k: torch.stack(v) for k, v in out.items()}


@pytest.mark.parametrize("cell", ["rnn", "gru", "lstm"])
@torch.no_grad()
def test_fast_path_matches_the_equations_step_by_step(cell):
    model, x = tiny(cell=cell), rolls()
    eps = torch.randn(len(x), T, L, generator=torch.Generator().manual_seed(5))
    run = model.posterior_pass(x, eps)
    terms = model.loss_terms(x, torch.Generator().manual_seed(5))  # draws the same eps first
    for b in range(len(x)):
        ref = equations_step_by_step(model, x[b], eps[b])
        for key, value in ref.items():
            torch.testing.assert_close(getattr(run, key)[b], value, atol=1e-5, rtol=1e-5, msg=key)
        rec = -(x[b] * torch.nn.functional.logsigmoid(ref["logits"])
                + (1 - x[b]) * torch.nn.functional.logsigmoid(-ref["logits"])).sum()
        var_q, var_p = ref["logvar_q"].exp(), ref["logvar_p"].exp()
        kl = 0.5 * (torch.log(var_p / var_q) + (var_q + (ref["mu_q"] - ref["mu_p"]) ** 2) / var_p - 1)  # (T, L)
        torch.testing.assert_close(terms.rec[b], rec, atol=1e-4, rtol=1e-5)
        torch.testing.assert_close(terms.kl[b], kl.sum(0), atol=1e-5, rtol=1e-5)  # per unit, summed over time


def test_gaussian_kl_between_matches_torch_distributions():
    g = torch.Generator().manual_seed(0)
    mu_q, lv_q, mu_p, lv_p = (torch.randn(50, generator=g) for _ in range(4))
    expected = torch.distributions.kl_divergence(
        torch.distributions.Normal(mu_q, (0.5 * lv_q).exp()), torch.distributions.Normal(mu_p, (0.5 * lv_p).exp()))
    torch.testing.assert_close(gaussian_kl_between(mu_q, lv_q, mu_p, lv_p), expected, atol=1e-5, rtol=1e-5)


@torch.no_grad()
def test_frame_t_depends_only_on_frames_before_it_through_h():
    """Changing frames from s on leaves h_0..h_s, hence the prior up to step s and the
    logits before s, as they were; the logits of frame s do change (z_s reads x_s)."""
    model, x = tiny(cell="gru"), rolls(batch=2)
    eps = torch.randn(2, T, L, generator=torch.Generator().manual_seed(2))
    s = 4
    changed = x.clone()
    changed[:, s:] = 1 - changed[:, s:]
    a, b = model.posterior_pass(x, eps), model.posterior_pass(changed, eps)
    torch.testing.assert_close(a.logits[:, :s], b.logits[:, :s], rtol=0, atol=0)
    torch.testing.assert_close(a.mu_p[:, : s + 1], b.mu_p[:, : s + 1], rtol=0, atol=0)
    torch.testing.assert_close(a.logvar_p[:, : s + 1], b.logvar_p[:, : s + 1], rtol=0, atol=0)
    assert not torch.allclose(a.logits[:, s], b.logits[:, s])
    assert not torch.allclose(a.mu_p[:, s + 1], b.mu_p[:, s + 1])  # the prior is learned from the past


@torch.no_grad()
def test_kl_is_zero_when_the_posterior_is_the_prior():
    model, x = tiny(cell="lstm"), rolls()
    f = model.config.features
    model.posterior.weight.zero_()
    model.posterior.weight[:, f:] = model.prior.weight  # ignore phi_x, read h_{t-1} as the prior does
    model.posterior.bias.copy_(model.prior.bias)
    model.posterior_mu.load_state_dict(model.prior_mu.state_dict())
    model.posterior_logvar.load_state_dict(model.prior_logvar.state_dict())
    kl = model.loss_terms(x, torch.Generator().manual_seed(0)).kl
    assert kl.shape == (len(x), L)
    torch.testing.assert_close(kl, torch.zeros_like(kl), atol=1e-6, rtol=0)
    model.posterior.weight[:, :f] = 0.5  # now the posterior reads the frames: KL > 0
    assert (model.loss_terms(x, torch.Generator().manual_seed(0)).kl.sum(1) > 1e-4).all()


def _patterns(pitches=12, steps=16):
    """Eight distinct little rolls: a rising or falling line from each of four pitches."""
    x = torch.zeros(8, steps, pitches)
    for k in range(8):
        for t in range(steps):
            x[k, t, (k // 2 * 2 + (t if k % 2 else -t)) % pitches] = 1
    return x


def _train(model, x, steps, lr=1e-2, seed=0):
    opt = torch.optim.Adam(model.parameters(), lr=lr)
    g = torch.Generator().manual_seed(seed)
    for _ in range(steps):
        terms = model.loss_terms(x, g)
        loss = (terms.rec + terms.kl.sum(1)).mean()
        opt.zero_grad()
        loss.backward()
        opt.step()
    return model


@torch.no_grad()
def _neg_elbo(model, x, seed=0, repeats=8):
    g = torch.Generator().manual_seed(seed)
    return float(np.mean([(lambda t: (t.rec + t.kl.sum(1)).mean().item())(model.loss_terms(x, g)) for _ in range(repeats)]))


@pytest.fixture(scope="module")
def trained_vrnn():
    x = _patterns()
    model = tiny(cell="gru", hidden=24, latent=2, features=16, pitches=12)
    before = _neg_elbo(model, x)
    _train(model, x, steps=150)
    return model.eval(), x, before


def test_loss_decreases_on_a_tiny_set(trained_vrnn):
    model, x, before = trained_vrnn
    after = _neg_elbo(model, x)
    assert after < 0.5 * before, (before, after)


@torch.no_grad()
def test_importance_weighted_bound_is_at_least_the_elbo_on_average(trained_vrnn):
    model, x, _ = trained_vrnn
    elbo = -_neg_elbo(model, x, seed=1, repeats=20)
    iw = model.importance_weighted_bound(x, samples=64, generator=torch.Generator().manual_seed(2)).mean().item()
    assert iw >= elbo
    iw_few = model.importance_weighted_bound(x, samples=2, generator=torch.Generator().manual_seed(2)).mean().item()
    assert iw >= iw_few - 0.05  # tighter as K grows (up to noise)


def test_checkpoint_round_trip(tmp_path, trained_vrnn):
    model, x, _ = trained_vrnn
    config = Config(model=model.config)
    save_checkpoint(tmp_path / "ckpt", model, config, list(range(60, 72)), {"note": "vrnn"})
    ckpt = load_checkpoint(tmp_path / "ckpt")
    assert isinstance(ckpt.model, VRNN) and ckpt.config.model == model.config and ckpt.config.model.features == 16
    eps = torch.randn(len(x), x.shape[1], 2, generator=torch.Generator().manual_seed(3))
    with torch.no_grad():
        a, b = model.posterior_pass(x, eps), ckpt.model.posterior_pass(x, eps)
    torch.testing.assert_close(a.logits, b.logits, rtol=0, atol=0)
    torch.testing.assert_close(model.encode(x), ckpt.model.encode(x), rtol=0, atol=0)


def test_checkpoints_without_the_new_settings_still_load(tmp_path):
    model = tiny(model="vrae")
    save_checkpoint(tmp_path / "old", model, Config(model=model.config), list(range(60, 60 + P)))
    path = tmp_path / "old" / "config.json"
    document = json.loads(path.read_text())
    del document["model"]["features"]  # as written before the VRNN existed
    path.write_text(json.dumps(document))
    assert load_checkpoint(tmp_path / "old").config.model.model == "vrae"
    assert load_config("paper-2d").model.model == "vrae"
    assert load_config("vrnn").model.model == "vrnn"


def test_model_settings_are_checked():
    with pytest.raises(ConfigError, match="unknown model 'vrnm'; known: vrae, vrnn, rnn"):
        ModelConfig(model="vrnm")
    with pytest.raises(ConfigError, match="features"):
        ModelConfig(model="vrnn", features=0)


# -- the RNN baseline ------------------------------------------------------------------


@pytest.mark.parametrize("cell", ["rnn", "lstm"])
@torch.no_grad()
def test_rnn_baseline_bounds_are_its_exact_log_likelihood(cell):
    model, x = tiny(model="rnn", cell=cell), rolls()
    assert isinstance(model, RNN)
    terms = model.loss_terms(x, torch.Generator().manual_seed(0))
    assert terms.kl.shape == (len(x), 0)
    iw = model.importance_weighted_bound(x, samples=5, generator=torch.Generator().manual_seed(0))
    torch.testing.assert_close(iw, -terms.rec, rtol=0, atol=0)
    # log p(x) = sum_t log p(x_t | x_<t), stepping through the live interface
    state, log_p = model.initial_state(torch.zeros(len(x), L)), torch.zeros(len(x))
    for t in range(T):
        p = torch.sigmoid(model.logits(state))
        log_p += (x[:, t] * p.log() + (1 - x[:, t]) * (1 - p).log()).sum(-1)
        state = model.advance(x[:, t], state, None)
    torch.testing.assert_close(iw, log_p, atol=1e-4, rtol=1e-5)


# -- the command line ------------------------------------------------------------------

TINY = ["--hidden", "16", "--latent", "2", "--window", "16", "--hop", "8", "--batch-size", "16", "--fs", "20", "-q"]


def run(*args):
    return CliRunner().invoke(main, [str(a) for a in args], catch_exceptions=False)


@pytest.mark.slow
def test_train_and_eval_each_model_through_the_cli(songs_dir, tmp_path):
    for name in ("vrnn", "rnn"):
        out = tmp_path / name
        result = run("train", songs_dir, "--out", out, "--model", name, "--cell", "gru", "--epochs", 2, *TINY)
        assert result.exit_code == 0, result.output
        assert f"model: {name} gru" in result.output
        assert json.loads((out / "config.json").read_text())["model"]["model"] == name
        ckpt = load_checkpoint(out)
        assert isinstance(ckpt.model, VRNN if name == "vrnn" else RNN)
        assert len(ckpt.meta["latent_plane"]["origin"]) == 2

        best = max(r["val_bound"] for r in read_metrics(out))
        result = run("eval", out, songs_dir, "--split", "validation", "--samples", 8, "--json")
        assert result.exit_code == 0, result.output
        figures = json.loads(result.stdout)
        assert figures["bound"] == pytest.approx(best, abs=1e-9)  # the same figure as training's validation
        if name == "vrnn":
            assert figures["kl"] > 0 and figures["iw_bound"] >= figures["bound"] - 0.05
        else:
            assert figures["kl"] == 0 and figures["iw_bound"] == pytest.approx(figures["bound"], abs=1e-9)
        assert run("info", out).exit_code == 0
        sink, stats, *_ = perform(out, 48, messages=[("/vrae/xy", (0.8, 0.2))])  # what `serve` runs
        assert stats.frames == 48
        assert_nothing_hangs(sink.messages)


# -- the live path ----------------------------------------------------------------------


def _take(model, offset, seed, hops=6, temperature=1.0):
    stream = Stream(model, window=16, hop=8, seed=seed)
    chunks = [stream.next_chunk(np.asarray(offset, dtype=np.float64), temperature=temperature) for _ in range(hops)]
    return np.concatenate([c.probs for c in chunks]), np.concatenate([c.frames for c in chunks])


def test_the_pad_offset_steers_a_vrnn_stream(trained_vrnn):
    model, x, _ = trained_vrnn
    probs_a, frames_a = _take(model, [-2.0, -2.0], seed=4)
    probs_again, frames_again = _take(model, [-2.0, -2.0], seed=4)
    probs_b, _ = _take(model, [2.0, 2.0], seed=4)
    np.testing.assert_array_equal(frames_a, frames_again)  # the stream's seed restarts the model's z noise too
    np.testing.assert_allclose(probs_a, probs_again)
    assert np.abs(probs_a - probs_b).mean() > 0.01  # another offset, other music
    # the offset shifts the prior's mean: the z_t drawn are the prior's own plus the offset
    h = torch.zeros(1, model.config.hidden)
    model.reseed(0)
    z_a = model.initial_state(torch.tensor([[-2.0, -2.0]])).z
    model.reseed(0)
    z_b = model.initial_state(torch.tensor([[2.0, 2.0]])).z
    torch.testing.assert_close(z_b - z_a, torch.full((1, 2), 4.0))
    assert model.prior_of(h)[0].shape == (1, 2)


def test_a_vrnn_stream_sounds_and_every_note_on_is_switched_off(trained_vrnn):
    model, _, _ = trained_vrnn
    _, frames = _take(model, [0.0, 0.0], seed=1, hops=8)
    assert frames.any(axis=1).mean() > 0.25  # it plays (the patterns it learned sound in every frame)
    emitter, pitches = NoteEmitter(), list(range(60, 72))
    events = [e for frame in frames for e in emitter.step(frame, np.full(12, 0.8), pitches)] + emitter.all_off()
    ons = [(e.channel, e.note) for e in events if e.kind == "on"]
    offs = [(e.channel, e.note) for e in events if e.kind == "off"]
    assert len(ons) > 0 and sorted(ons) == sorted(offs)
    assert emitter.sounding == frozenset()


@torch.no_grad()
def test_stream_context_is_fed_through_the_models_live_step(trained_vrnn):
    """advance over a block of frames equals advancing one frame at a time with the same noise."""
    model, x, _ = trained_vrnn
    offset = torch.tensor([[0.5, -0.5]])
    model.reseed(9)
    block = model.advance(x[:1, :6], model.initial_state(offset), offset)
    model.reseed(9)
    state = model.initial_state(offset)
    for t in range(6):
        state = model.advance(x[:1, t], state, offset)
    torch.testing.assert_close(block.h, state.h, rtol=0, atol=0)
    torch.testing.assert_close(model.logits(block), model.logits(state), rtol=0, atol=0)
    assert math.isfinite(model.logits(state).sum().item())
