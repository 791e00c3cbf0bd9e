"""The latent-space and drift measurements, on data whose answer is known by construction."""

from __future__ import annotations

import numpy as np
import pytest

from vrae_live.measure.analysis import (
    block_features,
    chance_accuracy,
    compare_codes,
    drift_frame,
    drift_report,
    fit_music_stats,
    group_of,
    knn_accuracy,
    knn_predict,
    pca_fit,
    pca_transform,
    split_within_songs,
)


def test_group_of():
    assert group_of("bach/bwv1.mid", "song") == "bach/bwv1.mid"
    assert group_of("bach/bwv1.mid", "folder") == "bach"
    assert group_of("top.mid", "folder") == "."
    with pytest.raises(ValueError):
        group_of("x.mid", "composer")


def test_split_within_songs_holds_out_each_songs_end_with_a_gap():
    song = np.repeat([0, 1, 2], [10, 8, 2])
    train, test = split_within_songs(song, hold_fraction=0.25, gap=1)
    assert set(train).isdisjoint(test)
    # song 0: windows 0-9, test 7-9, gap 6, train 0-5
    assert set(test) >= {7, 8, 9} and 6 not in train and 6 not in test and set(range(6)) <= set(train)
    assert set(np.flatnonzero(song == 2)) <= set(train)  # too short for both parts: all training
    for s in (0, 1):  # training windows come before the held-out ones in each song
        assert train[song[train] == s].max() < test[song[test] == s].min()


def test_knn_finds_clusters_and_breaks_ties_by_the_nearest():
    rng = np.random.default_rng(0)
    centres = np.array([[0.0, 0.0], [10.0, 0.0], [0.0, 10.0]])
    y = np.repeat(["a", "b", "c"], 30)
    x = centres[np.repeat([0, 1, 2], 30)] + rng.normal(0, 1, (90, 2))
    test_y = np.array(["a", "b", "c"] * 5)
    test_x = centres[[0, 1, 2] * 5] + rng.normal(0, 1, (15, 2))
    assert knn_accuracy(x, y, test_x, test_y, k=5) == 1.0
    assert knn_accuracy(x, rng.permutation(y), test_x, test_y, k=5) < 0.8  # labels shuffled: no longer found
    # k = 2 with one of each: the nearer wins
    assert knn_predict([[0.0], [3.0]], ["near", "far"], [[1.0]], k=2)[0] == "near"


def test_chance_is_the_majority_label():
    assert chance_accuracy(["a", "a", "b"], ["a", "b", "b", "b"]) == pytest.approx(0.25)


def test_pca_recovers_the_main_direction():
    rng = np.random.default_rng(1)
    t = rng.normal(0, 5, 200)
    x = np.column_stack([t, 2 * t, rng.normal(0, 0.01, 200)])
    mean, components = pca_fit(x, 1)
    assert abs(abs(components[0] @ np.array([1, 2, 0]) / np.sqrt(5)) - 1) < 1e-3
    codes = pca_transform(x, mean, components)
    assert codes.shape == (200, 1) and abs(np.corrcoef(codes[:, 0], t)[0, 1]) > 0.999


def test_compare_codes_latent_beats_pca_when_the_codes_know_the_song():
    """Raw windows of two songs that differ only in noise; latent means that separate them."""
    rng = np.random.default_rng(2)
    raw = rng.random((80, 6, 4)) < 0.3  # (N, W, P): raw windows carry no song information
    labels = np.repeat(["s0", "s1"], 40)
    means = np.where(labels[:, None] == "s0", -1.0, 1.0) + rng.normal(0, 0.1, (80, 2))
    train, test = np.arange(0, 80, 2), np.arange(1, 80, 2)
    report = compare_codes(means, raw, labels, train, test, task="song")
    assert report.latent == 1.0 and report.pca < 0.8 and report.chance == 0.5
    assert (report.dims, report.classes, report.train_windows, report.test_windows) == (2, 2, 40, 40)


def test_block_features():
    pitches = [60, 64, 67, 72]
    frames = np.zeros((8, 4), bool)
    frames[0:4, 0] = True  # C held for 4 frames: one onset
    frames[0:4, 3] = True  # C an octave up
    frames[4:8:2, 1] = True  # E struck twice
    f = block_features(frames, pitches, block=4)
    assert f.shape == (2, 14)
    assert f[0, 0] == pytest.approx(2 / 4) and f[0, 1] == pytest.approx(8 / 4)  # 2 onsets, 2 voices
    assert f[0, 2 + 0] == pytest.approx(1.0)  # all C
    assert f[1, 0] == pytest.approx(2 / 4) and f[1, 2 + 4] == pytest.approx(1.0)  # all E
    assert block_features(frames[:3], pitches, block=4).shape == (0, 14)


def music(rng, frames, pitches):
    """Random 'training music': a C major triad pattern with some noise."""
    roll = np.zeros((frames, len(pitches)), bool)
    for t in range(0, frames, 4):
        chord = rng.choice([0, 1, 2], size=2, replace=False)
        roll[t:t + 3, chord] = True
    return roll


def test_drift_threshold_and_detection():
    rng = np.random.default_rng(3)
    pitches = [60, 64, 67, 61, 66]
    rolls = [music(rng, 400, pitches) for _ in range(5)]
    stats = fit_music_stats(rolls, pitches, block=20)
    train_d = stats.distance(np.concatenate([block_features(r, pitches, 20) for r in rolls]))
    assert np.mean(train_d > stats.threshold) == pytest.approx(0.05, abs=0.02)

    # a take that plays like the training music for 200 frames, then sticks on two foreign notes
    take = music(rng, 400, pitches)
    take[200:] = False
    take[200:, 3:] = True
    report = drift_report("test", [take, music(rng, 400, pitches)], pitches, stats, frame_seconds=0.05)
    assert report.drift_frames[0] == 200
    assert report.drift_frames[1] is None
    assert report.median_drift_frame() == pytest.approx((200 + 400) / 2)
    assert report.over_share == pytest.approx(0.25, abs=0.05)  # half the first take, about none of the second


def test_drift_frame_needs_a_run():
    d = np.array([0, 5, 0, 5, 5, 0, 5, 5, 5])
    assert drift_frame(d, 1.0, block=10, run=3) == 60
    assert drift_frame(d, 1.0, block=10, run=2) == 30
    assert drift_frame(d, 10.0, block=10) is None
