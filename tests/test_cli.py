"""Every command through click's CliRunner, and Ctrl-C on a real training process."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys

import pytest
from click.testing import CliRunner

from tests.songs import write_corrupt, write_drums_only
from vrae_live.checkpoint import load_checkpoint, read_config
from vrae_live.cli import main
from vrae_live.config import DEFAULT_PRESET, default_checkpoint, list_presets, load_config, with_changes
from vrae_live.training.run import read_metrics

TINY = ["--hidden", "16", "--latent", "2", "--window", "16", "--hop", "8", "--batch-size", "16", "--fs", "20", "-q"]


def run(*args):
    result = CliRunner().invoke(main, [str(a) for a in args], catch_exceptions=False)
    return result


@pytest.mark.slow
def test_train_info_eval(songs_dir, tmp_path):
    out = tmp_path / "run"
    result = run("train", songs_dir, "--out", out, "--epochs", 2, *TINY)
    assert result.exit_code == 0, result.output
    assert "6 of 6 songs usable" in result.output
    assert "epoch   2/2" in result.output
    assert "steering" in result.output.split("epoch   2/2")[1].splitlines()[0]  # the quick figure, each epoch
    assert "steering: steering ratio" in result.output  # the verdict on the kept checkpoint
    # and what its training songs allow: 5 of the 6 (one validates)
    assert re.search(r"songs: the songs' own contrast \d+\.\d\d: .*; 5 songs, \d+ excerpts\)", result.output), result.output
    assert all("steering_weaker" in row and "seams" in row for row in read_metrics(out))
    # the kept epoch beside copying the last frame, on the same validation windows, and the takes' quality
    training = read_config(out)["training"]
    said = re.search(r"validation: the model (-\d+\.\d+) nats/step, copying the last frame (-\d+\.\d+)", result.output)
    assert said, result.output
    assert float(said[1]) == pytest.approx(training["best_bound"], abs=1e-3)
    assert float(said[2]) == pytest.approx(training["copy_bound"], abs=1e-3)
    assert ("does not beat copying" in result.output) == (training["best_bound"] <= training["copy_bound"])
    assert re.search(r"quality: \d\.\d\d overlap, .*; on the 1 validation songs|quality: not measured", result.output)

    result = run("info", out)
    assert result.exit_code == 0, result.output
    assert "vrae (gru), hidden 16, latent 2" in result.output  # live-2d's cell
    assert "20 frames per second" in result.output
    assert "2/2 epochs" in result.output
    assert "held at the windows' mean code" not in result.output  # both latent units are the pad
    result = run("info", out, "--steering", "--seams")
    assert result.exit_code == 0, result.output
    assert "steering ratio" in result.output and "on hop boundaries" in result.output
    result = run("info", out, "--faithfulness", songs_dir)
    assert result.exit_code == 0, result.output
    assert re.search(r"faithfulness \d\.\d\d: .* regions x 3 takes \(chance \d+ %", result.output), result.output
    assert re.search(r"songs +the songs' own contrast .*; 6 songs", result.output), result.output

    kept = read_config(out)["training"]["best_epoch"]  # chosen by bound and steering (Progress.keeps)
    best = read_metrics(out)[kept - 1]["val_bound"]
    result = run("eval", out, songs_dir, "--split", "validation", "--json", "--samples", 4)
    assert result.exit_code == 0, result.output
    figures = json.loads(result.stdout)
    assert figures["bound"] == pytest.approx(best, abs=1e-9)  # the same figure as training's validation
    assert figures["iw_bound"] >= figures["bound"] - 0.05

    result = run("eval", out, songs_dir)
    assert result.exit_code == 0
    assert "6 songs" in result.output and "lower bound" in result.output


@pytest.mark.slow
def test_eval_counts_notes_outside_the_models_pitches(songs_dir, tmp_path):
    out = tmp_path / "run"
    tiny_on_the_beat = [a for a in TINY if a not in ("--fs", "20")]
    result = run("train", songs_dir, "--out", out, "--epochs", 1, *tiny_on_the_beat)
    assert result.exit_code == 0, result.output
    other = tmp_path / "other"
    other.mkdir()
    from tests.songs import write_song

    write_song(other / "high.mid", [(100 + (i % 5), i * 0.25, i * 0.25 + 0.2) for i in range(40)]
               + [(60, i * 0.5, i * 0.5 + 0.4) for i in range(20)])
    figures = json.loads(run("eval", out, other, "--json").stdout)
    assert figures["dropped_notes"] == 40


@pytest.mark.slow
def test_every_preset_trains_at_a_tiny_size(songs_dir, tmp_path):
    assert {"live-2d", "paper-2d", "paper-20d", "vrnn"} <= set(list_presets())
    for preset in list_presets():
        out = tmp_path / preset
        result = run("train", songs_dir, "--preset", preset, "--out", out, "--epochs", 1, *TINY)
        assert result.exit_code == 0, f"{preset}: {result.output}"
        assert (out / "model.safetensors").is_file()


@pytest.mark.slow
def test_train_without_a_preset_uses_the_default_one(songs_dir, tmp_path):
    out = tmp_path / "plain"
    tiny_on_the_beat = [a for a in TINY if a not in ("--fs", "20")]
    result = run("train", songs_dir, "--out", out, "--epochs", 1, *tiny_on_the_beat)
    assert result.exit_code == 0, result.output
    saved = read_config(out)
    assert saved["data"]["steps_per_beat"] == 4 and saved["model"]["z_every_step"] is True


def test_info_says_where_the_latent_units_off_the_pad_are_held(tmp_path):
    import numpy as np

    from vrae_live.checkpoint import save_checkpoint
    from vrae_live.models import model_for
    from vrae_live.pad import latent_plane

    config = load_config(DEFAULT_PRESET, {"hidden": 8, "latent": 4})
    codes = np.random.default_rng(0).normal(size=(40, 4))
    plane = latent_plane(codes, np.arange(40) // 10, ["a", "b", "c", "d"], attributes=("onsets", "register"))
    save_checkpoint(tmp_path / "run", model_for(config, 12), config, list(range(60, 72)), meta={"latent_plane": plane})
    result = run("info", tmp_path / "run")
    assert result.exit_code == 0, result.output
    assert re.search(r"xy pad +x: sparser → busier \(onsets\); y: lower → higher \(register\); spans 4 training songs; "
                     r"its other 2 latent dimensions held at the windows' mean code", result.output), result.output
    assert np.allclose(load_checkpoint(tmp_path / "run").latent_plane().z_at(0.3, 0.7)[2:], codes.mean(0)[2:])
    # a levelled pad says how x leans
    plane = latent_plane(codes, np.arange(40) // 10, ["a", "b", "c", "d"], attributes=("onsets", "register"), lean=-0.2)
    save_checkpoint(tmp_path / "run", model_for(config, 12), config, list(range(60, 72)), meta={"latent_plane": plane})
    result = run("info", tmp_path / "run")
    assert re.search(r"xy pad +x: sparser → busier \(onsets\); y: lower → higher \(register\); x leans -0.200 of y's "
                     r"unit, so that register stays level along it; spans 4", result.output), result.output


def test_the_shipped_model_is_the_default_preset_trained():
    """checkpoints/default loads, and scripts/train_default.py's preset is what it was trained with."""
    from vrae_live.training.length import fit_to_corpus

    ckpt = load_checkpoint(default_checkpoint())
    training = ckpt.meta["training"]
    preset, _ = fit_to_corpus(load_config(DEFAULT_PRESET), training["train_windows"])  # as `train` fits it
    assert ckpt.config.data == preset.data and ckpt.config.model == preset.model
    assert ckpt.config.train == with_changes(preset, train={"device": ckpt.config.train.device}).train
    # the run spent its budget (the kept epoch may be an earlier one) or converged
    assert read_metrics(default_checkpoint())[-1]["epoch"] == preset.train.epochs or training["converged"]
    assert training["best_bound"] > training["copy_bound"]  # it learnt more than to copy the last frame
    assert len(ckpt.meta["latent_plane"]["songs"]) > 100


@pytest.mark.slow
def test_preset_settings_reach_the_model(songs_dir, tmp_path):
    out = tmp_path / "p20"
    args = ["--hidden", "16", "--batch-size", "16", "--epochs", "1", "-q"]
    assert run("train", songs_dir, "--preset", "paper-20d", "--out", out, *args).exit_code == 0
    document = json.loads((out / "config.json").read_text())
    assert document["model"]["latent"] == 20 and document["data"]["window"] == 40 and document["data"]["hop"] == 20
    assert document["model"]["hidden"] == 16  # the command line wins over the preset


def test_errors_are_one_line(tmp_path, songs_dir):
    empty = tmp_path / "empty"
    empty.mkdir()
    result = run("train", empty, "--out", tmp_path / "x")
    assert result.exit_code == 1
    assert result.output.startswith("error: ") and "no .mid" in result.output

    bad = tmp_path / "bad"
    bad.mkdir()
    write_corrupt(bad / "broken.mid")
    write_drums_only(bad / "drums.mid")
    result = run("train", bad, "--out", tmp_path / "y")
    assert result.exit_code == 1
    assert "broken.mid" in result.output and "drums.mid" in result.output  # each skip is named
    assert "none of the 2 MIDI file(s)" in result.output and "is usable" in result.output

    result = run("train", songs_dir, "--out", tmp_path / "z", "--batch-size", "100000", "-q")
    assert result.exit_code == 1 and "batch" in result.output

    result = run("train", songs_dir, "--preset", "no-such-preset")
    assert result.exit_code == 1 and "paper-2d" in result.output

    preset = tmp_path / "typo.toml"
    preset.write_text("[model]\nhiden = 3\n")
    result = run("train", songs_dir, "--preset", preset)
    assert result.exit_code == 1 and "hiden" in result.output and "hidden" in result.output

    result = run("info", tmp_path / "nothing")
    assert result.exit_code == 1 and "no such checkpoint" in result.output


@pytest.mark.slow
def test_an_existing_run_is_not_overwritten_by_accident(songs_dir, tmp_path):
    out = tmp_path / "run"
    tiny_on_the_beat = [a for a in TINY if a not in ("--fs", "20")]
    result = run("train", songs_dir, "--out", out, "--epochs", 1, *tiny_on_the_beat)
    assert result.exit_code == 0, result.output
    result = run("train", songs_dir, "--out", out, "--epochs", 1, *TINY)
    assert result.exit_code == 1 and "--resume" in result.output
    assert run("train", songs_dir, "--out", out, "--epochs", 1, "--overwrite", *TINY).exit_code == 0
    assert len(read_metrics(out)) == 1


@pytest.mark.slow
def test_ctrl_c_saves_and_resume_finishes(songs_dir, tmp_path):
    """A real SIGINT to a real training process, then --resume to the end."""
    out = tmp_path / "run"
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    args = [sys.executable, "-m", "vrae_live", "train", str(songs_dir), "--out", str(out), "--epochs", "40", *TINY]
    proc = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env)
    lines = []
    for line in proc.stdout:  # wait for the first finished epoch, then press Ctrl-C
        lines.append(line)
        if line.startswith("epoch "):
            proc.send_signal(signal.SIGINT)
            break
    output = "".join(lines) + proc.communicate(timeout=60)[0]
    assert proc.returncode == 0, output
    assert "--resume" in output
    done = len(read_metrics(out))
    assert 1 <= done < 40

    result = run("train", songs_dir, "--out", out, "--resume", "-q")
    assert result.exit_code == 0, result.output
    assert [r["epoch"] for r in read_metrics(out)] == list(range(1, 41))

    result = run("train", songs_dir, "--out", out, "--resume", "--hidden", "8")
    assert result.exit_code == 1 and "--resume continues with the run's own settings" in result.output


@pytest.mark.slow
def test_training_into_a_pipe_writes_one_line_per_epoch(songs_dir, tmp_path):
    """With stderr a pipe (a log file, CI), no progress bar redrawing itself with carriage returns."""
    not_quiet = [a for a in TINY if a != "-q"]
    args = [sys.executable, "-m", "vrae_live", "train", str(songs_dir), "--out", str(tmp_path / "run"),
            "--epochs", "2", *not_quiet]
    result = subprocess.run(args, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert "\r" not in result.stderr
    assert [line[:11] for line in result.stderr.splitlines() if line.startswith("epoch")] == ["epoch   1/2",
                                                                                             "epoch   2/2"]


@pytest.mark.slow
def test_the_default_training_ends_with_a_pad_that_steers_both_ways(tmp_path):
    """`vrae-live train songs/` as a musician types it (only smaller, for time), on a handful of
    songs: the default length and settings give a pad that steers along both axes."""
    from tests.conftest import write_motif_songs
    from vrae_live.measure.steering import measure_steering

    songs = write_motif_songs(tmp_path / "songs", count=6, seconds=24.0)
    result = run("train", songs, "--out", tmp_path / "run", "--hidden", "64", "-q")
    assert result.exit_code == 0, result.output
    assert "the pad steers" in result.output.lower() or "steering: steering ratio" in result.output, result.output
    report = measure_steering(load_checkpoint(tmp_path / "run"))
    assert report.ratio > 2 and report.weaker > 1.5, report.line()
