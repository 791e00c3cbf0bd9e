"""Training length and batch fitted to the corpus: a handful of songs still gets the steps a pad needs."""

from __future__ import annotations

import pytest
from click.testing import CliRunner

from vrae_live.checkpoint import read_config
from vrae_live.cli import main
from vrae_live.config import load_config
from vrae_live.training.length import MAX_EPOCHS, fit_to_corpus


def test_epochs_are_the_step_budget_in_epochs_of_the_corpus():
    config = load_config("live-2d")  # all the chorales: 5,072 windows, 51 steps an epoch
    fitted, said = fit_to_corpus(config, 5072)
    assert fitted.train.batch_size == 100
    assert fitted.train.epochs == -(-config.train.max_steps // 51)
    assert len(said) == 1 and "until the validation bound stops improving" in said[0]


def test_a_handful_of_songs_gets_one_batch_and_more_epochs():
    config = load_config("live-2d")  # 8 chorales give 98 windows: less than one batch of 100
    fitted, said = fit_to_corpus(config, 98)
    assert fitted.train.batch_size == 98
    assert fitted.train.epochs == min(MAX_EPOCHS, config.train.max_steps)  # one step an epoch
    assert fitted.train.kl_anneal_steps == config.train.kl_anneal_steps  # in steps: the same whatever the corpus
    assert len(said) == 2 and "batches of 98" in said[0] and "epochs of 1 step" in said[1]


def test_the_exponential_schedule_runs_the_whole_budget():
    config = load_config("live-2d", {"schedule": "exponential"})
    fitted, said = fit_to_corpus(config, 800)  # 8 steps an epoch
    assert fitted.train.epochs == -(-config.train.max_steps // 8)  # the whole budget, in whole epochs
    assert "until" not in said[0]


def test_what_the_command_line_gives_is_kept():
    config = load_config("live-2d", {"epochs": 3, "batch_size": 100})
    fitted, said = fit_to_corpus(config, 98, explicit={"epochs", "batch_size"})
    assert fitted == config and said == []


@pytest.mark.slow
def test_train_says_how_it_fitted_itself_and_saves_the_length_it_ran(songs_dir, tmp_path):
    preset = tmp_path / "small.toml"
    preset.write_text('[data]\nfs = 20.0\nwindow = 32\nhop = 16\n[model]\nhidden = 8\nlatent = 2\n'
                      '[train]\nepochs = 2\nmax_steps = 6\nbatch_size = 1000\n')
    out = tmp_path / "run"
    result = CliRunner().invoke(main, ["train", str(songs_dir), "--out", str(out), "--preset", str(preset), "-q"])
    assert result.exit_code == 0, result.output
    assert "fitted to the corpus: batches of" in result.output
    assert "fitted to the corpus: at most 6 epochs of 1 step(s)" in result.output
    saved = read_config(out)
    assert saved["train"]["epochs"] == 6 and saved["training"]["epochs_done"] == 6
    assert saved["train"]["batch_size"] < 1000
