"""The steering study and its synthetic corpus still run end to end, at a toy size."""

from __future__ import annotations

import re

import mido
import pytest

from tests.test_bench_scripts import load_script


def test_the_synthetic_corpus_has_its_styles_apart(tmp_path):
    corpus = load_script("synthetic_corpus")
    assert corpus.write_corpus(tmp_path, songs_per_style=2) == 8
    registers = {}
    for style in corpus.STYLES:
        notes = [m.note for path in (tmp_path / style).glob("*.mid") for m in mido.MidiFile(path) if m.type == "note_on"]
        registers[style] = sum(notes) / len(notes)
    assert registers["high-major-arpeggios"] > registers["mid-chords"] > registers["low-minor-walk"]


@pytest.mark.slow
def test_the_steering_study_trains_measures_and_writes_a_row(tmp_path, capsys):
    load_script("synthetic_corpus").write_corpus(tmp_path / "songs", songs_per_style=2)
    table = tmp_path / "study.md"
    study = load_script("steering_study")
    assert study.main(["--corpus", f"synth={tmp_path / 'songs'}", "--size", "6", "--setting",
                       "toy=--epochs 1 --hidden 16 --batch-size 8", "--work", str(tmp_path / "work"),
                       "--out", str(table)]) == 0
    row = table.read_text().splitlines()[-1]
    # bound, copying, quality (x ceiling: nan where the held-out songs are too few for one), steering ...
    assert re.match(r"\| synth \| 6 \| toy \| 1/1 \| \d+ \| [\d.]+ \| -[\d.]+ \| -[\d.]+ \| [\d.]+ \(([\d.]+|nan)x\) \| "
                    r"[\d.]+ \| [\d.]+ \| [\d.]+ \| (?:[\d.]+ ){3}[\d.]+ \| "  # steering, weakest, strongest, 4 directions
                    # the named axes' rho and leak (nan where the toy model's attribute does not move along the axis)
                    r"[+-](?:[\d.]+|nan) \((?:[\d.]+|nan)\) / [+-](?:[\d.]+|nan) \((?:[\d.]+|nan)\) \| "
                    r"[\d.]+ \| [\d.]+ \([\d.]+\) \| [\d.]+ \|$", row), row
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


@pytest.mark.slow
def test_the_hop_study_measures_each_hop_with_its_context(beat_checkpoint, capsys):
    assert load_script("hop_study").main([str(beat_checkpoint), "--hop", "4", "--hop", "8"]) == 0
    rows = [line for line in capsys.readouterr().out.splitlines() if re.match(r"\| \d", line)]
    assert [row.split(" | ")[:2] for row in rows] == [["| 4", "12"], ["| 8", "8"]]  # windows of 16 steps
    for row in rows:
        assert re.match(r"\| \d+ \| \d+ \| [\d.]+ \| [\d.]+ \| [\d.]+ \| [\d.]+ \| [\d.]+, [\d.]+ \| [\d.]+ \|$", row), row


def _midi_file(path, note_length_ticks: int):
    """A one-note MIDI file whose note lasts ``note_length_ticks`` ticks."""
    track = mido.MidiTrack([mido.Message("note_on", note=60, velocity=80, time=0),
                            mido.Message("note_off", note=60, velocity=0, time=note_length_ticks)])
    mido.MidiFile(tracks=[track], ticks_per_beat=480).save(path)
    return path


def test_the_corpus_export_checks_that_train_can_read_what_music21_wrote(tmp_path):
    export = load_script("export_corpus")
    export.check_readable(_midi_file(tmp_path / "tune.mid", 480))
    # One of O'Neill's tunes came out of music21 with a tick past 61 million.
    with pytest.raises(ValueError, match="cannot be read back"):
        export.check_readable(_midi_file(tmp_path / "endless.mid", 61_000_000))


def test_one_unreadable_tune_in_a_book_leaves_the_others_written(tmp_path, monkeypatch):
    book = tmp_path / "book.abc"
    book.write_text("X:1\nT:One\nM:4/4\nL:1/4\nK:C\nCDEF|GABc|\n\nX:2\nT:Two\nM:4/4\nL:1/4\nK:G\nGABc|dcBA|\n")
    export = load_script("export_corpus")
    checked = []

    def check_readable(path):  # the second tune written stands for the one music21 writes unreadable
        checked.append(path)
        if len(checked) == 2:
            raise ValueError("music21 wrote a file that cannot be read back")

    monkeypatch.setattr(export, "check_readable", check_readable)
    (tmp_path / "out").mkdir()
    source, written, errors = export.export_one((str(book), str(tmp_path / "out" / "book.mid")))
    assert written == 1 and len(errors) == 1 and errors[0].startswith("book-2.mid: ValueError"), errors
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["book-1.mid"]  # no half-written file left


def test_pieces_in_folders_of_their_own_keep_apart_when_exported():
    export = load_script("export_corpus")
    root = "/site-packages/music21/corpus"
    # Beethoven's quartets are opus18no1/movement1.krn, opus59no1/movement1.krn, ...: named by the stem
    # alone, each movement after the first would have been taken for the file already written.
    quartets = [f"{root}/beethoven/{opus}/movement1.krn" for opus in ("opus18no1", "opus59no1")]
    quartets.append(f"{root}/beethoven/opus132.mxl")
    assert list(export.piece_names(quartets, "beethoven").values()) == ["opus18no1-movement1", "opus59no1-movement1", "opus132"]
    # a stem in one folder keeps its name, in two formats too (exported once), as Bach's chorales always were
    chorales = [f"{root}/bach/bwv277.krn", f"{root}/bach/bwv277.mxl", f"{root}/bach/choraleAnalyses/riemenschneider001.rntxt"]
    assert list(export.piece_names(chorales, "bach").values()) == ["bwv277", "bwv277", "riemenschneider001"]
