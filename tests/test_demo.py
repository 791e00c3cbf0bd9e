"""The demo's path over the pad (pure)."""

import numpy as np
import pytest

from vrae_live.play.demo import INNER_SQUARE, DemoPath, spread_out


def test_the_path_rests_on_each_stop_then_glides_smoothly_to_the_next_and_loops():
    path = DemoPath([(0.1, 0.2), (0.9, 0.8)], rest_s=2.0, glide_s=4.0)
    assert path.at(0.0) == path.at(1.9) == pytest.approx((0.1, 0.2))
    assert path.at(4.0) == pytest.approx((0.5, 0.5))  # half-way through the glide
    assert path.at(6.0) == pytest.approx((0.9, 0.8))
    assert path.at(path.period_s + 1.0) == pytest.approx(path.at(1.0))
    xs = np.array([path.at(t)[0] for t in np.arange(0.0, path.period_s, 0.01)])
    assert np.abs(np.diff(xs)).max() < 0.01  # no jumps, not even back to the start
    assert xs.min() >= 0.1 - 1e-12 and xs.max() <= 0.9 + 1e-12


def test_spread_out_keeps_far_apart_points_and_drops_near_duplicates():
    rng = np.random.default_rng(0)
    clusters = np.array([(0.1, 0.1), (0.9, 0.1), (0.9, 0.9), (0.1, 0.9), (0.5, 0.5)])
    points = np.concatenate([c + 0.01 * rng.standard_normal((20, 2)) for c in clusters])
    picked = spread_out(points, 5)
    assert len(picked) == 5
    nearest_cluster = {int(np.argmin(np.linalg.norm(clusters - p, axis=1))) for p in picked}
    assert nearest_cluster == set(range(5))  # one from each cluster
    assert len(spread_out(np.array([(0.3, 0.3)] * 4), 3)) == 1  # coinciding points count once


def test_a_checkpoint_without_songs_circles_the_inner_square():
    for songs in (np.zeros((0, 2)), [[0.4, 0.4]]):
        np.testing.assert_allclose(DemoPath.for_songs(songs).stops, INNER_SQUARE)
    songs = [[i / 10, 1 - i / 10] for i in range(10)]
    assert len(DemoPath.for_songs(songs, stops=4).stops) == 4


def test_bad_timings_are_refused():
    with pytest.raises(ValueError):
        DemoPath(INNER_SQUARE, glide_s=0)
    with pytest.raises(ValueError):
        DemoPath([(0.5, 0.5)])
