"""A self-describing checkpoint directory.

    model.safetensors   the weights (safetensors: nothing is unpickled)
    config.json         model, data and training settings, pitches, frame timing,
                        the latent plane for the XY pad, a training summary, versions
    optimizer.pt        only in a resumable checkpoint; tensors and plain values,
                        loaded with ``weights_only=True``

Every file is written to a temporary name and renamed, so a crash never leaves a half
file behind. Anything wrong with a checkpoint is one CheckpointError that says what.
"""

from __future__ import annotations

import json
import os
import platform
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file

from . import __version__
from .config import Config, ConfigError, FrameTiming, build_config
from .errors import CheckpointError
from .models import build_model

FORMAT = "vrae-live/1"
WEIGHTS = "model.safetensors"
CONFIG = "config.json"
OPTIMIZER = "optimizer.pt"


@dataclass
class Checkpoint:
    model: torch.nn.Module
    config: Config
    pitches: list[int]
    meta: dict[str, Any] = field(default_factory=dict)  # latent_plane, training, versions, ...
    path: Path | None = None

    @property
    def timing(self) -> FrameTiming:
        return self.config.data.timing


def _atomic_write(path: Path, write) -> None:
    """Write through ``write(tmp_path)`` to a temporary file beside ``path``, then rename."""
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    os.close(fd)
    try:
        write(tmp)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def versions() -> dict[str, str]:
    return {"vrae_live": __version__, "torch": torch.__version__, "python": platform.python_version()}


def save_checkpoint(
    directory: str | Path,
    model: torch.nn.Module,
    config: Config,
    pitches: list[int],
    meta: dict[str, Any] | None = None,
    optimizer_state: dict[str, Any] | None = None,
) -> Path:
    """Write a checkpoint directory; ``optimizer_state`` makes it resumable."""
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    weights = {k: v.detach().cpu().contiguous() for k, v in model.state_dict().items()}
    _atomic_write(directory / WEIGHTS, lambda tmp: save_file(weights, tmp, metadata={"format": FORMAT}))
    if optimizer_state is not None:
        _atomic_write(directory / OPTIMIZER, lambda tmp: torch.save(optimizer_state, tmp))
    document = {
        "format": FORMAT,
        **config.to_dict(),
        "pitches": list(pitches),
        "frame_timing": config.data.timing.to_dict(),
        **(meta or {}),
        "versions": versions(),
    }
    text = json.dumps(document, indent=2)
    _atomic_write(directory / CONFIG, lambda tmp: Path(tmp).write_text(text + "\n"))
    return directory


def read_config(directory: str | Path) -> dict[str, Any]:
    """The parsed config.json of a checkpoint, checked for format."""
    directory = Path(directory)
    path = directory / CONFIG
    if not directory.is_dir():
        raise CheckpointError(f"{directory}: no such checkpoint directory")
    if not path.is_file():
        raise CheckpointError(f"{directory}: not a checkpoint (no {CONFIG})")
    try:
        document = json.loads(path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as err:
        raise CheckpointError(f"{path}: damaged ({err})") from err
    if not isinstance(document, dict) or document.get("format") != FORMAT:
        found = document.get("format") if isinstance(document, dict) else None
        raise CheckpointError(f"{path}: unknown checkpoint format {found!r}; this vrae-live reads {FORMAT!r}")
    return document


def load_checkpoint(directory: str | Path, device: str | torch.device = "cpu") -> Checkpoint:
    """Load a checkpoint directory; the model comes back in eval mode on ``device``."""
    directory = Path(directory)
    document = read_config(directory)
    try:
        config = build_config({name: document[name] for name in ("data", "model", "train")})
        pitches = [int(p) for p in document["pitches"]]
    except (KeyError, TypeError, ValueError, ConfigError) as err:
        raise CheckpointError(f"{directory / CONFIG}: damaged or incomplete ({err})") from err
    weights_path = directory / WEIGHTS
    if not weights_path.is_file():
        raise CheckpointError(f"{directory}: no {WEIGHTS}")
    try:
        weights = load_file(weights_path)
    except (SafetensorError, OSError, ValueError) as err:
        raise CheckpointError(f"{weights_path}: damaged ({err})") from err
    model = build_model(len(pitches), config.model)
    try:
        model.load_state_dict(weights)
    except RuntimeError as err:
        raise CheckpointError(f"{weights_path}: weights do not fit the model in {CONFIG} ({err})") from err
    meta = {k: v for k, v in document.items() if k not in ("format", "data", "model", "train", "pitches")}
    return Checkpoint(model=model.to(device).eval(), config=config, pitches=pitches, meta=meta, path=directory)


def load_optimizer_state(directory: str | Path) -> dict[str, Any]:
    path = Path(directory) / OPTIMIZER
    if not path.is_file():
        raise CheckpointError(f"{directory}: not resumable (no {OPTIMIZER})")
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:  # torch.load raises many types for a damaged file
        raise CheckpointError(f"{path}: damaged ({err})") from err
