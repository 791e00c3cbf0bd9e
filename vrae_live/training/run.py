"""The run directory of ``vrae-live train``: the best checkpoint at its top, ``resume/``, ``metrics.jsonl``."""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .trainer import Trainer

RESUME_DIR = "resume"
METRICS_FILE = "metrics.jsonl"


def read_metrics(out_dir: str | Path) -> list[dict[str, Any]]:
    """One dict per finished epoch, in order."""
    path = Path(out_dir) / METRICS_FILE
    if not path.is_file():
        return []
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def append_metrics(out_dir: str | Path, row: dict[str, Any]) -> None:
    with open(Path(out_dir) / METRICS_FILE, "a") as f:
        f.write(json.dumps(row) + "\n")


def keep_metrics_until(out_dir: str | Path, epoch: int) -> None:
    """Drop the rows after ``epoch`` (a resumed run writes them again)."""
    rows = [row for row in read_metrics(out_dir) if row["epoch"] <= epoch]
    (Path(out_dir) / METRICS_FILE).write_text("".join(json.dumps(row) + "\n" for row in rows))


def format_row(row: dict[str, Any], epochs: int, improved: bool) -> str:
    """The epoch line ``train`` prints."""
    val = f"val {row['val_bound']:.4f}" if row["val_bound"] is not None else "val -"
    return (
        f"epoch {row['epoch']:>3}/{epochs}  train {row['train_bound']:.4f}  {val} nats/step  "
        f"KL {row['train_kl']:.2f}  active {row['active_units']}/{row['latent']}  "
        f"lr {row['lr']:.2e}  {row['seconds']:.1f}s"
        + (f"  steering {row['steering_weaker']:.2f}  seams {row['seams']:.2f}" if "steering_weaker" in row else "")
        + (f"  {row['skipped_steps']} steps skipped (not finite)" if row.get("skipped_steps") else "")
        + ("  *" if improved else "")
    )


def run_summary(trainer: "Trainer", interrupted: bool) -> dict[str, Any]:
    """What config.json's ``training`` says of a run: its length, where it stands, its kept epoch, its songs."""
    p, d = trainer.progress, trainer.data
    return {
        "epochs_done": p.epoch,
        "epochs": trainer.config.train.epochs,
        "best_epoch": p.best_epoch,
        "best_bound": p.best_bound if p.best_epoch > 0 else None,
        "bound_on": "validation" if trainer.measured_val is not None else "training",
        "copy_bound": trainer.copy_bound,
        "bar_quarters": d.bar_quarters,  # the training songs' most common bar (data/meter.py)
        "polyphony": d.polyphony,  # the notes at once they keep to (data/corpus.songs_polyphony): the gate's limit
        "key": trainer.songs_key,  # the key signature most of their windows keep to (models/keys.py): the live key
        "seconds": round(p.seconds, 2),
        "device": str(trainer.device),
        "processes": trainer.world.size,
        "precision": trainer.config.train.precision,
        "train_songs": list(d.train.song_names),
        "val_songs": list(d.val.song_names) if d.val is not None else [],
        "train_windows": int(len(d.train.x)),
        "val_windows": int(len(d.val.x)) if d.val is not None else 0,
        "steps": p.global_step,
        "converged": bool(p.plateau["converged"]),
        "interrupted": interrupted,
    }
