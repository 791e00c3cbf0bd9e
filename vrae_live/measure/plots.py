"""The paper's figures: the training curve (Figures 1 and 2, left) and the latent map (right).

matplotlib (the ``plots`` extra) draws them with the Agg backend, so no display is needed;
t-SNE comes from scikit-learn (the ``tsne`` extra), with PCA as the fallback. Both are
imported only when a figure is made, so the rest of vrae-live never needs them.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from ..errors import ConfigError

MAX_LEGEND = 20  # more groups than this: no legend, it would cover the map


def require_matplotlib():
    try:
        import matplotlib
    except ImportError:
        raise ConfigError("drawing figures needs matplotlib: pip install 'vrae-live[plots]'") from None
    matplotlib.use("Agg")  # files only; never opens a window
    import matplotlib.pyplot as plt

    return plt


@dataclass(frozen=True)
class Embedding:
    points: np.ndarray  # (N, 2)
    method: str  # "latent means", "t-SNE" or "PCA"
    note: str = ""  # why a fallback was taken, for the user


def embed_2d(means: np.ndarray, method: str = "auto", seed: int = 0) -> Embedding:
    """Latent means ``(N, L)`` to 2-D points ``(N, 2)`` to draw.

    ``auto``: the means themselves for L <= 2 (L = 1 is drawn on a line), else t-SNE, or
    PCA when scikit-learn is missing. ``tsne`` and ``pca`` force a method for L > 2.
    """
    means = np.asarray(means, np.float64)
    n, latent = means.shape
    if latent <= 2:
        return Embedding(np.column_stack([means, np.zeros((n, 2 - latent))]), "latent means")
    if method in ("auto", "tsne"):
        try:
            from sklearn.manifold import TSNE
        except ImportError:
            if method == "tsne":
                raise ConfigError("t-SNE needs scikit-learn: pip install 'vrae-live[tsne]'") from None
            note = "scikit-learn is not installed, so PCA instead of t-SNE (pip install 'vrae-live[tsne]')"
            return Embedding(_pca_2d(means), "PCA", note)
        if n < 5:
            return Embedding(_pca_2d(means), "PCA", f"only {n} windows: too few for t-SNE, PCA instead")
        perplexity = float(min(30.0, (n - 1) / 3))
        points = TSNE(n_components=2, perplexity=perplexity, init="pca", random_state=seed).fit_transform(means)
        return Embedding(points, "t-SNE")
    if method == "pca":
        return Embedding(_pca_2d(means), "PCA")
    raise ValueError(f"unknown method {method!r}")


def _pca_2d(x: np.ndarray) -> np.ndarray:
    centred = x - x.mean(0)
    _, _, vt = np.linalg.svd(centred, full_matrices=False)
    return centred @ vt[:2].T


def _label_axes(ax, x: str, y: str, axis_names: Sequence[str]) -> None:
    """``x`` and ``y`` on the axes, each followed by what it plays where the pad's axes are named."""
    named = len(axis_names) == 2
    ax.set_xlabel(x + (f": {axis_names[0]}" if named else ""))
    ax.set_ylabel(y + (f": {axis_names[1]}" if named else ""))


def plot_map(embedding: Embedding, labels: Sequence[str], out: str | Path, title: str = "",
             axis_names: Sequence[str] = ()) -> Path:
    """One marker per window at its embedded mean, coloured by label (paper Figure 1, right);
    ``axis_names``: what the two axes play, for a pad of named axes drawn on its own units."""
    plt = require_matplotlib()
    labels = np.asarray(labels, dtype=object)
    groups = sorted(set(labels))
    cmap = plt.get_cmap("tab10" if len(groups) <= 10 else "tab20" if len(groups) <= 20 else "nipy_spectral")
    markers = "o^sv<>Dp*h"
    fig, ax = plt.subplots(figsize=(7, 6))
    for i, group in enumerate(groups):
        pts = embedding.points[labels == group]
        colour = cmap(i % 20 if len(groups) <= 20 else i / max(1, len(groups) - 1))
        ax.scatter(pts[:, 0], pts[:, 1], s=10, alpha=0.7, color=colour, marker=markers[i % len(markers)],
                   label=str(group), linewidths=0)
    axis = "z" if embedding.method == "latent means" else embedding.method
    _label_axes(ax, f"{axis} 1", f"{axis} 2", axis_names if embedding.method in ("latent means", "pad") else ())
    ax.set_title(title or f"encoded windows ({embedding.method})")
    if len(groups) <= MAX_LEGEND:
        ax.legend(fontsize=7, markerscale=1.5, loc="best", frameon=False)
    return save_figure(fig, plt, out)


def plot_curve(rows: Sequence[dict[str, Any]], out: str | Path, skip: int = 0, title: str = "") -> Path:
    """Lower bound per datapoint per time step against epoch, training and validation (Figures 1-2, left)."""
    plt = require_matplotlib()
    rows = [r for r in rows if r["epoch"] > skip]
    if not rows:
        raise ConfigError(f"no epochs to draw after skipping the first {skip}")
    epochs = [r["epoch"] for r in rows]
    fig, ax = plt.subplots(figsize=(7, 4.5))
    ax.plot(epochs, [r["train_bound"] for r in rows], marker="." if len(rows) < 40 else None, label="training")
    val = [(r["epoch"], r["val_bound"]) for r in rows if r.get("val_bound") is not None]
    if val:
        ax.plot(*zip(*val), marker="." if len(rows) < 40 else None, label="validation")
    ax.set_xlabel("epoch")
    ax.set_ylabel("lower bound per time step (nats)")
    ax.set_title(title or "lower bound of log p(x) per datapoint per time step")
    ax.grid(alpha=0.3)
    ax.legend(frameon=False)
    return save_figure(fig, plt, out)


def save_figure(fig, plt, out: str | Path) -> Path:
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.tight_layout()
    fig.savefig(out, dpi=120)
    plt.close(fig)
    return out


def plot_window_map(window_map: dict[str, Any], color_by: str, out: str | Path, title: str = "",
                    axis_names: Sequence[str] = ()) -> Path:
    """The map a checkpoint stores (``songmap.window_map``) on the pad's square, as serve's page draws it:
    by ``song`` or ``folder`` (one colour each), or by ``register``, ``density`` or ``major``."""
    plt = require_matplotlib()
    points = np.column_stack([window_map["u"], window_map["v"]])
    if color_by in ("song", "folder"):
        from .analysis import group_of

        labels = [group_of(window_map["songs"][s], color_by) for s in window_map["song"]]
        return plot_map(Embedding(points, "pad"), labels, out, title, axis_names)
    fig, ax = plt.subplots(figsize=(7, 6))
    if color_by == "major":
        major = np.asarray(window_map["major"], bool)
        for mask, name, colour in ((major, "major", "#e0a800"), (~major, "minor", "#3d7fe0")):
            ax.scatter(*points[mask].T, s=10, alpha=0.7, color=colour, label=name, linewidths=0)
        ax.legend(frameon=False)
    else:
        shown = ax.scatter(*points.T, s=10, alpha=0.8, c=window_map[color_by], cmap="turbo", linewidths=0)
        fig.colorbar(shown, ax=ax, label="mean pitch (MIDI)" if color_by == "register" else "notes sounding a frame")
    ax.set_xlim(0, 1)
    ax.set_ylim(0, 1)
    _label_axes(ax, "pad x", "pad y", axis_names)
    ax.set_title(title or "windows on the pad")
    return save_figure(fig, plt, out)
