"""The VRAE against the paper's equations, its loss against a hand computation, and learning."""

from __future__ import annotations

import math

import pytest
import torch

from vrae_live.config import ModelConfig
from vrae_live.models import build_model
from vrae_live.models.vrae import gaussian_kl

P, T, H, L = 7, 9, 11, 3


def tiny(cell="rnn", reverse_input=False, seed=0, mu_batchnorm=0.0, z_every_step=False, mu_whiten=False,
         z_skip=False):
    """The paper's model exactly: no reversed input, no batch-normalised mu, z only into h_0, unless asked."""
    torch.manual_seed(seed)
    config = ModelConfig(cell=cell, hidden=H, latent=L, reverse_input=reverse_input, mu_batchnorm=mu_batchnorm,
                         mu_whiten=mu_whiten, z_every_step=z_every_step, z_skip=z_skip)
    return build_model(P, config)


def rolls(batch=4, seed=1):
    g = torch.Generator().manual_seed(seed)
    return (torch.rand(batch, T, P, generator=g) < 0.3).float()


def paper_step_by_step(model, x, z):
    """Section 2.2 written out with the model's weights, one step at a time, for one sequence."""
    enc, dec = model.encoder, model.decoder
    W_in, W_enc, b_enc = enc.weight_ih_l0, enc.weight_hh_l0, enc.bias_ih_l0 + enc.bias_hh_l0
    h = torch.zeros(H)  # h_0 = 0
    for t in range(T):  # h_{t+1} = tanh(W_enc h_t + W_in x_{t+1} + b_enc)
        h = torch.tanh(W_enc @ h + W_in @ x[t] + b_enc)
    mu = model.to_mu.weight @ h + model.to_mu.bias
    logvar = model.to_logvar.weight @ h + model.to_logvar.bias
    W_x, W_dec, b_dec = dec.weight_ih_l0, dec.weight_hh_l0, dec.bias_ih_l0 + dec.bias_hh_l0
    h = torch.tanh(model.to_h0.weight @ z + model.to_h0.bias)  # h_0 = tanh(W_z z + b_z)
    logits = []
    for t in range(T):
        logits.append(model.to_logits.weight @ h + model.to_logits.bias)  # x_t = sigm(W_out h_t + b_out)
        h = torch.tanh(W_dec @ h + W_x @ x[t] + b_dec)  # h_{t+1}: fed the previous true frame
    return mu, logvar, torch.stack(logits)


@torch.no_grad()
def test_fast_path_matches_the_papers_equations():
    model, x = tiny(), rolls()
    z = torch.randn(len(x), L)
    mu, logvar = model.encode(x)
    logits = model.decode(z, x)
    for b in range(len(x)):
        mu_ref, logvar_ref, logits_ref = paper_step_by_step(model, x[b], z[b])
        torch.testing.assert_close(mu[b], mu_ref, atol=1e-5, rtol=1e-5)
        torch.testing.assert_close(logvar[b], logvar_ref, atol=1e-5, rtol=1e-5)
        torch.testing.assert_close(logits[b], logits_ref, atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize("z_every_step", [False, True])
@pytest.mark.parametrize("cell", ["rnn", "gru", "lstm"])
@torch.no_grad()
def test_training_feeds_the_previous_true_frame(cell, z_every_step):
    """The logits of frame t depend on frames before t only; changing frame t moves t+1 on."""
    model, x = tiny(cell, z_every_step=z_every_step), rolls(batch=1)
    z = torch.randn(1, L)
    base = model.decode(z, x)
    changed = x.clone()
    changed[0, 4] = 1 - changed[0, 4]
    out = model.decode(z, changed)
    torch.testing.assert_close(out[0, :5], base[0, :5])  # frames 0..4 unaffected
    assert not torch.allclose(out[0, 5], base[0, 5])


@pytest.mark.parametrize("z_every_step,z_skip", [(False, False), (True, False), (True, True)])
@pytest.mark.parametrize("cell", ["rnn", "gru", "lstm"])
@torch.no_grad()
def test_teacher_forced_decode_equals_the_step_api(cell, z_every_step, z_skip):
    """``initial_state``/``logits``/``advance`` (generation) and ``decode`` (training) agree."""
    model, x = tiny(cell, z_every_step=z_every_step, z_skip=z_skip), rolls()
    z = torch.randn(len(x), L)
    state = model.initial_state(z)
    stepped = []
    for t in range(T):
        stepped.append(model.logits(state))
        state = model.advance(x[:, t], state, z)
    torch.testing.assert_close(torch.stack(stepped, 1), model.decode(z, x), atol=1e-5, rtol=1e-5)


@torch.no_grad()
def test_z_every_step_reaches_frames_the_initial_state_alone_has_forgotten():
    """Fed at every step, z moves the last frame even when the decoder's state forgets h_0."""
    for z_every_step, moves in ((False, False), (True, True)):
        model, x = tiny(z_every_step=z_every_step), rolls(batch=1)
        with torch.no_grad():
            model.decoder.weight_hh_l0.zero_()  # h_{t+1} no longer depends on h_t: h_0 is forgotten in a step
        z = torch.zeros(1, L)
        shift = model.decode(z + 3.0, x)[0, -1] - model.decode(z, x)[0, -1]
        assert bool(shift.abs().max() > 1e-3) is moves


@pytest.mark.parametrize("cell", ["gru", "lstm"])
@torch.no_grad()
def test_a_skip_decoder_reads_its_code_beside_its_state(cell):
    """With z_skip the output reads z itself: the same recurrent state under another code gives other
    logits, and a z handed to advance is the one the next frame reads. Without it, the state alone."""
    model, x = tiny(cell, z_every_step=True, z_skip=True), rolls(batch=2)
    assert model.to_logits.in_features == H + L
    z = torch.randn(2, L)
    state = model.advance(x[:, 0], model.initial_state(z), z)
    other = model.advance(x[:, 0], model.initial_state(z), z + 1.0)
    recurrent = model._recurrent(state)
    swapped = model._carry(recurrent, z + 1.0, x[:, 0])
    assert not torch.allclose(model.logits(swapped), model.logits(state))
    # the state's code is the one advance was given; only it differs from the run at z + 1 in what the output reads
    torch.testing.assert_close(model._carried(other)[0], model._carried(swapped)[0])
    assert tiny(cell, z_every_step=True).to_logits.in_features == H


@pytest.mark.parametrize("cell", ["gru", "lstm"])
@pytest.mark.parametrize("skip", [False, True])
@torch.no_grad()
def test_a_hold_gate_moves_each_column_by_its_own_value_in_the_frame_before(cell, skip):
    """With hold_gate a column's logit moves by its group's gate where that column was on in the frame
    fed last, and nowhere else; teacher-forced decoding and the step API agree, from silence before the
    first frame."""
    torch.manual_seed(0)
    model = build_model(2 * P, ModelConfig(cell=cell, hidden=H, latent=L, z_every_step=True, z_skip=skip,
                                           hold_gate=True, components=3), groups=2)
    assert model.to_hold.out_features == 3 * 2
    x, z = (torch.rand(3, T, 2 * P) < 0.4).float(), torch.randn(3, L)
    state = model.initial_state(z)
    assert not model._carried(state)[1].any()  # nothing sounds before the first frame
    stepped = []
    for t in range(T):
        stepped.append(model.decode(z, x)[:, t] if t == 0 else marginal_step(model, state))
        state = model.advance(x[:, t], state, z)
    torch.testing.assert_close(torch.stack(stepped[1:], 1), model.decode(z, x)[:, 1:], atol=1e-5, rtol=1e-5)
    # one column on in the frame before: only it moves, by its group's gate in each component
    h, code = model._recurrent(state), model._carried(state)[0]
    h = (h[0] if cell == "lstm" else h).squeeze(0)
    silent, one = torch.zeros(3, 2 * P), torch.zeros(3, 2 * P)
    one[:, P + 2] = 1.0  # a note struck on the third pitch
    base, moved = model._output(h, code, silent)[0], model._output(h, code, one)[0]
    gates = model.to_hold(torch.cat([h, code], -1) if skip else h).unflatten(-1, (3, 2))
    shift = (moved - base).unflatten(-1, (3, 2 * P))
    torch.testing.assert_close(shift[..., P + 2], gates[..., 1])
    shift[..., P + 2] = 0
    assert not shift.any()


def marginal_step(model, state):
    from vrae_live.models.mixture import marginal_logits

    h = model._recurrent(state)
    h = (h[0] if model.is_lstm else h).squeeze(0)
    return marginal_logits(*model._output(h, *model._carried(state)))


def test_only_the_vrae_reads_its_code_beside_its_state():
    with pytest.raises(Exception, match="z-skip"):
        build_model(P, ModelConfig(model="vrnn", hidden=8, z_skip=True))
    with pytest.raises(Exception, match="hold-gate"):
        build_model(P, ModelConfig(model="rnn", hidden=8, hold_gate=True))


@torch.no_grad()
def test_generation_feeds_its_own_previous_output():
    model = tiny()
    z = torch.randn(2, L)
    fed = []

    def choose(p):
        frame = (p > 0.4).float()
        fed.append(frame)
        return frame

    probs, frames = model.generate(z, steps=6, choose=choose)
    assert probs.shape == frames.shape == (2, 6, P)
    torch.testing.assert_close(frames, torch.stack(fed, 1))
    # replaying the chosen frames teacher-forced reproduces the generated probabilities
    torch.testing.assert_close(torch.sigmoid(model.decode(z, frames)), probs, atol=1e-6, rtol=1e-5)


@torch.no_grad()
def test_a_single_sequence_encodes_and_decodes_without_a_batch():
    model, x = tiny(), rolls()
    mu, logvar = model.encode(x)
    mu0, logvar0 = model.encode(x[0])
    assert mu0.shape == (L,)
    torch.testing.assert_close(mu0, mu[0])
    terms = model.loss_terms(x[0], torch.Generator().manual_seed(0))
    assert terms.rec.shape == (1,) and terms.kl.shape == (1, L)


@torch.no_grad()
def test_reverse_input_reads_the_window_backwards():
    forward, backward = tiny(), tiny(reverse_input=True)
    x = rolls()
    torch.testing.assert_close(backward.encode(x)[0], forward.encode(x.flip(1))[0])


@torch.no_grad()
@torch.no_grad()
def test_batch_normalised_mu_spreads_codes_in_training_and_is_affine_at_inference():
    model, x = tiny(mu_batchnorm=0.7), rolls(batch=64)
    plain = tiny()  # the same weights without the normalisation
    model.train()
    mu, _ = model.encode(x)
    torch.testing.assert_close(mu.std(0, unbiased=False), torch.full((L,), 0.7), atol=1e-3, rtol=1e-3)
    model.eval()
    stats = model.mu_norm
    folded = 0.7 * (plain.encode(x)[0] - stats.running_mean) / torch.sqrt(stats.running_var + stats.eps)
    torch.testing.assert_close(model.encode(x)[0], folded)
    torch.testing.assert_close(model.encode(x[0])[0], folded[0])  # one sequence at inference


def test_whitened_mu_is_decorrelated_in_training_and_affine_at_inference():
    model, x = tiny(mu_batchnorm=0.7, mu_whiten=True), rolls(batch=64)
    with torch.no_grad():  # make the two units nearly the same variable, as a collapsing encoder does
        model.to_mu.weight[1] = model.to_mu.weight[0] + 0.3 * model.to_mu.weight[1]
        model.to_mu.bias[1] = model.to_mu.bias[0]
    plain = tiny()
    plain.load_state_dict({k: v for k, v in model.state_dict().items() if not k.startswith("mu_norm")})
    raw = plain.encode(x)[0]
    assert torch.corrcoef(raw.T)[0, 1] > 0.9
    model.train()
    mu, _ = model.encode(x)
    torch.testing.assert_close(torch.cov(mu.T), 0.49 * torch.eye(L), atol=5e-3, rtol=0)  # eps takes a little
    mu.sum().backward()  # a gradient flows through the whitening, and it is finite
    assert all(torch.isfinite(p.grad).all() for p in model.to_mu.parameters())
    model.eval()
    with torch.no_grad():
        at_inference = model.encode(x)[0]
        torch.testing.assert_close(model.encode(x[0])[0], at_inference[0])  # one sequence: no batch needed
        stats = model.mu_norm
        cov = stats.running_cov
        lower = torch.linalg.cholesky(cov + stats.eps * (cov.diagonal().mean() + 1e-12) * torch.eye(L))
        expected = 0.7 * torch.linalg.solve_triangular(lower, (raw - stats.running_mean).T, upper=False).T
    torch.testing.assert_close(at_inference, expected)


@torch.no_grad()
def test_loss_terms_match_a_hand_computation():
    model, x = tiny(), rolls(batch=2)
    terms = model.loss_terms(x, torch.Generator().manual_seed(5))
    mu, logvar = model.encode(x)
    eps = torch.randn(mu.shape, generator=torch.Generator().manual_seed(5))
    z = mu + torch.exp(0.5 * logvar) * eps
    p = torch.sigmoid(model.decode(z, x))
    for b in range(2):
        rec = 0.0
        for t in range(T):
            for k in range(P):
                rec -= math.log(p[b, t, k]) if x[b, t, k] == 1 else math.log(1 - p[b, t, k])
        assert terms.rec[b].item() == pytest.approx(rec, rel=1e-4)
        for j in range(L):
            m, v = mu[b, j].item(), math.exp(logvar[b, j].item())
            kl = -0.5 * (1 + math.log(v) - m * m - v)  # the paper's analytic KL term
            assert terms.kl[b, j].item() == pytest.approx(kl, rel=1e-4, abs=1e-6)


@torch.no_grad()
@pytest.mark.parametrize("components", [1, 3])
def test_own_frames_feed_the_decoders_draws_in_place_of_a_share_of_the_frames(components):
    """``own_frames`` swaps a share of the frames fed for frames the decoder draws from its own prediction
    of them: the meter fed beside them stays, a drawn note struck sounds, and a drawn note that sounds where
    the frame before was silent is struck, as the stream's gate plays them."""
    meter = 3
    model = build_model(2 * P, ModelConfig(hidden=H, latent=L, z_every_step=True, components=components),
                        n_inputs=2 * P + meter, groups=2)
    x = (torch.rand(64, T, 2 * P + meter, generator=torch.Generator().manual_seed(2)) < 0.3).float()
    z = torch.randn(64, L)
    assert torch.equal(model._own_frames(z, x, 0.0, torch.Generator().manual_seed(0)), x)
    fed = model._own_frames(z, x, 0.5, torch.Generator().manual_seed(0))
    assert torch.equal(fed[..., 2 * P:], x[..., 2 * P:])  # the meter is the window's
    swapped = (fed != x).any(-1).float().mean().item()
    assert 0.35 < swapped < 0.6  # about half the frames, each at random (a draw may equal the true frame)
    # where every column is sure to be drawn on, a swapped frame sounds every pitch and strikes only the
    # pitches it struck by its draw, here all of them
    model.to_logits.bias.data.fill_(50.0)
    model.to_logits.weight.data.zero_()
    fed = model._own_frames(z, x, 0.5, torch.Generator().manual_seed(0))
    drawn = (fed[..., :2 * P] != x[..., :2 * P]).any(-1)
    assert drawn.any()
    assert fed[..., :2 * P][drawn].eq(1).all()
    # where only sounding is sure, a note is struck exactly where the true frame before it was silent
    model.to_logits.bias.data[...] = -50.0
    for k in range(components):
        model.to_logits.bias.data[k * 2 * P:k * 2 * P + P] = 50.0
    fed = model._own_frames(z, x, 0.5, torch.Generator().manual_seed(0))
    drawn = (fed[..., :P] != x[..., :P]).any(-1) | (fed[..., P:2 * P] != x[..., P:2 * P]).any(-1)
    before = torch.cat([torch.zeros_like(x[:, :1, :P]), x[:, :-1, :P]], 1)
    assert drawn.any()
    assert torch.equal(fed[..., :P][drawn], torch.ones_like(fed[..., :P][drawn]))
    assert torch.equal(fed[..., P:2 * P][drawn], 1 - before[drawn])


def test_own_frames_change_the_loss_and_train_only_through_the_true_frames_predicted():
    """The frames drawn are fed, not predicted: the loss still scores the window's own frames, with a
    gradient, and differs from teacher forcing only by what was fed."""
    model = build_model(P, ModelConfig(hidden=H, latent=L, z_every_step=True))
    x = rolls(batch=8)
    forced = model.loss_terms(x, torch.Generator().manual_seed(5))
    own = model.loss_terms(x, torch.Generator().manual_seed(5), own_frames=0.9)
    assert not torch.allclose(forced.rec, own.rec)
    own.rec.sum().backward()
    assert model.to_logits.weight.grad.abs().sum() > 0


def test_gaussian_kl_is_zero_only_at_the_prior():
    assert gaussian_kl(torch.zeros(3), torch.zeros(3)).abs().max() == 0
    assert (gaussian_kl(torch.tensor([0.5, 0.0]), torch.tensor([0.0, -1.0])) > 0).all()


def _patterns() -> torch.Tensor:
    """Four distinct 12-step patterns over 8 pitches: a rising, a falling line, two chords."""
    x = torch.zeros(4, 12, 8)
    for t in range(12):
        x[0, t, t % 8] = 1
        x[1, t, 7 - t % 8] = 1
        x[2, t, [0, 2, 4]] = 1 if t % 4 < 2 else 0
        x[3, t, [1, 5]] = 1 if t % 3 == 0 else 0
    return x


@pytest.mark.slow
def test_a_tiny_model_learns_a_few_patterns():
    torch.manual_seed(0)
    model = build_model(8, ModelConfig(cell="gru", hidden=48, latent=2))  # the defaults: BN mu, reversed input
    x = _patterns().repeat(8, 1, 1)  # (32, 12, 8)
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-2)
    g = torch.Generator().manual_seed(0)

    def loss():
        terms = model.loss_terms(x, g)
        return terms.rec.mean() + terms.kl.sum(1).mean()

    with torch.no_grad():
        start = loss().item()
    for _ in range(300):
        optimizer.zero_grad()
        value = loss()
        value.backward()
        optimizer.step()
    with torch.no_grad():
        end = loss().item()
        assert end < 0.1 * start
        model.eval()
        mu, _ = model.encode(_patterns())
        _, frames = model.generate(mu, steps=12)  # free-running from the codes, thresholded
    assert torch.equal(frames, _patterns())


@pytest.mark.parametrize("model", ["vrae", "vrnn"])
@pytest.mark.parametrize("log_variance", [1e4, -1e4])
@torch.no_grad()
def test_an_extreme_log_variance_leaves_the_loss_finite(model, log_variance):
    """log sigma^2 is clamped where it is made, so exp(logvar) cannot overflow to inf (or 1/exp to inf)."""
    torch.manual_seed(0)
    net = build_model(P, ModelConfig(model=model, hidden=H, latent=L, features=5))
    for name, parameter in net.named_parameters():
        if "logvar" in name and name.endswith("bias"):
            parameter.fill_(log_variance)
    x, noise = rolls(), torch.Generator().manual_seed(0)
    terms = net.loss_terms(x, noise)
    assert torch.isfinite(terms.rec).all() and torch.isfinite(terms.kl).all()
    assert torch.isfinite(net.importance_weighted_bound(x, 3, noise)).all()


@pytest.mark.parametrize("whiten", [False, True])
def test_settled_statistics_give_the_training_windows_the_codes_training_gives_them(whiten):
    """After a training step the running averages lag (one step of momentum 0.1); settled on the
    windows, the means outside training are spread exactly as training spreads them."""
    from vrae_live.training.evaluation import encode_means, settled_means

    model, x = tiny(mu_batchnorm=0.7, mu_whiten=whiten), rolls(batch=64)
    with torch.no_grad():  # a tight spread about a far mean, as the chorales' encoder had
        model.to_mu.weight.mul_(1e-3)
        model.to_mu.bias.fill_(4.0)
    model.train()
    model.encode(x)  # the running estimates move a tenth of the way towards this batch
    lagging = encode_means(model, x)
    assert (lagging.mean(0).abs() > 1.0).all()  # the codes far from where training put them

    means = settled_means(model, x)
    torch.testing.assert_close(means, encode_means(model, x))  # the model now encodes them so outside training
    torch.testing.assert_close(means.mean(0), torch.zeros(L), atol=5e-3, rtol=0)  # float32 of a spread 1e-3 about 4
    expected = torch.cov(model.train().encode(x)[0].T).detach()  # the spread training gives them
    torch.testing.assert_close(torch.cov(means.T), expected, atol=5e-3, rtol=1e-2)
    assert model.training  # left in the mode it was in
