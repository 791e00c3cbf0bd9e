"""The XY pad: the plane of latent space it spans, and the glide of a moving finger.

The plane is fitted to the training songs' codes at training time (:func:`latent_plane`,
stored in the checkpoint's ``config.json``) and read back live (:class:`LatentPlane`).
Pure: numpy only.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Mapping, Sequence

import numpy as np


@dataclass(frozen=True)
class LatentPlane:
    """``z = origin + sum_i (lo_i + u_i (hi_i - lo_i)) axes_i`` for pad coordinates u in [0, 1]^2.

    Fitted at training time (:func:`latent_plane`) and stored in the checkpoint: the plane
    of the two main directions of the encoded songs around their centre (or of the two units
    taught the pad's named attributes, x leaning on y's unit where the pad is levelled), scaled
    so that the songs fill it. The axes need not be orthogonal.
    """

    origin: np.ndarray  # (L,)
    axes: np.ndarray  # (A, L), A = min(L, 2)
    lo: np.ndarray  # (A,)
    hi: np.ndarray  # (A,)
    attributes: tuple[str, ...] = ()  # what x and y follow (--pad-axes); () for the songs' main directions

    @classmethod
    def from_meta(cls, plane: Mapping[str, Any]) -> "LatentPlane":
        return cls(*(np.asarray(plane[k], dtype=np.float64) for k in ("origin", "axes", "lo", "hi")),
                   attributes=tuple(plane.get("attributes") or ()))

    @classmethod
    def standard(cls, latent: int, extent: float = 2.0) -> "LatentPlane":
        """The first two latent axes from -extent to +extent: for a checkpoint without a plane."""
        a = min(latent, 2)
        return cls(np.zeros(latent), np.eye(latent)[:a], np.full(a, -extent), np.full(a, extent))

    @property
    def latent_size(self) -> int:
        return len(self.origin)

    def z_at(self, x: float, y: float) -> np.ndarray:
        """The latent vector ``(L,)`` under pad position (x, y), each 0..1."""
        u = np.array([x, y])[: len(self.lo)]
        return self.origin + (self.lo + u * (self.hi - self.lo)) @ self.axes

    def target(self, z: Sequence[float] | None, x: float, y: float) -> np.ndarray:
        """What a controller asks for, ``(L,)``: its own z when it sent one of the latent's size, else
        the z under its pad position."""
        if z is not None and len(z) == self.latent_size:
            return np.asarray(z, dtype=np.float64)
        return self.z_at(x, y)

    def position_of(self, z: np.ndarray) -> tuple[float, float]:
        """The pad position nearest to ``z`` (clipped to the pad), for feedback."""
        u = (plane_coordinates(z, self.origin, self.axes) - self.lo) / (self.hi - self.lo)
        u = np.clip(u, 0.0, 1.0)
        return float(u[0]), float(u[1]) if len(u) > 1 else 0.5


class Glide:
    """Exponential smoothing of the latent target, so a jump of the finger does not click.

    After ``glide_s`` seconds the position has covered 63 % of a jump (one time constant).
    ``glide_s = 0`` follows the target at once.
    """

    def __init__(self, glide_s: float):
        if glide_s < 0 or not math.isfinite(glide_s):
            raise ValueError(f"glide must be a finite number of seconds >= 0, not {glide_s}")
        self.glide_s = glide_s
        self.value: np.ndarray | None = None

    def step(self, target: np.ndarray, dt: float) -> np.ndarray:
        """Move ``dt`` seconds towards ``target``; the first call jumps there."""
        target = np.asarray(target, dtype=np.float64)
        if self.value is None or self.glide_s == 0 or self.value.shape != target.shape:
            self.value = target.copy()
        else:
            self.value = self.value + (target - self.value) * (1.0 - math.exp(-dt / self.glide_s))
        return self.value.copy()


def plane_coordinates(z: np.ndarray, origin: np.ndarray, axes: np.ndarray) -> np.ndarray:
    """Latent vectors ``(..., L)`` as coordinates ``(..., A)`` along the plane's ``axes (A, L)`` from
    ``origin``: those of the nearest point of the plane (least squares), so axes that are not
    orthogonal (a levelled pad's) are read back as ``z_at`` wrote them."""
    return (np.asarray(z, dtype=np.float64) - origin) @ np.linalg.pinv(np.asarray(axes, dtype=np.float64))


def latent_plane(
    means: np.ndarray, song: np.ndarray, song_names: list[str], min_extent: float = 0.0,
    attributes: Sequence[str] = (), lean: float = 0.0,
) -> dict[str, Any]:
    """The part of latent space an XY pad spans, from the training songs' encoded means.

    ``z = origin + (lo_i + u_i (hi_i - lo_i)) axes_i`` for pad coordinates ``u`` in
    [0, 1]^2. With ``attributes`` (a model trained with ``--pad-axes``) the axes are the
    first two latent units, which were taught to follow them (``training/axes.py``), and the
    other units stay at the windows' mean code; ``lean`` tilts x's direction towards y's unit
    (``lean`` of it for each unit of x's own), so that y's attribute stays level along x where the
    decoder would let it drift (``measure/axes.level_lean``). Without, the axes are the two main
    directions along which the songs differ (the scatter of the songs' mean codes,
    :func:`song_axes`), for a 2-D latent as for more: where two latent units carry nearly the same
    variable, the songs lie along one diagonal of the raw axes, and a pad on those axes would leave
    two of its corners far from any song. x is the direction along which the songs differ most.
    The 2nd to 98th percentile of the windows along each axis (their coordinates on the plane,
    :func:`plane_coordinates`) makes the pad's edges, widened to at least ``-min_extent ..
    +min_extent`` around the origin.
    """
    means = np.asarray(means, dtype=np.float64)  # (N, L)
    origin = means.mean(axis=0)
    if attributes:
        axes = np.eye(means.shape[1])[:len(attributes)]
        if len(axes) == 2:
            axes[0, 1] = lean
    else:
        axes = song_axes(means, np.asarray(song))
    coords = plane_coordinates(means, origin, axes)  # (N, A)
    lo, hi = np.percentile(coords, 2, axis=0), np.percentile(coords, 98, axis=0)
    lo, hi = np.minimum(lo, -min_extent), np.maximum(hi, min_extent)
    hi = np.where(hi - lo < 1e-6, lo + 1e-6, hi)
    uv = (coords - lo) / (hi - lo)
    songs = [
        {"name": name, "uv": np.median(uv[song == i], axis=0).round(4).tolist()}
        for i, name in enumerate(song_names)
        if np.any(song == i)
    ]
    return {
        "origin": origin.tolist(),
        "axes": axes.tolist(),
        "lo": lo.tolist(),
        "hi": hi.tolist(),
        "songs": songs,
        "attributes": list(attributes),
    }


def song_axes(means: np.ndarray, song: np.ndarray) -> np.ndarray:
    """Two orthonormal directions ``(A, L)``, A = min(L, 2): first the main directions of the
    scatter between the songs' mean codes (each song weighted by its windows), then, where the
    songs span fewer (one or two songs), those of all the windows' scatter across what is left.

    Not the windows' main directions alone: codes whitened in training (``--mu-whiten``) have
    the same spread in every direction over the windows, so those directions would be the
    rounding's choice, and the pad's x would not be where the songs differ most.
    Each axis points along its largest component, so the pad keeps its orientation from one
    epoch to the next (an eigenvector's sign is arbitrary).
    """
    latent = means.shape[1]
    if latent == 1:
        return np.ones((1, 1))
    centred = means - means.mean(axis=0)
    between = np.zeros((latent, latent))
    for s in np.unique(song):
        windows = centred[song == s]
        d = windows.mean(axis=0)
        between += len(windows) * np.outer(d, d)
    values, vectors = np.linalg.eigh(between)  # ascending
    spread = np.sum(centred**2)  # the trace of the windows' scatter: what counts as no difference at all
    axes = [v for value, v in zip(values[::-1], vectors.T[::-1]) if value > 1e-9 * spread][:2]
    if len(axes) < 2:
        q, _ = np.linalg.qr(np.column_stack([*axes, np.eye(latent)]))
        rest = q[:, len(axes):]  # (L, L - len(axes)): orthonormal, across the songs' axes
        _, within = np.linalg.eigh(rest.T @ (centred.T @ centred) @ rest)
        axes += list((rest @ within[:, ::-1]).T[: 2 - len(axes)])
    axes = np.array(axes)
    return axes * np.sign(axes[np.arange(len(axes)), np.abs(axes).argmax(1)])[:, None]
