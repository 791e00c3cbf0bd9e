"""Cut a song's roll into the fixed-length sequences the VRAE trains on."""

from __future__ import annotations

import numpy as np


def make_windows(roll: np.ndarray, window: int, hop: int, max_windows: int | None = None) -> np.ndarray:
    """Full windows of ``window`` steps, one starting every ``hop`` steps.

    Parameters
    ----------
    roll : np.ndarray, shape (T, P)
    window : int
        Steps per window.
    hop : int
        Steps between window starts; ``hop < window`` makes windows overlap
        (``window // 2`` is the paper's 50 %), ``hop > window`` skips steps.
    max_windows : int, optional
        Keep only the first this many windows (the paper kept 520 per song).

    Returns
    -------
    np.ndarray, shape (N, window, P), same dtype as ``roll``
        A copy. ``N = (T - window) // hop + 1``, capped at ``max_windows``,
        and 0 when the song is shorter than one window.
    """
    if window < 1 or hop < 1:
        raise ValueError(f"window and hop must be at least 1, not {window} and {hop}")
    steps, n_pitches = roll.shape
    count = 0 if steps < window else (steps - window) // hop + 1
    if max_windows is not None:
        count = min(count, max_windows)
    if count == 0:
        return np.zeros((0, window, n_pitches), dtype=roll.dtype)
    # sliding_window_view puts the window axis last: (T - window + 1, P, window)
    views = np.lib.stride_tricks.sliding_window_view(roll, window, axis=0)[: (count - 1) * hop + 1 : hop]
    return np.ascontiguousarray(views.transpose(0, 2, 1))
