"""The figures of the VRAE-initialisation study (``rnn_init.py``): the early-stopped point of a
learning curve, the mean and spread over seeds, and the learning curves drawn."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Sequence

import numpy as np

INITS = ("random", "vrae")
# predict_long: next-frame prediction on all the labels with long_steps, to see whether a random start catches up
TASKS = ("classify", "predict", "predict_long")

# What each task reports on the test songs, and the validation figure early stopping follows (and which way).
SCORED = {"classify": ("accuracy", "balanced_accuracy", "nll"), "predict": ("nll",), "predict_long": ("nll",)}
STOP_ON = {"classify": ("val_accuracy", max), "predict": ("val_nll", min), "predict_long": ("val_nll", min)}


def early_stopped(curve: Sequence[dict[str, Any]], task: str) -> dict[str, Any]:
    """The point of ``curve`` with the best validation figure (the earliest of equals): where early
    stopping on the validation songs would have kept the model. The test songs play no part."""
    key, best = STOP_ON[task]
    target = best(p[key] for p in curve)
    return next(p for p in curve if p[key] == target)


def summarise(runs: Sequence[dict[str, Any]], point: str = "final") -> list[dict[str, Any]]:
    """Per task, share and start: the mean, std (sample, ddof 1), min and max over the seeds of each
    figure (and of the step) at each run's ``point``: ``final`` or ``early_stopped``."""
    keys = sorted({(r["task"], r["fraction"], r["init"]) for r in runs},
                  key=lambda k: (TASKS.index(k[0]), k[1], INITS.index(k[2])))
    rows = []
    for task, fraction, init in keys:
        group = [r for r in runs if (r["task"], r["fraction"], r["init"]) == (task, fraction, init)]
        row: dict[str, Any] = {"task": task, "fraction": fraction, "init": init, "seeds": len(group),
                               "labelled_windows": group[0]["labelled_windows"]}
        for metric in group[0][point]:
            values = np.array([r[point][metric] for r in group], dtype=np.float64)
            row[metric] = {"mean": float(values.mean()), "std": float(values.std(ddof=1)) if len(values) > 1 else 0.0,
                           "min": float(values.min()), "max": float(values.max())}
        rows.append(row)
    return rows


def plot_learning_curves(results: dict[str, Any], task: str, metric: str, out: str | Path,
                         ylabel: str, reference: tuple[float, str] | None = None,
                         ylim: tuple[float, float] | None = None) -> Path:
    """One panel per label share: ``metric`` on the test songs against steps, the mean over seeds
    of each start as a line, min to max as a band; ``reference`` (value, label) a dashed line;
    ``ylim`` (bottom, top) fixes the y axis (a random start's first figures can dwarf the rest)."""
    from ..measure.plots import require_matplotlib, save_figure

    plt = require_matplotlib()
    runs = [r for r in results["runs"] if r["task"] == task]
    fractions = sorted({r["fraction"] for r in runs})
    fig, axes = plt.subplots(1, len(fractions), figsize=(4.2 * len(fractions), 3.6), sharey=True, squeeze=False)
    for ax, fraction in zip(axes[0], fractions):
        for init, colour in zip(INITS, ("tab:grey", "tab:blue")):
            group = [r for r in runs if r["fraction"] == fraction and r["init"] == init]
            if not group:
                continue
            steps = [p["step"] for p in group[0]["curve"]]
            values = np.array([[p[metric] for p in r["curve"]] for r in group])  # (seeds, points)
            ax.plot(steps, values.mean(0), color=colour, label=f"{init} init ({len(group)} seeds)")
            ax.fill_between(steps, values.min(0), values.max(0), color=colour, alpha=0.2, linewidth=0)
        if reference is not None:
            ax.axhline(reference[0], color="k", linestyle="--", linewidth=0.8, label=reference[1])
        labelled = next(r["labelled_windows"] for r in runs if r["fraction"] == fraction)
        ax.set_title(f"{fraction:.0%} of the labels ({labelled} windows)")
        ax.set_xlabel("supervised step")
        ax.grid(alpha=0.3)
    if ylim is not None:
        axes[0][0].set_ylim(*ylim)  # the panels share the y axis
    axes[0][0].set_ylabel(ylabel)
    axes[0][0].legend(frameon=False, fontsize="small")
    return save_figure(fig, plt, out)
