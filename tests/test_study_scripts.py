"""The steering study and its synthetic corpus still run end to end, at a toy size."""

from __future__ import annotations

import re

import mido

from tests.test_bench_scripts import load_script


def test_the_synthetic_corpus_has_its_styles_apart(tmp_path):
    corpus = load_script("synthetic_corpus")
    assert corpus.write_corpus(tmp_path, songs_per_style=2) == 8
    registers = {}
    for style in corpus.STYLES:
        notes = [m.note for path in (tmp_path / style).glob("*.mid") for m in mido.MidiFile(path) if m.type == "note_on"]
        registers[style] = sum(notes) / len(notes)
    assert registers["high-major-arpeggios"] > registers["mid-chords"] > registers["low-minor-walk"]


def test_the_steering_study_trains_measures_and_writes_a_row(tmp_path, capsys):
    load_script("synthetic_corpus").write_corpus(tmp_path / "songs", songs_per_style=2)
    table = tmp_path / "study.md"
    study = load_script("steering_study")
    assert study.main(["--corpus", f"synth={tmp_path / 'songs'}", "--size", "6", "--setting",
                       "toy=--epochs 1 --hidden 16 --batch-size 8", "--work", str(tmp_path / "work"),
                       "--out", str(table)]) == 0
    row = table.read_text().splitlines()[-1]
    assert re.match(r"\| synth \| 6 \| toy \| 1/1 \| \d+ \| [\d.]+ \| -[\d.]+ \| [\d.]+ \| [\d.]+ \| [\d.]+ \| [\d.]+ \| [\d.]+ \([\d.]+\) \| [\d.]+ \|$", row), row
    assert study.main(["--corpus", f"synth={tmp_path / 'songs'}", "--size", "6", "--setting", "toy=",
                       "--work", str(tmp_path / "work"), "--measure-only"]) == 0  # measured again, no training


def test_kmeans_finds_separate_groups():
    import numpy as np

    from vrae_live.measure.faithfulness import kmeans

    rng = np.random.default_rng(0)
    blobs = [rng.normal(centre, 0.02, size=(30, 2)) for centre in ((0.2, 0.2), (0.8, 0.2), (0.5, 0.9))]
    centres, labels = kmeans(np.concatenate(blobs), 3)
    assert sorted(np.round(centres, 1).tolist()) == [[0.2, 0.2], [0.5, 0.9], [0.8, 0.2]]
    assert all(len(set(labels[30 * i:30 * (i + 1)])) == 1 for i in range(3))  # each blob one region


def test_the_hop_study_measures_each_hop_with_its_context(beat_checkpoint, capsys):
    assert load_script("hop_study").main([str(beat_checkpoint), "--hop", "4", "--hop", "8"]) == 0
    rows = [line for line in capsys.readouterr().out.splitlines() if re.match(r"\| \d", line)]
    assert [row.split(" | ")[:2] for row in rows] == [["| 4", "12"], ["| 8", "8"]]  # windows of 16 steps
    for row in rows:
        assert re.match(r"\| \d+ \| \d+ \| [\d.]+ \| [\d.]+ \| [\d.]+ \| [\d.]+ \| [\d.]+, [\d.]+ \| [\d.]+ \|$", row), row
