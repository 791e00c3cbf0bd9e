"""A self-describing checkpoint directory.

    model.safetensors   the weights (safetensors: nothing is unpickled)
    config.json         model, data (frame timing among them) and training settings, pitches,
                        the latent plane for the XY pad, a training summary, versions
    optimizer.pt        only in a resumable checkpoint; tensors and plain values,
                        loaded with ``weights_only=True``

Every file is written to a temporary name and renamed, so a crash never leaves a half
file behind. Anything wrong with a checkpoint is one CheckpointError that says what:
config.json is checked field by field (pydantic, ``CheckpointDocument``) when it is read,
so a damaged setting, pitch list or latent plane names the file and the field.
"""

from __future__ import annotations

import json
import os
import platform
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Any, Literal, Optional

import numpy as np
import torch
from annotated_types import Ge, Le, MinLen
from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_validator,
)
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file

from . import __version__
from .config import (
    KNOWN_NAMES,
    SECTIONS,
    Config,
    DataConfig,
    Float,
    FrameTiming,
    Int,
    ModelConfig,
    PadAttribute,
    Str,
    TrainConfig,
)
from .data.meter import DEFAULT_BAR_QUARTERS
from .errors import CheckpointError
from .models import model_for
from .pad import LatentPlane
from .play.notes import DEFAULT_POLYPHONY
from .validation import error_message

FORMAT = "vrae-live/1"
WEIGHTS = "model.safetensors"
CONFIG = "config.json"
OPTIMIZER = "optimizer.pt"


# -- what config.json holds -----------------------------------------------------------


def _increasing(pitches: list[int]) -> list[int]:
    if any(b <= a for a, b in zip(pitches, pitches[1:])):
        raise ValueError("must be MIDI note numbers in strictly increasing order")
    return pitches


Pitches = Annotated[list[Annotated[Int, Ge(0), Le(127)]], MinLen(1), AfterValidator(_increasing)]


class SongSpot(BaseModel):
    """Where one training song lies on the pad: its median pad position ``uv``."""

    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)
    name: Str
    uv: list[Float]


class StoredPlane(BaseModel):
    """The XY pad's plane, as ``train.latent_plane`` writes it and ``live.latent.LatentPlane`` reads it.

    ``origin`` has the latent size L; ``axes`` is A rows of L numbers, A = min(L, 2);
    ``lo`` and ``hi`` (above ``lo``) and each song's ``uv`` have A numbers.
    """

    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)
    origin: Annotated[list[Float], MinLen(1)]
    axes: list[list[Float]]
    lo: list[Float]
    hi: list[Float]
    songs: list[SongSpot]
    attributes: list[PadAttribute] = []  # what x and y follow (--pad-axes); none: the songs' directions

    @field_validator("axes")
    @classmethod
    def _axes_span_the_latent(cls, axes: list[list[float]], info: ValidationInfo) -> list[list[float]]:
        if "origin" in info.data:
            latent = len(info.data["origin"])
            if len(axes) != min(latent, 2) or any(len(row) != latent for row in axes):
                got = ", ".join(str(len(row)) for row in axes) or "none"
                raise ValueError(f"expected {min(latent, 2)} row(s) of {latent} numbers (origin's size), got rows of {got}")
        return axes

    @field_validator("lo", "hi", "songs")
    @classmethod
    def _one_number_per_pad_axis(cls, value: list, info: ValidationInfo) -> list:
        if "axes" not in info.data:
            return value
        n = len(info.data["axes"])
        if info.field_name == "songs":
            for i, song in enumerate(value):
                if len(song.uv) != n:
                    raise ValueError(f"song {i} ({song.name}) has {len(song.uv)} uv number(s), expected {n}, one per pad axis")
            return value
        if len(value) != n:
            raise ValueError(f"expected {n} numbers, one per pad axis, got {len(value)}")
        if info.field_name == "hi" and "lo" in info.data and not all(high > low for low, high in zip(info.data["lo"], value)):
            raise ValueError("must be above lo on every pad axis")
        return value


class WindowMap(BaseModel):
    """The map of the training windows on the pad (``songmap.window_map`` writes it): columns of
    one value per window, ``song`` indexing ``songs``; drawn by ``vrae-live map`` and serve's page."""

    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)
    at_unit: Literal["bar", "s"]
    songs: list[Str]
    u: list[Float]
    v: list[Float]
    song: list[Annotated[Int, Ge(0)]]
    at: list[Float]
    mean_pitch: list[Float] = Field(alias="register")  # "register" would shadow BaseModel.register
    density: list[Annotated[Float, Ge(0)]]
    major: list[Annotated[Int, Ge(0), Le(1)]]

    @model_validator(mode="after")
    def _columns_agree(self) -> "WindowMap":
        columns = {name: len(getattr(self, name)) for name in ("u", "v", "song", "at", "mean_pitch", "density", "major")}
        if len(set(columns.values())) > 1:
            raise ValueError(f"every column needs one value per window; lengths {columns}")
        if self.song and max(self.song) >= len(self.songs):
            raise ValueError(f"song index {max(self.song)} but only {len(self.songs)} songs")
        return self


class CheckpointDocument(BaseModel):
    """config.json, checked. ``format`` is checked before; other top-level keys are free meta.

    Frame timing is stored once, as ``data``'s ``fs`` and ``steps_per_beat``. Checkpoints written
    before stored it again as ``frame_timing``: still read, it must agree with ``data``, and is dropped.
    """

    model_config = ConfigDict(extra="allow")
    data: DataConfig
    model: ModelConfig
    train: TrainConfig
    pitches: Pitches
    frame_timing: Optional[FrameTiming] = None  # older checkpoints only (OLD_KEYS)
    training: Optional[dict[str, Any]] = None
    latent_plane: Optional[StoredPlane] = None
    window_map: Optional[WindowMap] = None
    versions: Optional[dict[str, Str]] = None

    @field_validator("frame_timing")
    @classmethod
    def _timing_agrees(cls, timing: FrameTiming | None, info: ValidationInfo) -> FrameTiming | None:
        if timing is not None and "data" in info.data and timing != info.data["data"].timing:
            raise ValueError(f"{timing.describe()} disagrees with data's {info.data['data'].timing.describe()}")
        return timing

    @field_validator("latent_plane")
    @classmethod
    def _plane_fits_the_model(cls, plane: StoredPlane | None, info: ValidationInfo) -> StoredPlane | None:
        if plane is not None and "model" in info.data and len(plane.origin) != info.data["model"].latent:
            raise ValueError(f"origin has {len(plane.origin)} numbers; the model's latent has {info.data['model'].latent}")
        return plane

    @property
    def config(self) -> Config:
        return Config(data=self.data, model=self.model, train=self.train)


OLD_KEYS = ("frame_timing",)  # read from older checkpoints, checked, never written again

KNOWN_KEYS = {
    **{loc: names for loc, names in KNOWN_NAMES.items() if loc},  # the settings of data, model, train
    ("latent_plane",): list(StoredPlane.model_fields),
    ("latent_plane", "songs"): list(SongSpot.model_fields),
    ("window_map",): [field.alias or name for name, field in WindowMap.model_fields.items()],
}


def check_document(document: dict[str, Any], path: Path) -> CheckpointDocument:
    """The parsed config.json, checked field by field; CheckpointError names the file and field."""
    try:
        return CheckpointDocument.model_validate(document)
    except ValidationError as err:
        raise CheckpointError(f"{path}: {error_message(err, style='json', known=KNOWN_KEYS, sections=SECTIONS)}") from None


@dataclass
class Checkpoint:
    model: torch.nn.Module
    config: Config
    pitches: list[int]
    meta: dict[str, Any] = field(default_factory=dict)  # latent_plane, training, versions, ...: read them below
    path: Path | None = None
    plane: StoredPlane | None = None  # meta["latent_plane"], checked
    map: WindowMap | None = None  # meta["window_map"], checked

    @property
    def timing(self) -> FrameTiming:
        return self.config.data.timing

    @property
    def training(self) -> dict[str, Any]:
        """The training summary (``Trainer.summary``); empty for a checkpoint saved without one."""
        return self.meta.get("training") or {}

    @property
    def bar_quarters(self) -> float:
        """Quarter notes in the bar a model of the meter plays in live: its training songs' most common
        (4/4 for a checkpoint that does not say)."""
        return float(self.training.get("bar_quarters", DEFAULT_BAR_QUARTERS))

    @property
    def polyphony(self) -> int:
        """Most notes at once the gate plays by default: as many as the training songs keep to in 9 of
        10 of their sounding frames (``data.corpus.songs_polyphony``); ``DEFAULT_POLYPHONY`` for a
        checkpoint that does not say."""
        return int(self.training.get("polyphony") or DEFAULT_POLYPHONY)

    @property
    def songs_key(self) -> int:
        """The key signature (0..11, 0 is C major or A minor) most of the training windows keep to
        (``models/keys.songs_key``): what a decoder told the key plays in unless given one; C for a
        checkpoint that does not say."""
        return int(self.training.get("key") or 0)

    def song_names(self, split: Literal["training", "validation"]) -> list[str]:
        """The songs the model was trained on, or held out to validate it; none without a summary."""
        return list(self.training.get("train_songs" if split == "training" else "val_songs", []))

    @property
    def versions(self) -> dict[str, str]:
        """The versions of vrae-live, torch and Python that saved it."""
        return dict(self.meta.get("versions") or {})

    def window_map(self) -> dict[str, Any] | None:
        """The map of the training windows on the pad (checked on load), as its columns; None without one."""
        return None if self.map is None else self.map.model_dump(by_alias=True)

    def latent_plane(self) -> LatentPlane:
        """The XY pad's plane: the one stored (checked on load), or the standard one without it."""
        if self.plane is None:
            return LatentPlane.standard(self.config.model.latent)
        return LatentPlane.from_meta(self.plane.model_dump())

    def song_spots(self) -> np.ndarray:
        """``(N, 2)``: where each training song sits on the pad (0..1 each way); none without a stored plane."""
        songs = self.plane.songs if self.plane is not None else []
        return np.array([song.uv for song in songs], dtype=np.float64).reshape(-1, 2)


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
        **(meta or {}),
        "versions": versions(),
    }
    text = json.dumps(document, indent=2)
    _atomic_write(directory / CONFIG, lambda tmp: Path(tmp).write_text(text + "\n"))
    return directory


def read_config(directory: str | Path) -> dict[str, Any]:
    """The parsed config.json of a checkpoint, checked for format and field by field."""
    document = _read_document(directory)
    check_document(document, Path(directory) / CONFIG)
    return document


def _read_document(directory: str | Path) -> dict[str, Any]:
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
    document = _read_document(directory)
    checked = check_document(document, directory / CONFIG)
    config, pitches = checked.config, list(checked.pitches)
    weights_path = directory / WEIGHTS
    if not weights_path.is_file():
        raise CheckpointError(f"{directory}: no {WEIGHTS}")
    try:
        weights = load_file(weights_path)
    except (SafetensorError, OSError, ValueError) as err:
        raise CheckpointError(f"{weights_path}: damaged ({err})") from err
    model = model_for(config, pitches)
    try:
        model.load_state_dict(weights)
    except RuntimeError as err:
        raise CheckpointError(f"{weights_path}: weights do not fit the model in {CONFIG} ({err})") from err
    meta = {k: v for k, v in document.items() if k not in ("format", "data", "model", "train", "pitches", *OLD_KEYS)}
    return Checkpoint(
        model=model.to(device).eval(), config=config, pitches=pitches, meta=meta, path=directory,
        plane=checked.latent_plane, map=checked.window_map,
    )


def load_optimizer_state(directory: str | Path) -> dict[str, Any]:
    path = Path(directory) / OPTIMIZER
    if not path.is_file():
        raise CheckpointError(f"{directory}: not resumable (no {OPTIMIZER})")
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:  # torch.load raises many types for a damaged file
        raise CheckpointError(f"{path}: damaged ({err})") from err


def store_meta(directory: str | Path, key: str, value: Any) -> None:
    """Add or replace one top-level entry of a checkpoint's config.json (e.g. ``window_map``), checked, atomically.

    An older checkpoint's file is written in today's form (no ``frame_timing``)."""
    directory = Path(directory)
    document = {**_read_document(directory), key: value}
    check_document(document, directory / CONFIG)
    document = {k: v for k, v in document.items() if k not in OLD_KEYS}
    text = json.dumps(document, indent=2)
    _atomic_write(directory / CONFIG, lambda tmp: Path(tmp).write_text(text + "\n"))
