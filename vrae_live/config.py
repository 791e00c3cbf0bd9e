"""Settings: frozen dataclasses, TOML presets, command-line overrides.

A setting comes from, in rising order: the defaults below, a preset
(``presets/NAME.toml`` or any TOML file), then the command line. A preset has
the sections ``[data]``, ``[model]`` and ``[train]``; an unknown section or key
is an error that lists the known ones, so a typo never passes silently.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping

try:
    import tomllib
except ModuleNotFoundError:  # Python 3.10
    import tomli as tomllib

from .errors import ConfigError

DEFAULT_BPM = 120.0


@dataclass(frozen=True)
class FrameTiming:
    """How one piano-roll frame maps to time.

    Exactly one of ``fs`` (frames per second; the paper used 20) and
    ``steps_per_beat`` (a grid that follows the song's tempo map, and a DAW's
    tempo when played) is set.
    """

    fs: float | None = 20.0
    steps_per_beat: int | None = None

    def __post_init__(self) -> None:
        if (self.fs is None) == (self.steps_per_beat is None):
            raise ConfigError("frame timing needs exactly one of fs and steps_per_beat")
        if self.fs is not None and not (self.fs > 0 and math.isfinite(self.fs)):
            raise ConfigError(f"fs must be a positive number of frames per second, not {self.fs}")
        if self.steps_per_beat is not None and self.steps_per_beat < 1:
            raise ConfigError(f"steps_per_beat must be at least 1, not {self.steps_per_beat}")

    @property
    def beat_based(self) -> bool:
        return self.steps_per_beat is not None

    def frame_seconds(self, bpm: float = DEFAULT_BPM) -> float:
        """Seconds per frame; ``bpm`` matters only for a beat-based grid."""
        if self.fs is not None:
            return 1.0 / self.fs
        return 60.0 / (bpm * self.steps_per_beat)

    def describe(self) -> str:
        if self.fs is not None:
            return f"{self.fs:g} frames per second"
        return f"{self.steps_per_beat} steps per beat (follows the tempo)"

    def to_dict(self) -> dict[str, Any]:
        return {"fs": self.fs, "steps_per_beat": self.steps_per_beat}

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> "FrameTiming":
        return cls(fs=d.get("fs"), steps_per_beat=d.get("steps_per_beat"))


@dataclass(frozen=True)
class DataConfig:
    fs: float | None = 20.0  # frames per second, or None for a beat grid
    steps_per_beat: int | None = None  # grid steps per beat, following the tempo map
    pitch_range: tuple[int, int] | None = None  # inclusive MIDI range; None: pitches the songs use
    window: int = 50  # time steps per training sequence
    hop: int = 50  # steps between window starts (window // 2 gives the paper's 50% overlap)
    max_windows_per_song: int | None = None  # the paper took the first 520 of each song
    val_fraction: float = 0.1  # share of songs (never of windows) held out for validation

    def __post_init__(self) -> None:
        self.timing  # validates fs / steps_per_beat
        if self.window < 2:
            raise ConfigError(f"window must be at least 2 steps, not {self.window}")
        if self.hop < 1:
            raise ConfigError(f"hop must be at least 1 step, not {self.hop}")
        if self.max_windows_per_song is not None and self.max_windows_per_song < 1:
            raise ConfigError("max_windows_per_song must be at least 1")
        if not 0.0 <= self.val_fraction < 1.0:
            raise ConfigError(f"val_fraction must be in [0, 1), not {self.val_fraction}")
        if self.pitch_range is not None:
            lo, hi = self.pitch_range
            if not 0 <= lo <= hi <= 127:
                raise ConfigError(f"pitch range {lo}-{hi} must satisfy 0 <= LO <= HI <= 127")

    @property
    def timing(self) -> FrameTiming:
        return FrameTiming(fs=self.fs, steps_per_beat=self.steps_per_beat)


MODELS = ("vrae", "vrnn", "rnn")


@dataclass(frozen=True)
class ModelConfig:
    # vrae: Fabius & van Amersfoort (2014); vrnn: Chung et al. (2015), a latent at every step;
    # rnn: the same recurrence with no latent, a baseline (docs/models.md)
    model: str = "vrae"
    cell: str = "rnn"  # rnn is the paper's tanh RNN; gru and lstm are options
    hidden: int = 500
    latent: int = 2  # the VRAE's code size; the VRNN's per-step z_t size; unused by rnn
    # VRAE only:
    reverse_input: bool = True  # the encoder reads each window backwards (the paper's section 4)
    mu_batchnorm: float = 0.7  # > 0: batch-normalise mu to this scale in training (BN-VAE); 0: off
    z_every_step: bool = False  # feed z to the decoder at every step, not only into h_0 (the paper)
    # VRNN only:
    features: int = 100  # width of phi_x, phi_z and of the prior, posterior and generation networks

    def __post_init__(self) -> None:
        if self.model not in MODELS:
            raise ConfigError(f"unknown model {self.model!r}; known: {', '.join(MODELS)}")
        if self.cell not in ("rnn", "gru", "lstm"):
            raise ConfigError(f"unknown cell {self.cell!r}; known: rnn, gru, lstm")
        if self.hidden < 1 or self.latent < 1:
            raise ConfigError("hidden and latent must be at least 1")
        if not isinstance(self.features, int) or self.features < 1:
            raise ConfigError(f"features (the VRNN's feature width) must be a whole number at least 1, not {self.features!r}")


@dataclass(frozen=True)
class TrainConfig:
    epochs: int = 20
    batch_size: int = 100
    lr: float = 1e-3
    lr_final: float = 1e-4  # the learning rate decays exponentially to this by the last epoch
    beta1: float = 0.95  # the paper's "beta1 = 0.05" in the first Adam preprint's notation
    beta2: float = 0.999  # the paper's "beta2 = 0.001"
    clip_grad_norm: float = 5.0
    kl_warmup_epochs: float = 2.0  # KL weight rises linearly from 0 to 1 over these epochs
    free_bits: float = 0.25  # nats per latent unit under which KL is not pushed down further
    input_dropout: float = 0.0  # share of teacher-forced decoder inputs blanked, so z must carry the music
    seed: int = 0
    device: str = "auto"  # auto | cpu | cuda

    def __post_init__(self) -> None:
        if self.epochs < 1 or self.batch_size < 1:
            raise ConfigError("epochs and batch_size must be at least 1")
        if not (self.lr > 0 and self.lr_final > 0):
            raise ConfigError("lr and lr_final must be positive")
        if self.kl_warmup_epochs < 0 or self.free_bits < 0:
            raise ConfigError("kl_warmup_epochs and free_bits must not be negative")
        if not 0.0 <= self.input_dropout < 1.0:
            raise ConfigError(f"input_dropout must be in [0, 1), not {self.input_dropout}")
        if self.device not in ("auto", "cpu", "cuda") and not self.device.startswith("cuda:"):
            raise ConfigError(f"unknown device {self.device!r}; known: auto, cpu, cuda")


@dataclass(frozen=True)
class Config:
    data: DataConfig = field(default_factory=DataConfig)
    model: ModelConfig = field(default_factory=ModelConfig)
    train: TrainConfig = field(default_factory=TrainConfig)

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> "Config":
        return build_config(d)


SECTIONS = {"data": DataConfig, "model": ModelConfig, "train": TrainConfig}


def _field_names(cls) -> list[str]:
    return [f.name for f in dataclasses.fields(cls)]


def _coerce(section: str, key: str, value: Any) -> Any:
    if key == "pitch_range" and value is not None:
        return parse_pitch_range(value)
    return value


def parse_pitch_range(value: Any) -> tuple[int, int]:
    """``"36-84"`` or ``[36, 84]`` to ``(36, 84)``."""
    if isinstance(value, str):
        parts = value.replace(":", "-").split("-")
        try:
            lo, hi = (int(p) for p in parts)
        except ValueError:
            raise ConfigError(f"pitch range {value!r} is not of the form LO-HI, e.g. 36-84") from None
    else:
        try:
            lo, hi = (int(v) for v in value)
        except (TypeError, ValueError):
            raise ConfigError(f"pitch range {value!r} is not a pair LO, HI") from None
    if not 0 <= lo <= hi <= 127:
        raise ConfigError(f"pitch range {lo}-{hi} must satisfy 0 <= LO <= HI <= 127")
    return (lo, hi)


def build_config(sections: Mapping[str, Any]) -> Config:
    """A Config from nested dicts ``{"data": {...}, ...}``; unknown names are errors."""
    unknown = set(sections) - set(SECTIONS)
    if unknown:
        raise ConfigError(f"unknown section(s) {sorted(unknown)}; known: {sorted(SECTIONS)}")
    parts = {}
    for name, cls in SECTIONS.items():
        values = dict(sections.get(name) or {})
        known = _field_names(cls)
        bad = set(values) - set(known)
        if bad:
            raise ConfigError(f"unknown [{name}] setting(s) {sorted(bad)}; known: {', '.join(known)}")
        values = {k: _coerce(name, k, v) for k, v in values.items()}
        try:
            parts[name] = cls(**values)
        except TypeError as err:
            raise ConfigError(f"[{name}]: {err}") from err
    return Config(**parts)


DEFAULT_PRESET = "live-2d"  # what `vrae-live train` uses without --preset


def default_checkpoint() -> Path:
    """The shipped model: inside an installed wheel, or the repository's checkpoints/default."""
    packaged = Path(__file__).parent / "_checkpoints" / "default"
    if packaged.is_dir():
        return packaged
    return Path(__file__).resolve().parent.parent / "checkpoints" / "default"


def presets_dir() -> Path:
    """Where the model presets live: inside an installed wheel, or the repository's presets/."""
    packaged = Path(__file__).parent / "_presets"
    if packaged.is_dir():
        return packaged
    return Path(__file__).resolve().parent.parent / "presets"


def list_presets() -> list[str]:
    return sorted(p.stem for p in presets_dir().glob("*.toml"))


def resolve_preset(name_or_path: str) -> Path:
    path = Path(name_or_path)
    if path.suffix == ".toml" and path.is_file():
        return path
    candidate = presets_dir() / f"{name_or_path}.toml"
    if candidate.is_file():
        return candidate
    raise ConfigError(f"no preset {name_or_path!r}; known: {', '.join(list_presets()) or 'none'}, or a path to a .toml file")


def read_toml(path: Path) -> dict[str, Any]:
    try:
        with open(path, "rb") as f:
            return tomllib.load(f)
    except tomllib.TOMLDecodeError as err:
        raise ConfigError(f"{path}: not valid TOML: {err}") from err


def load_config(preset: str | None = None, overrides: Mapping[str, Any] | None = None) -> Config:
    """Defaults, then the preset, then flat ``overrides`` (None values are ignored).

    Override keys are setting names without their section (``hidden``, ``fs``,
    ``epochs``); setting ``fs`` clears ``steps_per_beat`` and the other way round.
    """
    sections: dict[str, dict[str, Any]] = {name: {} for name in SECTIONS}
    owner = {key: name for name, cls in SECTIONS.items() for key in _field_names(cls)}

    def set_value(key: str, value: Any, where: str) -> None:
        if key not in owner:
            raise ConfigError(f"{where}: unknown setting {key!r}")
        sections[owner[key]][key] = value
        if key == "fs":
            sections["data"]["steps_per_beat"] = None
        elif key == "steps_per_beat":
            sections["data"]["fs"] = None

    if preset is not None:
        for name, values in read_toml(resolve_preset(preset)).items():
            if name not in SECTIONS or not isinstance(values, dict):
                raise ConfigError(f"preset {preset}: unknown section [{name}]; known: {sorted(SECTIONS)}")
            bad = set(values) - set(_field_names(SECTIONS[name]))
            if bad:
                known = ", ".join(_field_names(SECTIONS[name]))
                raise ConfigError(f"preset {preset}: unknown [{name}] setting(s) {sorted(bad)}; known: {known}")
            for key, value in values.items():
                set_value(key, value, f"preset {preset}")
    for key, value in (overrides or {}).items():
        if value is not None:
            set_value(key, value, "command line")
    return build_config(sections)


def with_changes(config: Config, **sections: Mapping[str, Any]) -> Config:
    """A copy of ``config`` with some settings of some sections replaced."""
    d = config.to_dict()
    for name, values in sections.items():
        d[name].update(values)
    return build_config(d)
