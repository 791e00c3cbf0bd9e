"""Does the pad play what its map shows? A measurement against the songs the map was made of.

The windows of the songs are encoded and placed on the pad (the map ``vrae-live map``
draws), and grouped into ``clusters`` regions by k-means on their pad positions. The
music played at each region's centre, through the live stream path (``steering.play_takes``),
is compared with the music of every region's windows by the same features as the
steering measurement (mean pitch, notes per frame, pitch classes). The pad is faithful
where a region's centre plays music closer to that region's own windows than to the
other regions': the score is the share of regions (over ``takes`` seeds) for which that
holds. Chance is one in ``clusters``.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from ..checkpoint import Checkpoint
from ..data.corpus import Song, windows_for
from ..training.evaluation import encode_means
from .steering import music_features, play_takes


@dataclass(frozen=True)
class FaithfulnessReport:
    score: float  # share of (region, take) pairs whose centre plays closest to its own region's windows
    clusters: int
    takes: int
    windows: int

    @property
    def chance(self) -> float:
        return 1.0 / self.clusters

    def line(self) -> str:
        return (f"faithfulness {self.score:.2f}: the music at a region's centre is closest to that region's "
                f"own windows for {100 * self.score:.0f} % of {self.clusters} regions x {self.takes} takes "
                f"(chance {100 * self.chance:.0f} %; {self.windows} windows)")


def kmeans(points: np.ndarray, k: int, seed: int = 0, rounds: int = 50) -> tuple[np.ndarray, np.ndarray]:
    """Centres ``(k, D)`` and labels ``(N,)`` of plain k-means, started from k-means++ seeds."""
    rng = np.random.default_rng(seed)
    centres = [points[rng.integers(len(points))]]
    for _ in range(1, k):
        d2 = np.min(((points[:, None] - np.array(centres)[None]) ** 2).sum(-1), axis=1)
        centres.append(points[rng.choice(len(points), p=d2 / d2.sum())] if d2.sum() > 0 else points[rng.integers(len(points))])
    centres = np.array(centres)
    for _ in range(rounds):
        labels = ((points[:, None] - centres[None]) ** 2).sum(-1).argmin(1)
        moved = np.array([points[labels == j].mean(0) if np.any(labels == j) else centres[j] for j in range(k)])
        if np.allclose(moved, centres):
            break
        centres = moved
    return centres, labels


def measure_faithfulness(checkpoint: Checkpoint, songs: list[Song], clusters: int = 4, takes: int = 3,
                         frames: int = 256, max_windows: int = 2000) -> FaithfulnessReport:
    windows = windows_for(songs, checkpoint.pitches, checkpoint.config.data)
    x = windows.x[np.linspace(0, len(windows.x) - 1, min(max_windows, len(windows.x))).astype(int)]
    if len(x) < clusters:
        raise ValueError(f"{len(x)} windows cannot make {clusters} regions")
    device = next(checkpoint.model.parameters()).device
    means = encode_means(checkpoint.model, torch.from_numpy(x).to(device, torch.float32)).numpy()  # (N, L)
    plane = checkpoint.latent_plane()
    positions = np.array([plane.position_of(z) for z in means])  # (N, 2) on the pad
    centres, labels = kmeans(positions, clusters)
    regions = [j for j in range(clusters) if np.any(labels == j)]  # k-means can leave a centre without windows
    pitches = np.asarray(checkpoint.pitches)
    region_features = np.array([
        np.mean([music_features(w[:, :len(pitches)].astype(bool), pitches) for w in x[labels == j]], axis=0)
        for j in regions
    ])  # (regions, F)
    played = play_takes(checkpoint, [plane.z_at(*centres[j]) for j in regions for _ in range(takes)], frames)
    hits = 0
    for n, (sound, _) in enumerate(played):
        hits += int(np.abs(region_features - music_features(sound, pitches)).sum(1).argmin() == n // takes)
    return FaithfulnessReport(hits / (len(regions) * takes), len(regions), takes, len(x))
