"""The MGEval quality measure: features of hand-built rolls, the KDE overlap, the three rows, `info --quality`."""

from __future__ import annotations

import re

import numpy as np
import pytest
from click.testing import CliRunner

from tests.conftest import write_motif_songs
from tests.songs import write_song
from vrae_live.checkpoint import load_checkpoint
from vrae_live.cli import main
from vrae_live.config import FrameTiming
from vrae_live.data.corpus import load_songs
from vrae_live.data.pianoroll import project_roll
from vrae_live.measure import quality
from vrae_live.measure.quality import (
    FEATURES,
    STRUCK,
    SegmentSet,
    intra_distances,
    marked,
    measure_quality,
    notes_of,
    overlap_area,
    random_like,
    segment_features,
    segment_frames,
    silverman,
)


def roll_of(frames: int, notes, columns: int) -> np.ndarray:
    """A binary roll ``(frames, columns)`` with notes ``(column, first frame, frames long)``."""
    roll = np.zeros((frames, columns), dtype=bool)
    for column, start, length in notes:
        roll[start:start + length, column] = True
    return roll


# -- features ------------------------------------------------------------------------------


def test_a_segment_is_eight_beats():
    assert segment_frames(FrameTiming(fs=None, steps_per_beat=4)) == 32
    assert segment_frames(FrameTiming(fs=20.0)) == 80  # 4 s: 8 beats at 120 bpm


def test_notes_are_runs_of_on_frames_so_a_repeated_note_merges():
    roll = roll_of(8, [(0, 0, 2), (0, 2, 2), (1, 1, 1), (1, 5, 3)], 2)  # column 0: two runs that touch
    onset, column, length = notes_of(roll)
    assert onset.tolist() == [0, 1, 5]
    assert column.tolist() == [0, 1, 1]
    assert length.tolist() == [4, 1, 3]


def test_features_of_a_hand_built_segment():
    pitches = np.array([60, 62, 64, 67])
    # C (frames 0-3) and E (0-1) together, then G (4-7), then D (frame 6) under it
    segment = roll_of(8, [(0, 0, 4), (2, 0, 2), (3, 4, 4), (1, 6, 1)], 4)
    f = dict(zip(FEATURES, segment_features(segment, pitches, sixteenth=1.0)))
    assert f["pitch count"].tolist() == [4]
    classes = np.zeros(12)
    classes[[0, 2, 4, 7]] = 0.25
    assert f["pitch classes"] == pytest.approx(classes)
    assert f["pitch range"].tolist() == [7]
    assert f["pitch interval"] == pytest.approx([(4 + 3 + 5) / 3])  # C-E, E-G, G-D by onset, a chord upwards
    assert f["note count"].tolist() == [4]
    assert f["inter-onset interval"] == pytest.approx([3])  # onsets 0, 4, 6
    lengths = np.zeros(9)
    lengths[[0, 1, 3]] = [0.25, 0.25, 0.5]  # a sixteenth, an eighth, two quarters
    assert f["note lengths"] == pytest.approx(lengths)
    assert f["polyphony"] == pytest.approx([11 / 8])  # 2, 2, 1, 1, 1, 1, 2, 1 notes sounding


def test_the_summary_counts_pitches_notes_short_notes_and_polyphony_per_segment():
    pitches = np.array([60, 62, 64, 67])
    first = roll_of(8, [(0, 0, 4), (2, 0, 2), (3, 4, 4), (1, 6, 1)], 4)  # 4 pitches, 4 notes, one a sixteenth
    second = roll_of(8, [(0, 0, 1), (0, 2, 1), (0, 4, 4)], 4)  # one pitch, 3 notes, two of them sixteenths
    pitch_count, notes, short, polyphony = SegmentSet.of([[first, second]], pitches, sixteenth=1.0).summary()
    assert (pitch_count, notes) == (2.5, 3.5)
    assert short == pytest.approx(3 / 7)  # of all the notes, not the mean of each segment's share
    assert polyphony == pytest.approx((11 / 8 + 1) / 2)


def test_note_lengths_are_counted_in_sixteenths_whatever_the_frame():
    pitches = np.array([60])
    quarter_at_20_fps = roll_of(40, [(0, 0, 10)], 1)  # 0.5 s: a quarter note at 120 bpm
    f = segment_features(quarter_at_20_fps, pitches, sixteenth=2.5)
    assert f[FEATURES.index("note lengths")].argmax() == 3  # the quarter notes' bin, as at 4 steps a beat


def test_a_silent_segment_has_no_notes_and_one_long_gap():
    f = dict(zip(FEATURES, segment_features(np.zeros((32, 5), bool), np.arange(60, 65), 1.0)))
    assert all(not f[name].any() for name in FEATURES if name != "inter-onset interval")
    assert f["inter-onset interval"].tolist() == [32]


# -- the overlap of two distance distributions ----------------------------------------------------


def exact_overlap(a: np.ndarray, b: np.ndarray) -> float:
    """The same overlap from KDEs summed over every sample at every point of a fine grid."""
    h_a, h_b = silverman(a), silverman(b)
    reach = 6 * max(h_a, h_b)
    grid = np.linspace(min(a.min(), b.min()) - reach, max(a.max(), b.max()) + reach, 20001)

    def kde(s, h):
        return np.exp(-0.5 * ((grid[:, None] - s[None]) / h) ** 2).sum(1) / (len(s) * h * np.sqrt(2 * np.pi))

    return float(np.minimum(kde(a, h_a), kde(b, h_b)).sum() * (grid[1] - grid[0]))


def test_overlap_of_identical_sets_is_one_and_of_far_apart_sets_zero():
    rng = np.random.default_rng(0)
    a = rng.normal(0, 1, 400)
    assert overlap_area(a, a) == pytest.approx(1.0, abs=1e-3)
    assert overlap_area(a, rng.normal(0, 1, 600)) > 0.9
    assert overlap_area(a, rng.normal(40, 1, 400)) < 1e-3
    assert overlap_area(np.zeros(10), np.zeros(30)) == pytest.approx(1.0, abs=1e-3)  # no spread at all


@pytest.mark.parametrize("shift", [0.5, 1.5])
def test_the_binned_kde_gives_the_exact_overlap(shift):
    rng = np.random.default_rng(1)
    a, b = rng.exponential(1.0, 300), rng.integers(0, 6, 500).astype(float) * 0.5 + shift
    assert overlap_area(a, b) == pytest.approx(exact_overlap(a, b), abs=5e-3)


def test_intra_set_distances_pair_segments_of_different_songs_only():
    pitches = np.arange(60, 64)
    one = roll_of(8, [(0, 0, 8)], 4)
    other = roll_of(8, [(3, 0, 8)], 4)
    reference = SegmentSet.of([[one, one, one], [other, other]], pitches, 1.0)
    d = intra_distances(reference, FEATURES.index("pitch range"))
    assert len(d) == 3 * 2  # no pair within a song, each pair of songs once
    single = SegmentSet.of([[one, other, one]], pitches, 1.0)
    assert len(intra_distances(single, 0)) == 3  # one song: every pair but self


def test_random_notes_keep_the_count_and_lengths_inside_the_range():
    rng = np.random.default_rng(0)
    segment = roll_of(32, [(0, 0, 4), (5, 8, 2), (9, 20, 1)], 12)
    noise = random_like(segment, np.arange(2, 6), rng)
    assert not noise[:, :2].any() and not noise[:, 6:].any()
    assert noise.sum() <= segment.sum()  # notes that land on each other merge, a late one is cut
    assert len(notes_of(noise)[0]) <= 3


# -- the three rows ---------------------------------------------------------------------------------


def write_songs_in_one_style(folder, count: int = 8, bars: int = 9):
    """Songs at 120 bpm in 4/4: a stepwise melody of eighths and quarters on C's major triad and sixth in
    two octaves, over a bass C struck each bar; each song its own walk. Returns ``folder``."""
    tune = (48, 52, 55, 57, 60, 64, 67)
    sixteenth = 0.125  # seconds at 120 bpm
    for song in range(count):
        rng = np.random.default_rng(song)
        notes = [(36, bar * 2.0, bar * 2.0 + 1.875) for bar in range(bars)]
        t, step = 0, int(rng.integers(len(tune)))
        while t < 16 * bars:
            length = int(rng.choice([2, 4]))
            notes.append((tune[step], t * sixteenth, (t + length - 1) * sixteenth))  # a rest: repeats stay two
            step = int(np.clip(step + rng.choice([-1, 1]), 0, len(tune) - 1))
            t += length
        write_song(folder / f"song{song}.mid", notes)
    return folder


@pytest.fixture(scope="module")
def motif_rolls(beat_checkpoint, tmp_path_factory):
    """The beat checkpoint and eight songs of one style on its pitches: 4 whole segments of 8 beats each."""
    ckpt = load_checkpoint(beat_checkpoint)
    folder = write_songs_in_one_style(tmp_path_factory.mktemp("style"))
    rolls = [project_roll(s.roll, ckpt.pitches) for s in load_songs(folder, ckpt.timing, workers=1)]
    assert not any(dropped for _, dropped in rolls)  # every note on the model's pitches
    return ckpt, [roll for roll, _ in rolls]


def test_the_songs_against_themselves_beat_random_notes(motif_rolls):
    ckpt, rolls = motif_rolls
    report = measure_quality(ckpt, rolls, takes=2)
    assert report.songs == 8 and report.segments == sum(len(r) // 32 for r in rolls) == 32
    assert report.ceiling_overall > report.floor_overall + 0.1
    # random pitches anywhere in the songs' range: chromatic, leaping, in clusters, unlike a stepwise tune
    for name in ("pitch classes", "pitch interval", "polyphony"):
        i = FEATURES.index(name)
        assert report.ceiling[i] > report.floor[i], name
    assert all(0.0 <= v <= 1.0 + 1e-9 for v in report.model + report.ceiling + report.floor)


def test_the_model_row_measures_what_the_takes_play(motif_rolls, monkeypatch):
    """Takes that replay the songs themselves score near the ceiling; silent takes score below random notes."""
    ckpt, rolls = motif_rolls
    played = []

    def replay(source):
        def play_takes(checkpoint, zs, steps, seed=0, hop=None, density=0.5, temperature=1.0, **key):
            played.append((zs, density, temperature))
            clips = [source[k % len(source)][:steps] for k in range(len(zs))]
            return [(np.pad(c, ((0, steps - len(c)), (0, 0))), None) for c in clips]  # a model of the binary roll

        return play_takes

    import vrae_live.measure.steering as steering

    monkeypatch.setattr(steering, "play_takes", replay(rolls))
    echo = measure_quality(ckpt, rolls, takes=8, take_beats=32, density=0.3, temperature=0.5)
    [(zs, density, temperature)] = played  # the takes played together, as voices of one stream
    assert (density, temperature) == (0.3, 0.5)
    assert len({tuple(z) for z in zs}) == 8  # each take its own point of the pad
    assert echo.overall > echo.floor_overall
    assert echo.overall > 0.8 * echo.ceiling_overall

    monkeypatch.setattr(steering, "play_takes", replay([np.zeros_like(r) for r in rolls]))
    silent = measure_quality(ckpt, rolls, takes=4)
    assert silent.overall < silent.floor_overall
    assert not silent.plays_like_the_songs
    assert silent.verdict().startswith("falls short") and "below random notes" in silent.verdict()


def test_the_report_says_its_figures(motif_rolls):
    ckpt, rolls = motif_rolls
    report = measure_quality(ckpt, rolls, takes=2, seed=3)
    line = report.line()
    assert f"{report.overall:.2f} overlap" in line and f"songs' own {report.ceiling_overall:.2f}" in line
    assert f"{report.ratio:.2f}x" in line and f"random notes {report.floor_overall:.2f}" in line
    table = report.table().splitlines()
    assert [row.split()[0] for row in table[1:9]] == [name.split()[0] for name in FEATURES]
    assert table[9].split()[1:] == [f"{v:.2f}" for v in (report.overall, report.ceiling_overall, report.floor_overall)]
    assert report.verdict().startswith("plays like the songs" if report.ratio >= quality.BAR else "falls short")
    counted = table[11]
    assert counted.startswith("per 8 beats, model (songs): distinct pitches ")
    assert f"distinct pitches {report.played[0]:.1f} ({report.sung[0]:.1f})" in counted
    assert f"one sixteenth long {100 * report.played[2]:.0f} % ({100 * report.sung[2]:.0f} %)" in counted


def test_many_segments_are_thinned_to_a_sample(motif_rolls, monkeypatch):
    ckpt, rolls = motif_rolls
    monkeypatch.setattr(quality, "MAX_SEGMENTS", 12)
    report = measure_quality(ckpt, rolls, takes=1)
    assert report.songs == 8 and report.segments == 12
    assert np.isfinite(report.ceiling_overall) and np.isfinite(report.floor_overall)


def test_one_song_has_no_ceiling(motif_rolls):
    ckpt, rolls = motif_rolls
    report = measure_quality(ckpt, rolls[:1], takes=1)
    assert np.isnan(report.ceiling_overall) and np.isfinite(report.overall)
    assert report.verdict().startswith("no ceiling")


# -- info --quality -----------------------------------------------------------------------------------


def test_info_quality_prints_the_table_and_the_verdict(beat_checkpoint, tmp_path):
    songs = write_songs_in_one_style(tmp_path / "songs", count=4, bars=7)
    result = CliRunner().invoke(main, ["info", str(beat_checkpoint), "--quality", str(songs), "--takes", "3",
                                       "--temperature", "0.5", "--density", "0.7"], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    out = result.output
    for name in FEATURES + ("overall",):
        assert re.search(rf"^{name} +\d\.\d\d +\d\.\d\d +\d\.\d\d$", out, re.M), out
    assert re.search(r"^model / songs +\d+\.\d\d$", out, re.M), out
    assert "3 takes of 32 beats at density 0.7, temperature 0.5; 4 songs, 12 segments of 8 beats" in out
    assert re.search(r"^(plays like the songs|falls short): \d\.\d\d of the ceiling", out, re.M), out
    in_key = CliRunner().invoke(main, ["info", str(beat_checkpoint), "--quality", str(songs), "--takes", "3",
                                       "--key", "Eb", "--scale", "dorian", "--key-strength", "1"], catch_exceptions=False)
    assert "3 takes of 32 beats at density 0.5, temperature 1, in Eb dorian at key strength 1; 4 songs" in in_key.output


def test_songs_too_unlike_each_other_give_no_verdict(beat_checkpoint, tmp_path):
    """Four songs, each one arpeggio over and over in a key of its own: any two halves differ completely."""
    ckpt = load_checkpoint(beat_checkpoint)
    folder = write_motif_songs(tmp_path / "songs", count=4, seconds=12.0)
    rolls = [project_roll(s.roll, ckpt.pitches)[0] for s in load_songs(folder, ckpt.timing, workers=1)]
    report = measure_quality(ckpt, rolls, takes=2)
    assert report.ceiling_overall < report.floor_overall
    assert not report.plays_like_the_songs
    assert report.verdict().startswith("no verdict")


def test_info_quality_on_songs_too_short_is_one_line(beat_checkpoint, tmp_path):
    write_song(tmp_path / "short" / "a.mid", [(60, 0.0, 1.0), (64, 1.0, 2.0)])  # 4 beats at 120 bpm
    result = CliRunner().invoke(main, ["info", str(beat_checkpoint), "--quality", str(tmp_path / "short")])
    assert result.exit_code != 0
    assert "has 8 beats (32 frames) with notes" in result.output
    assert "Traceback" not in result.output


def test_notes_of_a_marked_roll_are_cut_where_a_note_is_struck_again():
    frames = np.zeros((8, 2), bool)
    frames[0:6, 0] = True  # one run of 6 frames on column 0, struck at 0, 2 and 3
    frames[1:3, 1] = frames[4:5, 1] = True
    struck = np.zeros_like(frames)
    struck[[0, 2, 3], 0] = True
    struck[[1, 4], 1] = True
    onset, column, length = notes_of(marked(frames, struck))
    assert list(zip(onset.tolist(), column.tolist(), length.tolist())) == [(0, 0, 2), (1, 1, 2), (2, 0, 1),
                                                                          (3, 0, 3), (4, 1, 1)]
    as_runs = notes_of(frames)  # without onsets: runs
    assert list(zip(*(a.tolist() for a in as_runs))) == [(0, 0, 6), (1, 1, 2), (4, 1, 1)]
    assert np.array_equal(notes_of(marked(frames))[2], as_runs[2])
    assert marked(frames, struck & False).max() == 1 and marked(frames, struck).max() == STRUCK
