"""generate, interpolate, map and curve through click's CliRunner, on tiny models."""

from __future__ import annotations

import sys

import mido
import pytest
from click.testing import CliRunner

from tests.conftest import write_motif_songs
from vrae_live.cli import main

TINY = ["--hidden", "16", "--window", "16", "--hop", "8", "--batch-size", "16", "--fs", "20", "--epochs", "2", "-q"]
PNG = b"\x89PNG\r\n\x1a\n"


pytestmark = pytest.mark.slow  # the module's fixture trains two models


def run(*args):
    return CliRunner().invoke(main, [str(a) for a in args], catch_exceptions=False)


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """Songs in two folders (two 'composers'), a 2-D and a 3-D tiny model trained on them."""
    base = tmp_path_factory.mktemp("paper")
    songs = base / "songs"
    write_motif_songs(songs / "even", count=3)
    write_motif_songs(songs / "odd", count=3)
    runs = {}
    for latent in (2, 3):
        out = base / f"run{latent}"
        result = run("train", songs, "--out", out, "--latent", latent, "--cache-dir", base / "cache", *TINY)
        assert result.exit_code == 0, result.output
        runs[latent] = out
    return songs, runs


def notes_of(path):
    """(note, on tick, off tick) of every note, checking that every note-on is switched off."""
    midi = mido.MidiFile(str(path))
    sounding, notes, tick = {}, [], 0
    for msg in midi.tracks[0]:
        tick += msg.time
        if msg.type == "note_on" and msg.velocity > 0:
            assert msg.note not in sounding
            sounding[msg.note] = tick
        elif msg.type in ("note_on", "note_off"):
            notes.append((msg.note, sounding.pop(msg.note), tick))
    assert not sounding, f"notes left hanging: {sorted(sounding)}"
    return notes


def test_generate_from_random_given_and_encoded_z(trained, tmp_path):
    songs, runs = trained
    takes = {}
    for name, extra in {"seed0": ["--seed", 0], "seed1": ["--seed", 1], "z": ["--z", "0.5,-1"],
                        "from": ["--from", songs / "even" / "song1.mid", "--at", 1.5]}.items():
        out = tmp_path / f"{name}.mid"
        result = run("generate", runs[2], "--out", out, "--steps", 120, "--density", 0.7, *extra)
        assert result.exit_code == 0, result.output
        assert "120 frames (6.0 s)" in result.output
        takes[name] = notes_of(out)
        assert takes[name], f"{name}: no notes"
        assert max(off for *_, off in takes[name]) <= 6.0 * 2 * 960 + 1  # 6 s at 120 bpm, 960 ticks per beat
    assert takes["seed0"] != takes["seed1"]
    assert "code of" in run("generate", runs[2], "--out", tmp_path / "x.mid", "--steps", 8,
                            "--from", songs / "odd" / "song0.mid").output


def test_generate_length_follows_steps(trained, tmp_path):
    _, runs = trained
    out = tmp_path / "long.mid"
    assert run("generate", runs[2], "--out", out, "--steps", 400, "--density", 0.8).exit_code == 0
    assert mido.MidiFile(str(out)).length == pytest.approx(20.0, abs=0.06)  # 400 frames at 20 Hz


@pytest.mark.parametrize("args, message", [
    (["--z", "1,2,3"], "latent has 2 dimensions"),
    (["--z", "0,0", "--from", "song"], "--z or --from, not both"),
])
def test_generate_rejects_bad_input_in_one_line(trained, tmp_path, args, message):
    """What only the checkpoint can tell; values out of range are in test_cli_validation.py."""
    songs, runs = trained
    args = [songs / "odd" / "song0.mid" if a == "song" else a for a in args]
    result = run("generate", runs[2], "--out", tmp_path / "x.mid", *args)
    assert result.exit_code == 1
    assert result.output.startswith("error:") and message in result.output


def test_generate_from_a_passage_past_the_songs_end(trained, tmp_path):
    songs, runs = trained
    result = run("generate", runs[2], "--out", tmp_path / "x.mid", "--from", songs / "odd" / "song0.mid", "--at", 99)
    assert result.exit_code == 1 and "no window of 16 frames starts at 99 s" in result.output


def test_own_frames_are_for_the_vrae_alone_in_one_line(tmp_path):
    write_motif_songs(tmp_path / "songs", 2)
    result = run("train", tmp_path / "songs", "--out", tmp_path / "rnn", "--model", "rnn", "--own-frames", "0.25", *TINY)
    assert result.exit_code == 1 and "--own-frames is for the vrae's decoder; not the rnn" in result.output
    assert not (tmp_path / "rnn").exists()


def test_missing_checkpoint_is_one_line(tmp_path):
    result = run("generate", tmp_path / "nothing", "--out", tmp_path / "x.mid")
    assert result.exit_code == 1 and "no such checkpoint directory" in result.output


def test_interpolate(trained, tmp_path):
    songs, runs = trained
    out = tmp_path / "morph.mid"
    result = run("interpolate", runs[3], songs / "even" / "song0.mid", songs / "odd" / "song2.mid", "--out", out,
                 "--at-b", 2.0, "--steps", 160, "--density", 0.7)
    assert result.exit_code == 0, result.output
    assert "z glides" in result.output
    assert notes_of(out)
    assert mido.MidiFile(str(out)).length == pytest.approx(8.0, abs=0.06)


@pytest.mark.slow
def test_map_2d_and_3d(trained, tmp_path):
    songs, runs = trained
    out = tmp_path / "map2.png"
    result = run("map", runs[2], songs, "--out", out)
    assert result.exit_code == 0, result.output
    assert out.read_bytes().startswith(PNG)
    assert "6 songs, latent means" in result.output
    out = tmp_path / "map3.png"
    result = run("map", runs[3], songs, "--out", out, "--color-by", "folder", "--max-points", 50)
    assert result.exit_code == 0, result.output
    assert out.read_bytes().startswith(PNG)
    assert "50 windows, 2 folders, t-SNE" in result.output


def test_map_falls_back_to_pca_without_scikit_learn(trained, tmp_path, monkeypatch):
    songs, runs = trained
    monkeypatch.setitem(sys.modules, "sklearn", None)  # import sklearn... raises ImportError
    monkeypatch.setitem(sys.modules, "sklearn.manifold", None)
    result = run("map", runs[3], songs, "--out", tmp_path / "map.png")
    assert result.exit_code == 0, result.output
    assert "PCA" in result.output and "pip install 'vrae-live[tsne]'" in result.output
    result = run("map", runs[3], songs, "--out", tmp_path / "map.png", "--method", "tsne")
    assert result.exit_code == 1 and "pip install 'vrae-live[tsne]'" in result.output


def test_curve(trained, tmp_path):
    _, runs = trained
    out = tmp_path / "curve.png"
    result = run("curve", runs[2], "--out", out)
    assert result.exit_code == 0, result.output
    assert out.read_bytes().startswith(PNG) and "2 epochs" in result.output
    result = run("curve", runs[2], "--out", out, "--skip", 2)
    assert result.exit_code == 1 and "no epochs to draw" in result.output
    result = run("curve", tmp_path, "--out", out)
    assert result.exit_code == 1 and "no metrics.jsonl" in result.output


def test_figures_without_matplotlib_name_the_extra(trained, tmp_path, monkeypatch):
    songs, runs = trained
    monkeypatch.setitem(sys.modules, "matplotlib", None)
    for args in (["curve", runs[2]], ["map", runs[2], songs]):
        result = run(*args, "--out", tmp_path / "x.png")
        assert result.exit_code == 1
        assert "pip install 'vrae-live[plots]'" in result.output
        assert not (tmp_path / "x.png").exists()


def test_train_stores_the_window_map_and_map_draws_it(trained, tmp_path):
    """train writes the windows on the pad into the checkpoint; `map` without SONGS_DIR draws them."""
    from vrae_live.checkpoint import read_config

    songs, runs = trained
    stored = read_config(runs[2])["window_map"]
    assert len(stored["u"]) == len(stored["register"]) > 0 and stored["at_unit"] == "s"
    assert {"even/song0.mid", "odd/song1.mid"} <= set(stored["songs"])
    for color_by in ("song", "folder", "register", "density", "major"):
        out = tmp_path / f"{color_by}.png"
        result = run("map", runs[2], "--out", out, "--color-by", color_by)
        assert result.exit_code == 0, result.output
        assert out.read_bytes().startswith(PNG) and "on the pad" in result.output


def test_map_store_computes_the_map_of_an_older_checkpoint(trained, tmp_path):
    import json
    import shutil

    from vrae_live.checkpoint import read_config

    songs, runs = trained
    old = tmp_path / "old"
    shutil.copytree(runs[3], old)
    document = json.loads((old / "config.json").read_text())
    del document["window_map"]
    (old / "config.json").write_text(json.dumps(document))
    result = run("map", old, "--out", tmp_path / "m.png")
    assert result.exit_code == 1 and "--store" in result.output
    result = run("map", old, songs, "--store", "--max-points", 40)
    assert result.exit_code == 0, result.output
    assert len(read_config(old)["window_map"]["u"]) == 40
    assert run("map", old, "--out", tmp_path / "m.png").exit_code == 0
    assert run("map", old).exit_code == 1  # nothing to do


def test_a_model_of_onsets_trains_says_so_and_plays(tmp_path):
    """--onsets end to end: songs of repeated notes in training, the bound's words, info, a take written
    whole (the gate's and the emitter's strikes are tested in test_notes.py)."""
    from tests.songs import write_song
    from vrae_live.checkpoint import load_checkpoint

    songs = tmp_path / "songs"
    for k in range(6):  # each a pitch struck 4 times a second without a gap, and a held bass
        notes = [(60 + k, t / 4, (t + 1) / 4) for t in range(40)] + [(48, 0.0, 10.0)]
        write_song(songs / f"s{k}.mid", notes)
    out = tmp_path / "run"
    result = run("train", songs, "--out", out, "--onsets", "--latent", 2, *TINY)
    assert result.exit_code == 0, result.output
    assert "(a step: each pitch's sounding and its onset; not comparable" in result.output
    ckpt = load_checkpoint(out)
    assert ckpt.config.data.onsets and ckpt.model.n_columns == 2 * len(ckpt.pitches)
    assert "where its notes start (onsets)" in run("info", out).output

    take = tmp_path / "take.mid"
    result = run("generate", out, "--out", take, "--steps", 200, "--density", 0.9, "--temperature", 0)
    assert result.exit_code == 0, result.output
    events = [m for m in mido.MidiFile(take) if m.type in ("note_on", "note_off")]
    ons = [m for m in events if m.type == "note_on" and m.velocity > 0]
    offs = sum(1 for m in events if m.type == "note_off" or m.velocity == 0)
    assert ons and offs == len(ons)  # every note ends

    from vrae_live.offline.render import passage_window

    window = passage_window(songs / "s2.mid", ckpt, 1.0)  # what generate --from encodes: pitches, then onsets
    pitches = ckpt.pitches
    assert window.shape == (16, 2 * len(pitches))
    assert window[:, pitches.index(62)].all() and window[::5, len(pitches) + pitches.index(62)].all()
    assert window[:, len(pitches) + pitches.index(48)].sum() == 0  # the bass, held, is struck before the passage
    result = run("generate", out, "--from", songs / "s2.mid", "--at", 1.0, "--out", tmp_path / "from.mid", "--steps", 40)
    assert result.exit_code == 0, result.output


def test_a_model_of_the_meter_trains_from_time_signatures_and_plays(tmp_path):
    from tests.songs import write_song_in_beats

    songs = tmp_path / "songs"
    for k in range(6):  # waltzes: a low note on each downbeat
        notes = [(48 if beat % 3 == 0 else 67 + k, beat, beat + 0.5) for beat in range(60)]
        write_song_in_beats(songs / f"w{k}.mid", notes, time_signature=(3, 4))
    out = tmp_path / "run"
    tiny = [a for a in TINY if a not in ("--fs", "20")]
    result = run("train", songs, "--out", out, "--steps-per-beat", 2, "--onsets", "--meter", *tiny)
    assert result.exit_code == 0, result.output
    assert "fed with the meter" in run("info", out).output
    from vrae_live.checkpoint import load_checkpoint
    from vrae_live.play.stream import live_stream

    ckpt = load_checkpoint(out)
    assert ckpt.bar_quarters == 3.0 and live_stream(ckpt).meter == (2, 6)  # live, it plays in the waltzes' bar
    result = run("generate", out, "--out", tmp_path / "take.mid", "--steps", 48)
    assert result.exit_code == 0, result.output
    from vrae_live.offline.render import passage_window

    window = passage_window(songs / "w1.mid", ckpt, 1.5)  # what generate --from encodes: with the meter
    assert window.shape == (16, ckpt.config.data.inputs(len(ckpt.pitches)))
    result = run("generate", out, "--from", songs / "w1.mid", "--at", 1.5, "--out", tmp_path / "from.mid",
                 "--steps", 24)
    assert result.exit_code == 0, result.output
    result = run("train", songs, "--out", tmp_path / "bad", "--meter", *TINY)  # frames in seconds: no beat
    assert result.exit_code != 0 and "--meter needs a beat grid" in result.output
