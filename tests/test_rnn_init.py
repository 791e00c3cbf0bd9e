"""The pieces of the study "does a VRAE start a supervised RNN well?" (experiments/rnn_init.py)."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from tests.songs import write_song
from tests.test_bench_scripts import load_script
from vrae_live.config import FrameTiming, ModelConfig
from vrae_live.data.corpus import Song, load_songs
from vrae_live.experiments.rnn_init import (
    StudySettings,
    classifier_for,
    init_classifier_from_vrae,
    init_predictor_from_vrae,
    label_subset,
    predictor_for,
    prepare_study_data,
    split_songs_by_group,
    work_of,
)
from vrae_live.models import VRAE


def _song(name: str) -> Song:
    return Song(name=name, path=None, roll=np.zeros((4, 128), dtype=bool))


NAMES = ([f"bach/bwv{i}.mid" for i in range(9)] + [f"monteverdi/madrigal.3.{i}.mid" for i in range(1, 6)]
         + ["monteverdi/madrigal.3.1_old.mid", "trecento/PMFC_12_10a-Credo PMFC12.10a.mid",
            "trecento/PMFC_12_10b-Credo PMFC12.10b.mid", "trecento/Gloria.mid", "trecento/Sanctus.mid", "solo/one.mid"])


@pytest.mark.parametrize("seed", range(5))
def test_the_split_never_shares_a_song_or_a_piece_between_training_and_test(seed):
    songs = [_song(n) for n in NAMES]
    train, test = split_songs_by_group(songs, 0.25, seed)
    train_names, test_names = {s.name for s in train}, {s.name for s in test}
    assert not train_names & test_names
    assert train_names | test_names == set(NAMES)
    assert not {work_of(n) for n in train_names} & {work_of(n) for n in test_names}  # versions stay together
    for composer in ("bach", "monteverdi", "trecento"):  # each composer with 2+ pieces has pieces on both sides
        assert any(n.startswith(composer) for n in test_names) and any(n.startswith(composer) for n in train_names)
    assert "solo/one.mid" in train_names  # a composer's only piece trains
    # the split depends on the names, not on the order they come in
    again = split_songs_by_group(list(reversed(songs)), 0.25, seed)
    assert [s.name for s in again[1]] == sorted(test_names)


def test_versions_of_one_piece_are_one_work():
    assert work_of("monteverdi/madrigal.3.1_old.mid") == work_of("monteverdi/madrigal.3.1.mid")
    assert work_of("trecento/PMFC_12_10a-Credo PMFC12.10a.mid") == work_of("trecento/PMFC_12_10b-Credo PMFC12.10b.mid")
    assert work_of("monteverdi/madrigal.3.1.mid") != work_of("monteverdi/madrigal.3.11.mid")
    assert work_of("bach/bwv10.7.mid") != work_of("bach/bwv10.8.mid")


def test_a_label_share_is_drawn_per_class_with_at_least_one_each():
    labels = np.array([0] * 200 + [1] * 50 + [2] * 3)
    subset = label_subset(labels, 0.1, seed=0)
    assert np.bincount(labels[subset]).tolist() == [20, 5, 1]
    assert len(set(subset.tolist())) == len(subset)
    assert label_subset(labels, 0.1, seed=0).tolist() == subset.tolist()
    assert label_subset(labels, 0.1, seed=1).tolist() != subset.tolist()
    assert label_subset(labels, 1.0, seed=0).tolist() == list(range(len(labels)))


def _vrae(n_pitches=7) -> VRAE:
    torch.manual_seed(1)
    vrae = VRAE(n_pitches, ModelConfig(hidden=12, latent=3))
    with torch.no_grad():  # weights unlike any fresh draw, so a copy shows
        for p in vrae.parameters():
            p.add_(torch.randn_like(p))
    return vrae.eval()


def test_a_classifier_from_a_vrae_has_its_encoder_and_a_fresh_head():
    vrae = _vrae()
    torch.manual_seed(0)
    fresh = classifier_for(vrae.config, 7, classes=4)
    torch.manual_seed(0)
    classifier = classifier_for(vrae.config, 7, classes=4)
    copied = init_classifier_from_vrae(classifier, vrae)
    state = classifier.state_dict()
    assert sorted(copied) == sorted(f"encoder.{k}" for k in ("weight_ih_l0", "weight_hh_l0", "bias_ih_l0", "bias_hh_l0"))
    for name in copied:
        assert torch.equal(state[name], vrae.state_dict()[name])
        assert not torch.equal(state[name], fresh.state_dict()[name])
    for name in ("head.weight", "head.bias"):  # the head is the same draw as a random start's
        assert torch.equal(state[name], fresh.state_dict()[name])
    # it reads windows as the encoder does: its last state is the one the VRAE's code comes from
    x = (torch.rand(5, 9, 7) < 0.3).float()
    _, h_end = vrae.encoder(x.flip(1))
    assert torch.allclose(classifier(x), classifier.head(h_end[0]))


def test_a_predictor_from_a_vrae_is_its_decoder_started_from_a_code():
    vrae = _vrae()
    z = torch.tensor([0.3, -1.0, 0.5])
    predictor = predictor_for(vrae.config, 7)
    copied = init_predictor_from_vrae(predictor, vrae, z)
    assert set(copied) == set(predictor.state_dict())  # every weight and the state come from the VRAE
    for name in ("weight_ih_l0", "weight_hh_l0", "bias_ih_l0", "bias_hh_l0"):
        assert torch.equal(predictor.rnn.state_dict()[name], vrae.decoder.state_dict()[name])
    assert torch.equal(predictor.to_logits.weight, vrae.to_logits.weight)
    x = (torch.rand(4, 10, 7) < 0.3).float()
    with torch.no_grad():
        assert torch.allclose(predictor.initial_state(x[:, 0]), vrae.initial_state(z.expand(4, -1)))
        assert torch.allclose(predictor.decode(x), vrae.decode(z.expand(4, -1), x), atol=1e-6)


def _corpus(folder, composers=("bach", "palestrina", "trecento"), per_composer=3):
    """Short songs, each composer in its own register, so the classes differ."""
    for c, composer in enumerate(composers):
        for i in range(per_composer):
            base = 48 + 12 * c + i
            notes = [(base + (k % 4) * 2, k * 0.25, k * 0.25 + 0.3) for k in range(24)]
            write_song(folder / composer / f"piece{i}.mid", notes)
    return folder


TINY = StudySettings(window=8, hop=4, max_windows_per_song=6, hidden=8, latent=2, vrae_steps=4, vrae_batch=8,
                     steps=6, batch=4, eval_every=3, fractions=(0.1, 1.0), seeds=(0, 1))


def test_study_data_labels_windows_by_composer_and_keeps_test_songs_out(tmp_path):
    songs = load_songs(_corpus(tmp_path / "songs"), FrameTiming(fs=20.0), cache_dir=tmp_path / "rolls")
    data = prepare_study_data(songs, TINY)
    assert data.classes == ["bach", "palestrina", "trecento"]
    splits = [set(data.train.song_names), set(data.val.song_names), set(data.test.song_names)]
    assert all(splits) and sum(map(len, splits)) == len(set.union(*splits)) == len(songs)  # each song in one
    for windows, labels in ((data.train, data.y_train), (data.val, data.y_val), (data.test, data.y_test)):
        assert [data.classes[y] for y in labels] == [windows.song_names[s].split("/")[0] for s in windows.song]


@pytest.mark.slow
def test_the_script_runs_the_study_end_to_end_and_writes_results_plots_and_the_section(tmp_path):
    songs_dir = _corpus(tmp_path / "songs")
    page = tmp_path / "page.md"
    page.write_text("# A page\n\nkept\n")
    script = load_script("rnn_init")
    argv = ["--songs", str(songs_dir), "--work", str(tmp_path / "work"), "--results", str(tmp_path / "r.json"),
            "--figures", str(tmp_path / "figures"), "--docs", str(page), "--quick", "--steps", "6",
            "--vrae-steps", "4", "--hidden", "8"]
    assert script.main(argv) == 0
    results = json.loads((tmp_path / "r.json").read_text())
    assert {"settings", "data", "vrae", "runs", "summary", "seconds", "command", "minutes", "machine"} <= set(results)
    seeds, fractions = results["settings"]["seeds"], results["settings"]["fractions"]
    assert len(results["vrae"]) == len(seeds) == 2
    # seeds x (shares x 2 tasks + the long prediction) x starts
    assert len(results["runs"]) == len(seeds) * (len(fractions) * 2 + 1) * 2
    every, long = results["settings"]["eval_every"], results["settings"]["long_steps"]
    for run in results["runs"]:
        if run["task"] == "predict_long":
            assert run["fraction"] == 1.0 and run["curve"][-1]["step"] == long
            continue
        assert [p["step"] for p in run["curve"]] == [0, *range(every, 6, every), 6]
        assert set(run["final"]) == ({"step", "accuracy", "balanced_accuracy", "nll", "val_accuracy",
                                      "val_balanced_accuracy", "val_nll"} if run["task"] == "classify"
                                     else {"step", "nll", "val_nll"})
    assert set(results["summary"]) == {"final", "early_stopped"}
    row = results["summary"]["early_stopped"][0]
    assert (row["task"], row["fraction"], row["init"], row["seeds"]) == ("classify", 0.1, "random", 2)
    assert set(row["accuracy"]) == {"mean", "std", "min", "max"}
    assert 0 <= row["step"]["min"] <= row["step"]["max"] <= 6
    for run in results["runs"]:  # early stopping keeps the point of the best validation figure
        key = "val_accuracy" if run["task"] == "classify" else "val_nll"
        best = (max if run["task"] == "classify" else min)(p[key] for p in run["curve"])
        assert run["early_stopped"] in run["curve"] and run["early_stopped"][key] == best
    assert (tmp_path / "figures" / "rnn-init-classify.png").stat().st_size > 0
    assert (tmp_path / "figures" / "rnn-init-predict.png").stat().st_size > 0
    assert (tmp_path / "figures" / "rnn-init-predict-long.png").stat().st_size > 0
    assert "next-frame NLL, 20 steps" in page.read_text()
    text = page.read_text()
    assert text.startswith("# A page\n\nkept\n") and script.BEGIN in text and script.END in text
    assert "| composer accuracy (%) | 100% (" in text and "next-frame NLL" in text
    (tmp_path / "figures" / "rnn-init-classify.png").unlink()
    assert script.main([*argv, "--redraw"]) == 0  # from the results alone: the plots and the section again
    assert (tmp_path / "figures" / "rnn-init-classify.png").stat().st_size > 0
    assert page.read_text() == text  # the section rewritten in place, not appended


def test_a_rerun_of_reproduce_paper_keeps_the_rnn_init_section_and_what_follows(tmp_path):
    page = tmp_path / "page.md"
    section = "<!-- rnn_init:begin -->\nthe study\n<!-- rnn_init:end -->\n\nits reading\n"
    page.write_text("# an older page\n\n" + section)
    load_script("reproduce_paper").write_docs(page, tmp_path, {}, {"latent": {}, "drift": None},
                                              {"limit": 1, "epochs": 1, "steps": 1}, [], 60.0, quick=True, argv=[])
    text = page.read_text()
    assert text.startswith("# Reproducing Fabius") and "older page" not in text
    assert text.endswith("\n" + section)
