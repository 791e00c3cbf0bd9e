"""Measurements of a trained model's latent space and of its long generations.

Three questions from the paper's section 3, each answered with a number:

1. Do the codes keep what tells songs (or composers) apart?  A k-nearest-neighbour
   classifier on held-out windows, from their latent means ``(N, L)``, against the same
   classifier on a PCA of the raw windows to the same ``L`` dimensions (a baseline that
   needs no training), and chance (the most common label).
2. How many latent units are in use?  :func:`vrae_live.training.evaluation.active_units`.
3. How long does a generation stay like the training music?  Frames are cut into blocks;
   each block is summarised by note density (onsets per frame), polyphony (sounding
   pitches per frame) and its pitch-class histogram (12 shares). A block's distance is
   the Euclidean distance of these 14 features, each divided by its standard deviation
   over the training songs' blocks, from the training mean. The drift threshold is the
   95th percentile of the training blocks' own distances, so 5 % of real music blocks lie
   beyond it; a take has drifted at the first of ``run`` consecutive blocks beyond it.

Pure numpy except where a model is run (torch, under ``no_grad``).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Sequence

import numpy as np
import torch

from ..checkpoint import Checkpoint
from ..data.corpus import Song, windows_for
from ..data.pianoroll import project_roll
from ..training.evaluation import active_units, encode_means

N_FEATURES = 14  # density, polyphony, 12 pitch classes
DRIFT_PERCENTILE = 95.0


# -- labels and splits -------------------------------------------------------------


def group_of(song_name: str, by: str) -> str:
    """A song's label: its name (``by="song"``) or its top folder, e.g. the composer (``by="folder"``)."""
    if by == "song":
        return song_name
    if by == "folder":
        parts = song_name.split("/")
        return parts[0] if len(parts) > 1 else "."
    raise ValueError(f"by must be 'song' or 'folder', not {by!r}")


def split_within_songs(song: np.ndarray, hold_fraction: float, gap: int) -> tuple[np.ndarray, np.ndarray]:
    """Indices (train, test) of windows: the last ``hold_fraction`` of each song's windows are test.

    song: (N,) song index of each window, windows of a song in time order.
    gap: windows dropped between a song's train and test part, so that overlapping windows
        (hop < window) share no frame across the split: ``ceil(window / hop) - 1``.
    A song too short to give both parts goes wholly to training.
    """
    train, test = [], []
    for s in np.unique(song):
        idx = np.flatnonzero(song == s)
        n_test = int(math.ceil(len(idx) * hold_fraction))
        if len(idx) - n_test - gap < 1 or n_test < 1:
            train.extend(idx)
            continue
        test.extend(idx[len(idx) - n_test:])
        train.extend(idx[: len(idx) - n_test - gap])
    return np.asarray(train, dtype=np.int64), np.asarray(test, dtype=np.int64)


# -- classifiers -------------------------------------------------------------------


def knn_predict(train_x: np.ndarray, train_y: np.ndarray, test_x: np.ndarray, k: int = 5) -> np.ndarray:
    """Majority label of the ``k`` nearest training points (Euclidean); ties go to the nearest.

    train_x: (N, D), train_y: (N,) labels, test_x: (M, D). Returns (M,) labels.
    """
    train_x, test_x = np.asarray(train_x, np.float64), np.asarray(test_x, np.float64)
    train_y = np.asarray(train_y)
    k = min(k, len(train_x))
    predictions = []
    for start in range(0, len(test_x), 512):  # (512, N) distances at a time bounds memory
        block = test_x[start:start + 512]
        d = (block ** 2).sum(1)[:, None] - 2 * block @ train_x.T + (train_x ** 2).sum(1)[None]
        nearest = np.argsort(d, axis=1, kind="stable")[:, :k]  # (m, k), nearest first
        for row in nearest:
            labels = train_y[row]
            values, first, counts = np.unique(labels, return_index=True, return_counts=True)
            best = counts == counts.max()
            predictions.append(values[best][np.argmin(first[best])])  # a tie: the label met first
    return np.asarray(predictions)


def knn_accuracy(train_x, train_y, test_x, test_y, k: int = 5) -> float:
    """Share of test points whose k-NN label is right."""
    if len(test_x) == 0 or len(train_x) == 0:
        return float("nan")
    return float((knn_predict(train_x, train_y, test_x, k) == np.asarray(test_y)).mean())


def pca_fit(x: np.ndarray, dims: int) -> tuple[np.ndarray, np.ndarray]:
    """Mean ``(D,)`` and the top ``dims`` principal directions ``(dims, D)`` of ``x (N, D)``."""
    x = np.asarray(x, np.float64)
    mean = x.mean(0)
    _, _, vt = np.linalg.svd(x - mean, full_matrices=False)
    components = vt[:dims]
    if len(components) < dims:  # fewer points than dims: pad with zero directions
        components = np.vstack([components, np.zeros((dims - len(components), x.shape[1]))])
    return mean, components


def pca_transform(x: np.ndarray, mean: np.ndarray, components: np.ndarray) -> np.ndarray:
    return (np.asarray(x, np.float64) - mean) @ components.T


def chance_accuracy(train_y, test_y) -> float:
    """Accuracy of always answering the most common training label."""
    values, counts = np.unique(np.asarray(train_y), return_counts=True)
    return float((np.asarray(test_y) == values[np.argmax(counts)]).mean()) if len(test_y) else float("nan")


@dataclass(frozen=True)
class ClassifierReport:
    task: str  # what is told apart, and how the test windows were held out
    k: int
    latent: float  # accuracy from the latent means
    pca: float  # accuracy from PCA of the raw windows, same dims
    chance: float
    dims: int
    train_windows: int
    test_windows: int
    classes: int


def compare_codes(means: np.ndarray, raw: np.ndarray, labels: np.ndarray, train: np.ndarray, test: np.ndarray,
                  task: str, k: int = 5) -> ClassifierReport:
    """k-NN from latent means ``(N, L)`` against k-NN from PCA(L) of raw windows ``(N, W, P)``."""
    dims = means.shape[1]
    flat = np.asarray(raw, np.float64).reshape(len(raw), -1)  # (N, W*P)
    mean, components = pca_fit(flat[train], dims)  # fitted on training windows only
    pca_codes = pca_transform(flat, mean, components)
    return ClassifierReport(
        task=task, k=k, dims=dims,
        latent=knn_accuracy(means[train], labels[train], means[test], labels[test], k),
        pca=knn_accuracy(pca_codes[train], labels[train], pca_codes[test], labels[test], k),
        chance=chance_accuracy(labels[train], labels[test]),
        train_windows=len(train), test_windows=len(test), classes=len(np.unique(labels[train])),
    )


@dataclass
class LatentReport:
    latent: int
    active_units: int
    windows: int
    songs: int
    classifiers: list[ClassifierReport] = field(default_factory=list)


def measure_latent_space(checkpoint: Checkpoint, songs: Sequence[Song], k: int = 5,
                         hold_fraction: float = 0.25) -> LatentReport:
    """Active units over all windows; k-NN of songs (held-out end of each song) and, when the
    songs lie in folders, of folders (held-out: the checkpoint's validation songs)."""
    data = checkpoint.config.data
    windows = windows_for(songs, checkpoint.pitches, data)
    x = torch.from_numpy(windows.x).to(next(checkpoint.model.parameters()).device, torch.float32)
    means = encode_means(checkpoint.model, x).double().numpy()  # (N, L)
    report = LatentReport(latent=means.shape[1], active_units=active_units(torch.from_numpy(means)),
                          windows=len(means), songs=len(songs))
    names = np.asarray(windows.song_names, dtype=object)[windows.song]  # (N,) song name per window

    gap = max(0, math.ceil(data.window / data.hop) - 1)
    train, test = split_within_songs(windows.song, hold_fraction, gap)
    if len(test):
        report.classifiers.append(compare_codes(
            means, windows.x, names, train, test, k=k,
            task=f"song, last {hold_fraction:.0%} of each song's windows held out"))

    folders = np.asarray([group_of(n, "folder") for n in names], dtype=object)
    val_songs = set(checkpoint.song_names("validation"))
    in_val = np.asarray([n in val_songs for n in names], dtype=bool)
    if len(set(folders)) > 1 and in_val.any() and (~in_val).any():
        report.classifiers.append(compare_codes(
            means, windows.x, folders, np.flatnonzero(~in_val), np.flatnonzero(in_val), k=k,
            task="folder (composer), the model's validation songs held out"))
    return report


# -- drift of long generations -------------------------------------------------------


def block_features(frames: np.ndarray, pitches: Sequence[int], block: int) -> np.ndarray:
    """Frames ``(T, P)`` to features ``(T // block, 14)`` of consecutive blocks of ``block`` frames.

    Per block: onsets per frame (note density), sounding pitches per frame (polyphony),
    and the shares of the 12 pitch classes among sounding cells (all 0 for a silent block).
    """
    on = np.asarray(frames, dtype=bool)
    n = len(on) // block
    if n == 0:
        return np.zeros((0, N_FEATURES))
    on = on[: n * block]
    previous = np.vstack([np.zeros((1, on.shape[1]), bool), on[:-1]])
    onsets = (on & ~previous).reshape(n, block, -1).sum((1, 2)) / block  # (n,)
    cells = on.reshape(n, block, -1).sum(1).astype(np.float64)  # (n, P) sounding frames per pitch
    polyphony = cells.sum(1) / block
    classes = np.zeros((n, 12))
    for j, pitch in enumerate(pitches):
        classes[:, pitch % 12] += cells[:, j]
    classes /= np.maximum(classes.sum(1, keepdims=True), 1e-12)
    return np.column_stack([onsets, polyphony, classes])


@dataclass(frozen=True)
class MusicStats:
    """The training music's block statistics, and the distance beyond which a block counts as drifted."""

    mean: np.ndarray  # (14,)
    scale: np.ndarray  # (14,) standard deviation (floored, so a constant feature cannot blow up)
    threshold: float  # the DRIFT_PERCENTILE of the training blocks' distances
    block: int  # frames per block
    blocks: int  # training blocks measured

    def distance(self, features: np.ndarray) -> np.ndarray:
        """Standardised Euclidean distance ``(n,)`` of block features ``(n, 14)`` from the training mean."""
        return np.sqrt((((features - self.mean) / self.scale) ** 2).sum(-1))


def fit_music_stats(rolls: Sequence[np.ndarray], pitches: Sequence[int], block: int) -> MusicStats:
    """Block statistics of rolls ``(T, P)`` (the training songs on the model's pitches)."""
    features = np.concatenate([block_features(r, pitches, block) for r in rolls] or [np.zeros((0, N_FEATURES))])
    if len(features) < 2:
        raise ValueError(f"need at least 2 blocks of {block} frames of training music, got {len(features)}")
    mean, scale = features.mean(0), np.maximum(features.std(0), 1e-3)
    stats = MusicStats(mean=mean, scale=scale, threshold=0.0, block=block, blocks=len(features))
    threshold = float(np.percentile(stats.distance(features), DRIFT_PERCENTILE))
    return MusicStats(mean=mean, scale=scale, threshold=threshold, block=block, blocks=len(features))


def drift_frame(distances: np.ndarray, threshold: float, block: int, run: int = 3) -> int | None:
    """The first frame of the first ``run`` consecutive blocks beyond ``threshold``, or None."""
    over = np.asarray(distances) > threshold
    for i in range(len(over) - run + 1):
        if over[i:i + run].all():
            return i * block
    return None


@torch.no_grad()
def free_run(checkpoint: Checkpoint, z: np.ndarray, steps: int, seed: int = 0) -> np.ndarray:
    """One decoder run of ``steps`` frames from ``z (L,)``, sampling each frame: the paper's generation.

    Returns (steps, P) bool. No overlapping windows: the state is never re-seeded from z.
    """
    model = checkpoint.model.eval()
    device = next(model.parameters()).device
    generator = torch.Generator().manual_seed(seed)

    def sample(p: torch.Tensor) -> torch.Tensor:
        return (torch.rand(p.shape, generator=generator).to(device) < p).to(p.dtype)

    z_t = torch.as_tensor(z, dtype=torch.float32, device=device)[None]  # (1, L)
    _, frames = model.generate(z_t, steps, choose=sample)
    return frames[0].cpu().numpy().astype(bool)


@dataclass(frozen=True)
class DriftReport:
    method: str
    steps: int  # frames per take
    frame_seconds: float
    drift_frames: list[int | None]  # per take
    over_share: float  # share of all blocks beyond the threshold (training music: 5 %)

    def median_drift_frame(self) -> float | None:
        """Median over takes, a take that never drifted counting as ``steps`` (so a lower bound then)."""
        if not self.drift_frames:
            return None
        return float(np.median([self.steps if d is None else d for d in self.drift_frames]))


def drift_report(method: str, takes: Sequence[np.ndarray], pitches: Sequence[int], stats: MusicStats,
                 frame_seconds: float, run: int = 3) -> DriftReport:
    """Drift of generated takes ``(T, P)`` each, against the training statistics."""
    drifts, over = [], []
    for frames in takes:
        d = stats.distance(block_features(frames, pitches, stats.block))
        over.extend(d > stats.threshold)
        drifts.append(drift_frame(d, stats.threshold, stats.block, run))
    return DriftReport(method=method, steps=int(len(takes[0])) if takes else 0, frame_seconds=frame_seconds,
                       drift_frames=drifts, over_share=float(np.mean(over)) if over else float("nan"))


def song_rolls(songs: Sequence[Song], pitches: Sequence[int]) -> list[np.ndarray]:
    """Each song's roll ``(T, P)`` on the model's pitches."""
    return [project_roll(s.roll, pitches)[0] for s in songs]
