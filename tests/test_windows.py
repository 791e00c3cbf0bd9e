import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

from vrae_live.data.windows import make_windows


def numbered_roll(steps: int, pitches: int = 3) -> np.ndarray:
    """A (steps, pitches) roll whose cell values say which step they belong to."""
    return np.repeat(np.arange(steps)[:, None], pitches, axis=1)


def test_windows_start_every_hop_and_overlap():
    roll = numbered_roll(10)
    windows = make_windows(roll, window=4, hop=2)
    assert windows.shape == (4, 4, 3)
    assert windows[:, 0, 0].tolist() == [0, 2, 4, 6]
    assert np.array_equal(windows[1, :2], windows[0, 2:])  # 50 % overlap
    assert np.array_equal(windows[3], roll[6:10])


def test_windows_without_overlap_drop_the_incomplete_tail():
    windows = make_windows(numbered_roll(11), window=5, hop=5)
    assert windows[:, 0, 0].tolist() == [0, 5]


def test_hop_longer_than_window_skips_steps():
    windows = make_windows(numbered_roll(20), window=3, hop=7)
    assert windows[:, 0, 0].tolist() == [0, 7, 14]


def test_max_windows_keeps_the_first_ones():
    windows = make_windows(numbered_roll(100), window=10, hop=5, max_windows=3)
    assert windows[:, 0, 0].tolist() == [0, 5, 10]
    assert len(make_windows(numbered_roll(12), window=10, hop=5, max_windows=3)) == 1


def test_song_shorter_than_a_window_gives_no_windows():
    roll = np.ones((9, 4), dtype=np.uint8)
    windows = make_windows(roll, window=10, hop=5)
    assert windows.shape == (0, 10, 4) and windows.dtype == np.uint8
    assert make_windows(np.ones((10, 4), bool), window=10, hop=5).shape == (1, 10, 4)


def test_windows_are_a_copy_with_the_rolls_dtype():
    roll = np.zeros((6, 2), dtype=bool)
    windows = make_windows(roll, window=3, hop=1)
    assert windows.dtype == bool and windows.flags.c_contiguous
    windows[0, 0, 0] = True
    assert not roll.any()


def test_bad_window_or_hop_is_refused():
    with pytest.raises(ValueError):
        make_windows(numbered_roll(5), window=0, hop=1)
    with pytest.raises(ValueError):
        make_windows(numbered_roll(5), window=2, hop=0)


@settings(max_examples=200, deadline=None)
@given(
    steps=st.integers(0, 60),
    window=st.integers(1, 20),
    hop=st.integers(1, 25),
    max_windows=st.none() | st.integers(1, 10),
)
def test_every_window_is_the_slice_at_its_start(steps, window, hop, max_windows):
    roll = numbered_roll(steps, pitches=2)
    windows = make_windows(roll, window, hop, max_windows)
    expected = len(range(0, steps - window + 1, hop))
    if max_windows is not None:
        expected = min(expected, max_windows)
    assert windows.shape == (expected, window, 2)
    for i, w in enumerate(windows):
        assert np.array_equal(w, roll[i * hop : i * hop + window])
