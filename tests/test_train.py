"""Training: metrics, the best checkpoint, the latent plane, and exact resume."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from vrae_live.checkpoint import load_checkpoint
from vrae_live.config import load_config
from vrae_live.data.corpus import prepare_data
from vrae_live.errors import TrainingError
from vrae_live.models import LossTerms
from vrae_live.pad import latent_plane
from vrae_live.training.evaluation import active_units, copy_bound
from vrae_live.training.progress import BOUND_SLACK, Progress
from vrae_live.training.run import read_metrics
from vrae_live.training.schedule import LR_DROP, MIN_GAIN, Plateau
from vrae_live.training.trainer import MAX_SKIPS_IN_A_ROW, Trainer

SETTINGS = dict(hidden=16, latent=2, window=16, hop=8, batch_size=16, epochs=3, lr=3e-3, fs=20)


def make_trainer(songs_dir, out_dir, **overrides):
    config = load_config(None, {**SETTINGS, **overrides})
    data = prepare_data(songs_dir, config.data, config.train.seed, config.train.batch_size)
    return Trainer(config, data, out_dir)


def test_training_writes_metrics_and_the_best_checkpoint(songs_dir, tmp_path):
    trainer = make_trainer(songs_dir, tmp_path / "run", epochs=4)
    summary = trainer.fit()
    rows = read_metrics(tmp_path / "run")
    assert [r["epoch"] for r in rows] == [1, 2, 3, 4]
    for row in rows:
        assert {"train_bound", "val_bound", "train_kl", "train_rec", "active_units", "lr", "seconds"} <= set(row)
        assert row["train_bound"] == pytest.approx(-(row["train_rec"] + row["train_kl"]) / SETTINGS["window"])
    assert rows[-1]["train_bound"] > rows[0]["train_bound"]
    assert all(r["lr"] == pytest.approx(trainer.config.train.lr) for r in rows)  # improving: the rate is held
    best = max(rows, key=lambda r: r["val_bound"])
    assert summary["best_epoch"] == best["epoch"] and not summary["interrupted"]
    ckpt = load_checkpoint(tmp_path / "run")
    assert ckpt.meta["training"]["best_bound"] == pytest.approx(best["val_bound"])
    assert ckpt.meta["training"]["val_songs"] and ckpt.meta["training"]["train_songs"]
    plane = ckpt.meta["latent_plane"]
    assert len(plane["songs"]) == len(ckpt.meta["training"]["train_songs"])


def test_the_exponential_schedule_and_the_kl_annealing():
    config = load_config(None, {"epochs": 4, "lr": 1e-3, "lr_final": 1e-5, "kl_anneal_steps": 20,
                                "schedule": "exponential"})
    trainer = Trainer.__new__(Trainer)  # the schedules need only the config and the epoch length
    trainer.config, trainer.steps_per_epoch = config, 10
    assert trainer.learning_rate(0) == pytest.approx(1e-3)
    assert trainer.learning_rate(39) == pytest.approx(1e-5)
    assert trainer.learning_rate(20) < trainer.learning_rate(19)
    assert [trainer.kl_weight(s) for s in (0, 10, 20, 30)] == [0.0, 0.5, 1.0, 1.0]
    trainer.config = load_config(None, {"kl_anneal_steps": 40, "kl_cycles": 2})  # two cycles of 20
    assert [trainer.kl_weight(s) for s in (0, 5, 10, 19, 20, 25, 39, 40, 1000)] == [
        0.0, 0.5, 1.0, 1.0, 0.0, 0.5, 1.0, 1.0, 1.0]


def test_the_plateau_holds_the_rate_then_lowers_it_then_stops():
    t = load_config(None, {"lr": 1e-2, "lr_final": 1e-4, "patience": 10}).train
    plateau = Plateau()
    for bound in (-8.0, -7.0, -6.5):  # improving: the rate is held
        assert plateau.after_epoch(t, bound, 5) is None
    assert plateau.rate(t) == pytest.approx(1e-2)
    assert plateau.after_epoch(t, -6.5 + MIN_GAIN / 2, 5) is None  # too small a gain: 5 steps waited
    assert plateau.after_epoch(t, -6.6, 5) == "drop"  # 10 steps without a better bound
    assert plateau.rate(t) == pytest.approx(1e-2 * LR_DROP)
    assert plateau.after_epoch(t, -6.4, 5) is None and plateau.waited == 0  # better: the wait restarts
    assert plateau.after_epoch(t, -6.4, 10) == "drop"
    assert plateau.rate(t) == pytest.approx(1e-4)  # the lowest rate
    assert plateau.after_epoch(t, float("nan"), 10) == "converged" and plateau.converged


def test_a_run_under_the_plateau_stops_when_it_has_converged(songs_dir, tmp_path):
    trainer = make_trainer(songs_dir, tmp_path / "run", epochs=500, patience=4, kl_anneal_steps=0, lr=1e-2)
    summary = trainer.fit()
    rows = read_metrics(tmp_path / "run")
    assert summary["converged"] and rows[-1]["epoch"] < 500 and summary["epochs_done"] == rows[-1]["epoch"]
    rates = [r["lr"] for r in rows]
    assert rates[0] == pytest.approx(1e-2) and rates[-1] == pytest.approx(trainer.config.train.lr_final)
    assert rates == sorted(rates, reverse=True)  # held, then lowered, never raised
    assert summary["best_bound"] == pytest.approx(max(r["val_bound"] for r in rows))


def test_the_copy_bound_scores_what_it_fits():
    held = torch.ones(4, 10, 3)  # a chord that never ends: copying predicts it (almost) surely
    assert copy_bound(held, held) == pytest.approx(0.0, abs=1e-4)
    rng = torch.Generator().manual_seed(0)
    noise = (torch.rand(50, 32, 8, generator=rng) < 0.3).float()
    coin = 8 * (0.3 * math.log(0.3) + 0.7 * math.log(0.7))  # what an independent coin per pitch scores
    assert copy_bound(noise, noise) == pytest.approx(coin, abs=0.1)
    assert copy_bound(held, noise) < coin  # fitted on held notes, it expects the wrong thing of noise


def test_the_copy_bound_of_onsets_knows_a_note_struck_again():
    held = torch.zeros(6, 12, 6)  # (N, W, 2P): 3 pitches held through, struck on frames 0, 4 and 8
    held[:, :, :3] = 1
    held[:, ::4, 3:] = 1
    as_roll = copy_bound(held[..., :3], held[..., :3])
    with_onsets = copy_bound(held, held, pitches=3)
    assert as_roll == pytest.approx(0.0, abs=1e-4)
    # the onsets cost what a coin of p = 2/11 (struck at 4 and 8 of frames 1..11) costs each held pitch
    strike = 2 / 11
    cost = 3 * 11 / 12 * (strike * math.log(strike) + (1 - strike) * math.log(1 - strike))
    assert with_onsets == pytest.approx(cost, abs=1e-3)


@pytest.mark.parametrize("stop_at", [5, 14])  # mid-epoch, and the last batch of an epoch
def test_resume_ends_where_an_uninterrupted_run_would(songs_dir, tmp_path, stop_at):
    straight = make_trainer(songs_dir, tmp_path / "straight")
    straight.fit()

    def stop(trainer):
        if trainer.progress.global_step == stop_at:
            trainer.request_stop()

    first = make_trainer(songs_dir, tmp_path / "resumed")
    first.on_step = stop
    assert first.fit()["interrupted"]
    assert (tmp_path / "resumed" / "resume" / "optimizer.pt").is_file()

    second = make_trainer(songs_dir, tmp_path / "resumed")
    second.resume()
    assert second.progress.global_step == stop_at
    assert not second.fit()["interrupted"]

    for name, weight in straight.model.state_dict().items():
        assert torch.equal(weight, second.model.state_dict()[name]), name
    def drop_time(rows):
        return [{k: v for k, v in r.items() if k != "seconds"} for r in rows]
    assert drop_time(read_metrics(tmp_path / "resumed")) == drop_time(read_metrics(tmp_path / "straight"))


def test_active_units_counts_units_whose_means_vary():
    means = torch.stack([torch.linspace(-1, 1, 50), torch.full((50,), 0.3), 0.01 * torch.randn(50)], 1)
    assert active_units(means) == 1


def test_latent_plane_spans_the_songs_for_two_and_more_dimensions():
    rng = np.random.default_rng(0)
    song = np.repeat(np.arange(4), 30)
    centres = np.array([[-2, -2], [2, -2], [-2, 2], [2, 2]], dtype=float)
    means2 = centres[song] + 0.1 * rng.standard_normal((120, 2))
    plane = latent_plane(means2, song, ["a", "b", "c", "d"])
    axes = np.array(plane["axes"])
    np.testing.assert_allclose(axes @ axes.T, np.eye(2), atol=1e-9)
    corners = sorted(tuple(np.round(s["uv"], 0)) for s in plane["songs"])
    assert len(set(corners)) == 4  # the four songs land in four different corners

    basis = np.linalg.qr(rng.standard_normal((6, 2)))[0].T  # a random plane in 6-D
    means6 = 5.0 + means2 @ basis + 0.01 * rng.standard_normal((120, 6))
    plane6 = latent_plane(means6, song, ["a", "b", "c", "d"])
    axes = np.array(plane6["axes"])
    assert axes.shape == (2, 6)
    np.testing.assert_allclose(np.linalg.norm(axes @ basis.T, axis=1), 1.0, atol=0.01)  # axes lie in the plane
    assert np.allclose(plane6["origin"], means6.mean(0))
    corners = sorted(tuple(np.round(s["uv"], 0)) for s in plane6["songs"])
    assert len(set(corners)) == 4  # the four songs land in four different corners


def test_songs_on_one_diagonal_of_a_2d_latent_spread_along_the_pads_x_axis():
    """Two latent units carrying the same variable: the pad turns to the songs' main direction,
    so they spread across it from edge to edge, and no corner is left far from every song."""
    rng = np.random.default_rng(1)
    song = np.repeat(np.arange(5), 20)
    t = np.linspace(-1.5, 1.5, 5)[song]
    means = np.stack([t, 0.9 * t + 0.3], 1) + 0.05 * rng.standard_normal((100, 2))
    plane = latent_plane(means, song, list("abcde"))
    x_axis = np.array(plane["axes"][0])
    assert abs(x_axis @ np.array([1.0, 0.9]) / np.linalg.norm([1.0, 0.9])) > 0.99
    xs = sorted(s["uv"][0] for s in plane["songs"])
    assert xs[0] < 0.1 and xs[-1] > 0.9
    # The axes point the same way whatever sign the eigenvectors came out with: 'a', low on
    # both latent units, is at the left, and mirrored codes give the same axes.
    uv = {s["name"]: s["uv"] for s in plane["songs"]}
    assert uv["a"][0] < 0.1 and uv["e"][0] > 0.9
    np.testing.assert_allclose(latent_plane(-means, song, list("abcde"))["axes"], plane["axes"], atol=1e-9)


def test_whitened_codes_turn_the_pad_to_where_the_songs_differ():
    """Codes whitened in training spread alike in every direction over the windows; the pad's x
    is still the direction along which the songs' own codes differ, and one song alone gives
    the windows' main directions."""
    rng = np.random.default_rng(2)
    d = np.array([np.cos(0.5), np.sin(0.5)])
    across = np.array([-d[1], d[0]])
    song = np.repeat(np.arange(4), 200)
    along = np.array([-1.5, -0.5, 0.5, 1.5])[song] * 1.2 + 0.3 * rng.standard_normal(800)
    means = np.outer(along, d) + np.outer(1.4 * rng.standard_normal(800), across)
    means = (means - means.mean(0)) @ np.linalg.inv(np.linalg.cholesky(np.cov(means.T))).T  # whitened
    np.testing.assert_allclose(np.cov(means.T), np.eye(2), atol=1e-9)
    apart = means[song == 3].mean(0) - means[song == 0].mean(0)
    plane = latent_plane(means, song, list("abcd"))
    assert abs(np.array(plane["axes"][0]) @ apart / np.linalg.norm(apart)) > 0.99
    xs = [s["uv"][0] for s in plane["songs"]]
    assert xs == sorted(xs) or xs == sorted(xs, reverse=True)  # the songs in order across the pad

    one = latent_plane(np.outer(rng.standard_normal(100), d) + 0.1 * rng.standard_normal((100, 2)),
                       np.zeros(100, dtype=int), ["a"])
    assert abs(np.array(one["axes"][0]) @ d) > 0.99


def test_the_pad_is_widened_to_a_minimum_extent_around_the_origin():
    means = np.array([[0.01, -0.02], [-0.01, 0.02], [0.0, 0.0]])
    song = np.array([0, 0, 1])
    tight = latent_plane(means, song, ["a", "b"])
    wide = latent_plane(means, song, ["a", "b"], min_extent=2.0)
    assert max(tight["hi"]) < 0.1
    assert wide["lo"] == [-2.0, -2.0] and wide["hi"] == [2.0, 2.0]
    assert all(0.49 < u < 0.51 for s in wide["songs"] for u in s["uv"])  # the songs sit near the centre


# -- a loss that is not finite -------------------------------------------------------


def files_in(directory):
    """Every file under ``directory`` and its bytes."""
    return {p.relative_to(directory): p.read_bytes() for p in sorted(directory.rglob("*")) if p.is_file()}


def test_a_step_with_a_nan_loss_is_skipped_and_counted(songs_dir, tmp_path):
    trainer = make_trainer(songs_dir, tmp_path / "run", epochs=1)
    p = trainer.progress
    poisoned = trainer.batches.draw(torch.arange(16)).clone()
    poisoned[0, 0, 0] = float("nan")
    before = {name: w.clone() for name, w in trainer.model.state_dict().items()}
    trainer._train_step(poisoned)
    assert all(torch.equal(w, trainer.model.state_dict()[name]) for name, w in before.items())
    assert not trainer.optimizer.state  # Adam never stepped
    assert (p.skipped_in_epoch, p.skips_in_a_row, p.step_in_epoch, p.sums["n"]) == (1, 1, 1, 0)
    trainer._train_step(trainer.batches.draw(torch.arange(16)))
    assert (p.skipped_in_epoch, p.skips_in_a_row, p.sums["n"]) == (1, 0, 16)  # a good step ends the run of skips
    trainer.fit()  # the rest of the epoch
    assert read_metrics(tmp_path / "run")[0]["skipped_steps"] == 1


def test_training_that_diverges_stops_and_saves_nothing(songs_dir, tmp_path, monkeypatch):
    """From epoch 2 every loss is nan: after 5 skips a one-line error, and the files of epoch 1 are untouched."""
    out = tmp_path / "run"
    trainer = make_trainer(songs_dir, out, epochs=3)
    assert trainer.steps_per_epoch > MAX_SKIPS_IN_A_ROW
    real_loss_terms = trainer.model.loss_terms
    after_epoch_1 = {}

    def nan_from_epoch_2(x, *args):
        terms = real_loss_terms(x, *args)
        if trainer.progress.epoch == 0:
            return terms
        if not after_epoch_1:
            after_epoch_1.update(files_in(out))
        return LossTerms(rec=terms.rec * float("nan"), kl=terms.kl)

    monkeypatch.setattr(trainer.model, "loss_terms", nan_from_epoch_2)
    with pytest.raises(TrainingError, match=r"^training diverged at epoch 2, step 5: .* try a lower --lr"):
        trainer.fit()
    assert trainer.progress.skipped_in_epoch == MAX_SKIPS_IN_A_ROW
    assert {"resume/model.safetensors", "model.safetensors", "metrics.jsonl"} <= {str(p) for p in after_epoch_1}
    assert files_in(out) == after_epoch_1  # neither resume/ nor the best checkpoint was written again
    assert all(torch.isfinite(w).all() for w in load_checkpoint(out / "resume").model.parameters())


def test_weights_that_are_not_finite_are_never_saved(songs_dir, tmp_path):
    out = tmp_path / "run"
    trainer = make_trainer(songs_dir, out, epochs=1)
    trainer.fit()
    saved = files_in(out)
    with torch.no_grad():
        next(trainer.model.parameters()).view(-1)[0] = float("inf")
    with pytest.raises(TrainingError, match="no longer finite"):
        trainer._save_resumable(interrupted=True)
    with pytest.raises(TrainingError, match="no longer finite"):
        trainer._save_best({}, torch.zeros(len(trainer.measured_train), 2))
    assert files_in(out) == saved


def test_the_kept_epoch_is_one_whose_pad_steers(tmp_path):
    """A pad that steers beats a slightly better bound whose pad does not; between equals, the bound decides."""
    progress = Progress()  # the rule alone: no model, no data
    rows = [
        dict(epoch=1, val_bound=-5.0, train_bound=-5.0, steers=False),
        dict(epoch=2, val_bound=-5.2, train_bound=-5.2, steers=True),   # worse bound, but it steers: kept
        dict(epoch=3, val_bound=-4.8, train_bound=-4.8, steers=False),  # better bound, dead pad: not kept
        dict(epoch=4, val_bound=-5.1, train_bound=-5.1, steers=True),   # steers, better than epoch 2: kept
        dict(epoch=5, val_bound=float("nan"), train_bound=-4.0, steers=True),
        dict(epoch=6, val_bound=-4.5, train_bound=-4.5, steers=False),  # better by more than the slack: kept
        dict(epoch=7, val_bound=-4.9, train_bound=-4.9, steers=True),   # steers, within the slack of 6: kept
    ]
    kept = [progress.keeps(row, pad_checked=False) for row in rows]
    assert BOUND_SLACK == 0.5
    assert kept == [True, True, False, True, False, True, True]
    assert (progress.best_epoch, progress.best_bound) == (7, -4.9)


def test_one_lucky_pad_check_among_low_ones_does_not_make_a_pad_that_steers():
    """Whether the pad steers is judged on the median of the last three quick checks."""
    from vrae_live.measure.pad_check import RECENT_CHECKS, steering_lately
    from vrae_live.measure.steering import STEERS

    assert RECENT_CHECKS == 3
    assert steering_lately([0.9, 1.98, 1.1]) < STEERS  # a lucky check between two low ones
    assert steering_lately([3.0, 3.0, 0.9, 1.98, 1.1]) < STEERS  # older checks no longer count
    assert steering_lately([1.6, 1.2, 1.7]) >= STEERS  # two of three steer
    assert steering_lately([2.0]) == 2.0


def test_the_pad_check_is_given_the_earlier_checks_and_they_survive_a_resume(songs_dir, tmp_path):
    figures = iter([1.0, 2.0, 3.0, 4.0])
    seen = []

    def pad_check(checkpoint, earlier):
        seen.append(list(earlier))
        weakest = next(figures)
        return {"steering_weaker": weakest, "seams": 1.0, "steers": weakest >= 2.0}

    first = make_trainer(songs_dir, tmp_path / "run", epochs=4)
    first.pad_check = pad_check
    first.on_step = lambda trainer: trainer.request_stop() if trainer.progress.epoch == 2 else None
    assert first.fit()["interrupted"]
    second = make_trainer(songs_dir, tmp_path / "run", epochs=4)
    second.pad_check = pad_check
    second.resume()
    second.fit()
    assert seen == [[], [1.0], [1.0, 2.0], [1.0, 2.0, 3.0]]
    assert [row["steers"] for row in read_metrics(tmp_path / "run")] == [False, True, True, True]


def test_the_pad_check_plays_the_model_as_serve_will(songs_dir, tmp_path):
    """In the songs' bar, as many notes at once as they keep to, and in their key (for a decoder told it)."""
    checked = []
    trainer = make_trainer(songs_dir, tmp_path / "run", epochs=2)
    trainer.data.bar_quarters, trainer.data.polyphony = 3.0, 2  # a waltz in two voices
    trainer.pad_check = lambda checkpoint, earlier: checked.append(checkpoint) or {"steering_weaker": 1.0, "seams": 1.0}
    trainer.fit()
    assert checked and all((c.bar_quarters, c.polyphony, c.songs_key) == (3.0, 2, trainer.songs_key) for c in checked)


def test_the_encoder_catches_up_alone_in_the_first_quarter_of_the_run(songs_dir, tmp_path):
    """Aggressive training of the encoder (He et al. 2019): its own steps move q(z|x) and leave the
    decoder as it was, and they come before the steps of the first quarter of the run only."""
    trainer = make_trainer(songs_dir, tmp_path / "run", epochs=4, encoder_steps=2)
    model, n = trainer.model, trainer.config.train.batch_size
    encoder = {id(p) for p in model.encoder_parameters()}
    before = {name: p.detach().clone() for name, p in model.named_parameters()}
    trainer.catch_up.run(lambda g: trainer._loss(trainer._random_batch(g, n), n)[1:], 1e-3, torch.Generator().manual_seed(0))
    for name, p in model.named_parameters():
        moved = not torch.equal(p, before[name])
        assert moved == (id(p) in encoder), name

    steps_of_the_encoder = []
    run = trainer.catch_up.run
    trainer.catch_up.run = lambda *args: (steps_of_the_encoder.append(trainer.progress.global_step), run(*args))
    trainer.fit()
    assert trainer.total_steps >= 8 and steps_of_the_encoder == list(range(trainer.total_steps // 4))


def test_encoder_steps_are_for_the_vrae(songs_dir, tmp_path):
    from vrae_live.errors import ConfigError

    with pytest.raises(ConfigError, match="--encoder-steps is for the vrae"):
        make_trainer(songs_dir, tmp_path / "run", model="vrnn", encoder_steps=2)


def test_the_bag_of_notes_trains_the_code_and_stays_out_of_the_bound(songs_dir, tmp_path):
    """--bag-of-notes: the loss of predicting each window's notes from z alone is part of what
    training minimises (it moves the encoder and its own head, never the decoder), not of the bound."""
    trainer = make_trainer(songs_dir, tmp_path / "run", bag_of_notes=2.0)
    model, n = trainer.model, trainer.config.train.batch_size
    batch = trainer._random_batch(torch.Generator().manual_seed(0), n)
    trainer.progress.global_step = trainer.config.train.kl_anneal_steps  # KL at full weight
    terms, loss, whole = trainer._loss(batch, n)
    assert terms.notes is not None and terms.notes.shape == (len(batch),)
    plain = terms.rec.mean() + torch.clamp(terms.kl.mean(0), min=trainer.config.train.free_bits).sum()
    torch.testing.assert_close(loss, plain + 2.0 * terms.notes.mean())
    torch.testing.assert_close(whole, (terms.rec.mean() + terms.kl.mean(0).sum()).detach())

    model.zero_grad()
    terms.notes.sum().backward()
    moved = {name for name, p in model.named_parameters() if p.grad is not None and p.grad.abs().sum() > 0}
    assert {"to_notes.weight", "to_mu.weight", "encoder.weight_ih_l0"} <= moved
    assert not any(name.startswith(("decoder.", "to_logits.", "to_h0.")) for name in moved), moved


def test_the_bag_of_notes_is_for_the_vrae(songs_dir, tmp_path):
    from vrae_live.errors import ConfigError

    with pytest.raises(ConfigError, match="--bag-of-notes is for the vrae"):
        make_trainer(songs_dir, tmp_path / "run", model="vrnn", bag_of_notes=1.0)


def test_transposition_moves_whole_windows_onto_the_models_pitches():
    from vrae_live.training.batches import Transposer

    pitches = [60, 62, 64, 65, 67]  # a gap at 61, 63 and 66: not every shift lands on a pitch
    transpose = Transposer(pitches, 2, torch.device("cpu"))
    batch = torch.zeros(3, 4, 5)
    batch[0, :, 0] = 1  # C: only up a tone (D); down would leave the pitches
    batch[1, :2, 4] = 1  # G, then nothing: down a tone (F) or stays
    batch[2, :, 1] = batch[2, 1:, 3] = 1  # D and F: up a tone (E and G) or stays
    seen = [set(), set(), set()]
    for seed in range(40):
        moved = transpose(batch, transpose.draws(3, torch.Generator().manual_seed(seed)))
        assert moved.sum((1, 2)).tolist() == batch.sum((1, 2)).tolist()  # no note lost
        for i in range(3):
            sounding = tuple(pitches[j] for j in torch.nonzero(moved[i].amax(0)).flatten().tolist())
            seen[i].add(sounding)
        assert moved[1, 2:].sum() == 0 and moved[2, 0].sum() == 1  # the rhythm is the window's own
    assert seen == [{(60,), (62,)}, {(67,), (65,)}, {(62, 65), (64, 67)}]


def test_transposition_moves_the_onsets_with_their_notes():
    from vrae_live.training.batches import Transposer

    pitches = [60, 62, 64, 65, 67]
    transpose = Transposer(pitches, 2, torch.device("cpu"), columns=10)
    batch = torch.zeros(8, 6, 13)  # (B, W, 2P + 3): the sounding columns, the onsets, and a meter that stays
    batch[:, :, 10 + torch.arange(6) % 3] = 1
    batch[:, :, 1] = 1  # D held through the window...
    batch[:, 0, 6] = batch[:, 3, 6] = 1  # ...struck at 0 and again at 3
    moved = transpose(batch, transpose.draws(8, torch.Generator().manual_seed(1)))
    sounding, struck = moved[..., :5], moved[..., 5:10]
    assert len({int(torch.nonzero(w.amax(0)).flatten()) for w in sounding}) > 1  # not every window stays
    for w_sounding, w_struck in zip(sounding, struck):
        column = int(torch.nonzero(w_sounding.amax(0)).flatten())
        assert w_sounding[:, column].tolist() == [1] * 6
        assert w_struck[:, column].tolist() == [1, 0, 0, 1, 0, 0] and w_struck.sum() == 2
    assert torch.equal(moved[..., 10:], batch[..., 10:])


def test_transposition_and_weight_decay_train(songs_dir, tmp_path):
    trainer = make_trainer(songs_dir, tmp_path / "run", epochs=2, transpose=3, weight_decay=0.01)
    assert trainer.fit()["epochs_done"] == 2
    assert trainer.optimizer.param_groups[0]["weight_decay"] == 0.01


@pytest.mark.parametrize("cycles, keeps_from", [(0, 60), (2, 15)])  # the weight at 1 for good, or once
def test_a_run_neither_stops_before_the_kl_weight_settles_nor_keeps_an_epoch_before_it_is_full(
        songs_dir, tmp_path, cycles, keeps_from):
    trainer = make_trainer(songs_dir, tmp_path / "run", epochs=500, patience=2, kl_anneal_steps=60, kl_cycles=cycles,
                           lr=1e-2)
    summary = trainer.fit()
    assert summary["converged"] and summary["steps"] >= 60
    rows = read_metrics(tmp_path / "run")
    kept = next(r for r in rows if r["epoch"] == summary["best_epoch"])
    assert summary["best_epoch"] * trainer.steps_per_epoch >= keeps_from
    candidates = [r for r in rows if r["epoch"] * trainer.steps_per_epoch >= keeps_from]
    assert kept["val_bound"] == max(r["val_bound"] for r in candidates)  # the best of those it may keep


@pytest.mark.parametrize("train_bound, says", [(-3.4, "it learnt them, not their style"), (-4.9, "train longer")])
def test_a_model_that_does_not_beat_copying_is_told_why(caplog, train_bound, says):
    import logging

    from vrae_live.cli.training import _say_whether_it_beats_copying

    summary = {"best_bound": -4.8, "copy_bound": -4.51, "bound_on": "validation", "best_epoch": 2,
               "train_songs": ["a.mid"] * 7}
    rows = [{"epoch": 1, "train_bound": -9.0, "val_bound": -9.0}, {"epoch": 2, "train_bound": train_bound,
                                                                    "val_bound": -4.8}]
    with caplog.at_level(logging.INFO, logger="vrae_live"):
        _say_whether_it_beats_copying(summary, True, rows)
    assert "does not beat copying" in caplog.text and says in caplog.text
