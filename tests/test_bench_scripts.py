"""The benchmark scripts still run and print their figures, at toy sizes (no timing is asserted)."""

from __future__ import annotations

import importlib.util
import re
from pathlib import Path

import pytest

from tests.jack import require_jack_tools

SCRIPTS = Path(__file__).resolve().parent.parent / "scripts"


def load_script(name: str):
    """The script as a module, so it runs in this process without paying torch's import again."""
    spec = importlib.util.spec_from_file_location(name, SCRIPTS / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


NUMBER = r"\d+(\.\d+)?"


def test_bench_train_prints_its_figures(capsys):
    assert load_script("bench_train").main(["--quick"]) == 0
    out = capsys.readouterr().out
    assert re.search(rf"^ratio = {NUMBER}", out, re.MULTILINE), out
    assert re.search(rf"project: +{NUMBER} s/epoch +{NUMBER} seq/s", out), out
    assert re.search(rf"reference: +{NUMBER} s/epoch +{NUMBER} seq/s", out), out
    assert "threads: 1" in out and "machine:" in out and "torch" in out


def test_bench_frames_prints_each_form_against_the_binary_roll(capsys):
    assert load_script("bench_frames").main(["--quick"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("machine: ")
    assert "binary roll" in out and "(100 columns fed)" in out and "(112 columns fed)" in out
    assert "x1.00" in out
    assert re.search(rf"^a GRU of 224 .* x{NUMBER} of chosen together's$", out, re.MULTILINE), out


def test_bench_options_prints_each_option_against_the_preset(capsys):
    assert load_script("bench_options").main(["--quick"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("machine: ")
    for option in ("--own-frames 0.25", "--hold-gate", "--z-skip"):
        assert re.search(rf"^{option} +{NUMBER} s/epoch  x{NUMBER} of the preset's$", out, re.MULTILINE), out


def test_bench_train_notes_a_missing_gpu(capsys):
    torch = pytest.importorskip("torch")
    if torch.cuda.is_available():
        pytest.skip("a GPU is present: nothing to note")
    load_script("bench_train").main(["--quick", "--device", "cuda"])
    assert "no CUDA GPU" in capsys.readouterr().out


def test_bench_live_prints_decode_times_and_pad_delay(capsys):
    assert load_script("bench_live").main(["--quick", "--parts", "decode,pad,voices", "--device", "cuda"]) == 0
    out = capsys.readouterr().out
    for preset in ("paper-2d", "paper-20d"):
        assert re.search(rf"decode {preset} on cpu: .* per frame: p50 = {NUMBER} us, p99 = {NUMBER} ms", out), out
        assert re.search(rf"plain reference hop .*: p50 = {NUMBER} ms, p99 = {NUMBER} ms; ratio = {NUMBER}", out), out
        assert re.search(rf"pad delay {preset} \(z only in h_0\): .* median \d+ frames .* max \d+ frames", out), out
    assert re.search(rf"16 voices: batched p50 +{NUMBER} ms.*separate p50 +{NUMBER} ms", out), out
    assert "goal 8 voices <= 2x one voice" in out
    assert re.search(rf" 8 voices: loop p50 +{NUMBER} ms \(+{NUMBER}x one voice\).* MIDI messages a frame", out), out
    assert re.search(rf"loop 8 voices / one voice: {NUMBER}x on the median frame", out), out
    assert re.search(rf" 8 voices in key: loop p50 +{NUMBER} ms", out), out
    assert re.search(rf"in key / as the model plays, 8 voice\(s\): {NUMBER}x on the median frame", out), out
    assert "goal p99 < a quarter frame period" in out and "goal within 2 frames: met" in out
    assert re.search(rf"live-2d, GRU 224 against live-2d before, tanh RNN 384 on cpu: median frame x{NUMBER}", out), out


@pytest.mark.slow
@pytest.mark.jack
def test_bench_live_measures_jitter_through_jack(capsys):
    require_jack_tools()  # skip without jackd, unless CI is set
    assert load_script("bench_live").main(["--quick", "--parts", "jitter"]) == 0
    out = capsys.readouterr().out
    for phase in ("idle", "flood", "loaded"):
        assert re.search(rf"{phase}: jitter p99 = {NUMBER} ms", out), out
        assert re.search(rf"{phase}: \d+ note-ons.*in real time at the JACK cycle: p50 = {NUMBER} ms", out), out
        assert re.search(rf"{phase}: in JACK frame time \(jack_midi_dump, \d+ note-ons\): p50 = {NUMBER} ms", out), out
    assert re.search(rf"serve: stopped: .* late ticks \(p99 {NUMBER} ms, max {NUMBER} ms late\)", out), out
    assert re.search(rf"flood: \d+ note-ons, {NUMBER} OSC messages/s", out), out


def test_bench_parse_prints_both_parsers_and_no_difference(tmp_path, capsys):
    from tests.songs import write_song, write_song_in_beats

    write_song(tmp_path / "a.mid", [(60, 0.0, 0.5), (64, 0.25, 1.0)])
    write_song_in_beats(tmp_path / "b.mid", [(62, 0, 3), (65, 2.5, 5)], [(0, 120), (1.5, 80)])
    assert load_script("bench_parse").main([str(tmp_path), "--repeats", "1", "--steps-per-beat", "4"]) == 0
    out = capsys.readouterr().out
    assert "machine:" in out and "symusic" in out
    assert re.search(rf"pretty_midi: +{NUMBER} files/s/core", out), out
    assert re.search(rf"symusic: +{NUMBER} files/s/core", out), out
    assert re.search(rf"^ratio = {NUMBER}", out, re.MULTILINE), out
    assert "rolls that differ from pretty_midi's: 0 of 2" in out


@pytest.mark.parametrize("cell", ["rnn", "gru"])
def test_code_worth_reads_each_window_under_its_own_code_and_another(tmp_path, songs_dir, cell, capsys):
    from vrae_live.config import load_config
    from vrae_live.data.corpus import prepare_data
    from vrae_live.training.trainer import Trainer

    config = load_config("live-2d", {"epochs": 1, "cell": cell, "hidden": 16, "window": 16, "hop": 8, "batch_size": 8,
                                     "seed": 0})
    Trainer(config, prepare_data(songs_dir, config.data, seed=0, batch_size=8), tmp_path / "run").fit()
    assert load_script("code_worth").main([str(tmp_path / "run"), str(songs_dir)]) == 0
    out = capsys.readouterr().out
    value = r"(-?\d+\.\d+)"
    found = re.search(rf"(\d+) training windows; -log p a step {value} under their own codes, {value} under "
                      rf"another window's: the code is worth {value} nats a step", out)
    assert found, out
    own, other, worth = map(float, found.groups()[1:])
    assert int(found.group(1)) > 1 and own > 0 and worth == pytest.approx(other - own, abs=2e-3)
    assert ("tanh states past 0.99" in out) == (cell == "rnn")
