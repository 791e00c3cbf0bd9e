"""The map of the songs on the pad: every training window (an even subsample) at its pad
position, with its song, where in the song it starts, and three musical features.

Written into the checkpoint at training time next to the pad's plane (``window_map`` in
config.json), computed afterwards for an older checkpoint by ``vrae-live map --store``, and
drawn by ``vrae-live map`` and by serve's web page alike. Pure: numpy only.

Features of a window (piano roll ``(W, P)``):

- ``register``: the mean MIDI pitch of its sounding notes (each frame a note sounds counts);
- ``density``: notes sounding per frame, on average;
- ``major``: 1 when its pitch classes fit a major key better than a minor one (the
  Krumhansl-Kessler key profiles), else 0.
"""

from __future__ import annotations

from typing import Any, Sequence

import numpy as np

from .pad import plane_coordinates

MAX_POINTS = 3000  # a few thousand dots: enough to see the regions, small enough for config.json and a phone

# Krumhansl & Kessler (1982): how well each pitch class fits a key, from the tonic upwards.
MAJOR_PROFILE = np.array([6.35, 2.23, 3.48, 2.33, 4.38, 4.09, 2.52, 5.19, 2.39, 3.66, 2.29, 2.88])
MINOR_PROFILE = np.array([6.33, 2.68, 3.52, 5.38, 2.60, 3.53, 2.54, 4.75, 3.98, 2.69, 3.34, 3.17])


def _key_templates(profile: np.ndarray) -> np.ndarray:
    """The profile in all 12 keys, each row centred and of unit length: ``(12, 12)``."""
    rows = np.stack([np.roll(profile, tonic) for tonic in range(12)])
    rows = rows - rows.mean(1, keepdims=True)
    return rows / np.linalg.norm(rows, axis=1, keepdims=True)


_MAJOR, _MINOR = _key_templates(MAJOR_PROFILE), _key_templates(MINOR_PROFILE)


def window_features(x: np.ndarray, pitches: Sequence[int]) -> dict[str, np.ndarray]:
    """``register``, ``density`` and ``major`` of windows ``x (N, W, P)`` (or ``(N, W, 2P)`` with
    onsets, which are not looked at); each ``(N,)``.

    A silent window has density 0, the median register of the others, and counts as major.
    """
    x = np.asarray(x[..., :len(pitches)], dtype=np.float64)  # (N, W, P)
    pitches = np.asarray(pitches, dtype=np.float64)  # (P,)
    per_pitch = x.sum(1)  # (N, P): frames each pitch sounds
    sounding = per_pitch.sum(1)  # (N,)
    density = sounding / max(x.shape[1], 1)
    register = np.divide(per_pitch @ pitches, sounding, out=np.full(len(x), np.nan), where=sounding > 0)
    fill = np.nanmedian(register) if np.isfinite(register).any() else 60.0
    register = np.where(np.isfinite(register), register, fill)
    chroma = np.zeros((len(x), 12))
    for column, pitch in enumerate(pitches.astype(int)):
        chroma[:, pitch % 12] += per_pitch[:, column]
    centred = chroma - chroma.mean(1, keepdims=True)
    norm = np.linalg.norm(centred, axis=1, keepdims=True)
    centred = np.divide(centred, norm, out=np.zeros_like(centred), where=norm > 0)
    major = (centred @ _MAJOR.T).max(1) >= (centred @ _MINOR.T).max(1)
    return {"register": register, "density": density, "major": major.astype(int)}


def subsample(n: int, max_points: int = MAX_POINTS) -> np.ndarray:
    """Indices of an even subsample of ``n`` items, at most ``max_points`` of them."""
    if n <= max_points:
        return np.arange(n)
    return np.unique(np.linspace(0, n - 1, max_points).round().astype(int))


def window_starts(song: np.ndarray, hop: int) -> np.ndarray:
    """The step where each window starts in its song, for windows cut every ``hop`` steps in song order."""
    song = np.asarray(song)
    starts = np.zeros(len(song), dtype=np.int64)
    for index in np.unique(song):
        where = np.flatnonzero(song == index)
        starts[where] = np.arange(len(where)) * hop
    return starts


def pad_coordinates(means: np.ndarray, plane: dict[str, Any]) -> np.ndarray:
    """Latent means ``(N, L)`` as pad positions ``(N, 2)`` on the plane (1 for the pad's width; not clipped).

    The inverse of ``LatentPlane.z_at`` for points on the plane; a 1-D latent sits at v = 0.5.
    """
    lo, hi = np.asarray(plane["lo"]), np.asarray(plane["hi"])
    uv = (plane_coordinates(means, np.asarray(plane["origin"]), np.asarray(plane["axes"])) - lo) / (hi - lo)  # (N, A)
    return uv if uv.shape[1] == 2 else np.column_stack([uv, np.full(len(uv), 0.5)])


def window_map(means: np.ndarray, x: np.ndarray, song: np.ndarray, song_names: Sequence[str],
               pitches: Sequence[int], plane: dict[str, Any], starts: np.ndarray,
               steps_per_bar: int | None = None, fs: float | None = None) -> dict[str, Any]:
    """The map stored in a checkpoint: the windows ``x (N, W, P)`` given with their means ``(N, L)``.

    Columns of equal length: ``u``, ``v`` (pad position), ``song`` (index into ``songs``),
    ``at`` (where the window starts, from its step in the song ``starts``: the bar, from 1,
    when ``steps_per_bar`` is given, else seconds at ``fs`` frames per second), and the
    features of :func:`window_features`. Pass the windows already subsampled (:func:`subsample`);
    ``song`` indexes ``song_names``.
    """
    uv = pad_coordinates(means, plane)
    features = window_features(x, pitches)
    used = sorted(set(int(s) for s in song))
    renumber = {old: new for new, old in enumerate(used)}
    if steps_per_bar:
        at, unit = [int(s // steps_per_bar) + 1 for s in starts], "bar"
    else:
        at, unit = [round(float(s) / (fs or 1.0), 2) for s in starts], "s"
    return {
        "at_unit": unit,
        "songs": [song_names[i] for i in used],
        "u": uv[:, 0].round(4).tolist(),
        "v": uv[:, 1].round(4).tolist(),
        "song": [renumber[int(s)] for s in song],
        "at": at,
        "register": features["register"].round(1).tolist(),
        "density": features["density"].round(3).tolist(),
        "major": features["major"].tolist(),
    }


def map_of_windows(means_of, x: np.ndarray, song: np.ndarray, song_names: Sequence[str], pitches: Sequence[int],
                   plane: dict[str, Any], data, max_points: int = MAX_POINTS,
                   starts: np.ndarray | None = None) -> dict[str, Any]:
    """:func:`window_map` of an even subsample of windows cut as ``data`` (a DataConfig) says;
    ``means_of(keep)`` gives the means ``(len(keep), L)`` of the windows ``x[keep]`` (:func:`subsample`),
    so a caller that has encoded every window already need not encode them again. ``starts``: the
    first step of each window in its song, for windows that are not all of their songs' windows in
    order (a subsample); by default worked out from ``song``."""
    keep = subsample(len(x), max_points)
    starts = (window_starts(song, data.hop) if starts is None else np.asarray(starts))[keep]
    steps_per_bar = 4 * data.steps_per_beat if data.steps_per_beat else None
    return window_map(means_of(keep), x[keep], song[keep], song_names, pitches, plane, starts,
                      steps_per_bar=steps_per_bar, fs=data.fs)
