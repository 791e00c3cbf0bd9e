"""Settings: frozen dataclasses checked by pydantic, TOML presets, command-line overrides.

A setting comes from, in rising order: the defaults below, a preset
(``presets/NAME.toml`` or any TOML file), then the command line. A preset has
the sections ``[data]``, ``[model]`` and ``[train]``.

Every value is checked by pydantic, strictly: ``"500"`` and ``64.5`` are not
integers (``20`` is a number, though, for ``fs = 20``), and an unknown section or
key is an error that lists the known ones, so a typo never passes silently.
Whatever is wrong is one ConfigError line that names the file and the field, e.g.
``presets/x.toml: [model] hidden: expected an integer, got the string '500'``.
"""

from __future__ import annotations

import dataclasses
import functools
import re
from dataclasses import field
from pathlib import Path
from typing import Annotated, Any, Literal, Mapping, Optional, Sequence, get_args

from annotated_types import Ge, Gt, Le, Lt
from pydantic import (
    AfterValidator,
    BeforeValidator,
    ConfigDict,
    Strict,
    TypeAdapter,
    ValidationError,
    field_validator,
    model_validator,
)
from pydantic.dataclasses import dataclass

try:
    import tomllib
except ModuleNotFoundError:  # Python 3.10
    import tomli as tomllib

from .errors import ConfigError
from .validation import error_message

DEFAULT_BPM = 120.0

# Strict scalars: no "500" for 500, no 64.5 or true for an integer; an integer is a number.
Int = Annotated[int, Strict()]
Float = Annotated[float, Strict()]
Bool = Annotated[bool, Strict()]
Str = Annotated[str, Strict()]


def _pitch_pair(value: Any) -> Any:
    """``"36-84"`` or ``[36, 84]`` to ``(36, 84)``; anything else is left to the type check."""
    if isinstance(value, str):
        parts = value.replace(":", "-").split("-")
        if len(parts) != 2 or not all(p.strip().isdigit() for p in parts):
            raise ValueError(f"{value!r} is not of the form LO-HI, e.g. 36-84")
        return tuple(int(p) for p in parts)
    if isinstance(value, list):
        return tuple(value)
    return value


def _pitch_order(pair: tuple[int, int]) -> tuple[int, int]:
    lo, hi = pair
    if not 0 <= lo <= hi <= 127:
        raise ValueError(f"{lo}-{hi} must satisfy 0 <= LO <= HI <= 127")
    return pair


PitchPair = Annotated[tuple[Int, Int], BeforeValidator(_pitch_pair), AfterValidator(_pitch_order)]

# What the pad's axes may follow (data/attributes.py says what each measures); "songs": none, the
# plane of the songs' codes.
PadAttribute = Literal["onsets", "register", "range", "polyphony", "syncopation", "pitch-classes"]
PAD_ATTRIBUTES = get_args(PadAttribute)
SONGS_PLANE = "songs"


def _pad_axes(value: Any) -> Any:
    """``"onsets,register"`` or ``["onsets", "register"]`` to a pair; ``"songs"`` (or nothing) to ``()``."""
    names = [n.strip() for n in value.split(",")] if isinstance(value, str) else value
    if not isinstance(names, (list, tuple)):
        return value
    if list(names) in ([], [SONGS_PLANE]):
        return ()
    if len(names) != 2 or names[0] == names[1] or any(n not in PAD_ATTRIBUTES for n in names):
        raise ValueError(f"{','.join(map(str, names))!r}: two different attributes, x then y, from "
                         f"{', '.join(PAD_ATTRIBUTES)}; or {SONGS_PLANE!r} for the plane of the songs' codes")
    return tuple(names)


PadAxes = Annotated[tuple[Str, ...], BeforeValidator(_pad_axes)]

SETTINGS = ConfigDict(extra="forbid", allow_inf_nan=False)


def _settings(cls):
    """A frozen pydantic dataclass whose constructor raises ConfigError, not ValidationError."""
    cls = dataclass(frozen=True, config=SETTINGS)(cls)
    validate = cls.__init__

    @functools.wraps(validate)
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        try:
            validate(self, *args, **kwargs)
        except ValidationError as err:
            raise ConfigError(error_message(err, style="json", known=KNOWN_NAMES, sections=SECTIONS)) from None

    cls.__init__ = __init__
    return cls


MAX_BAR_BEATS = 8  # beats of a bar a model of the meter tells apart (data/meter.py): 4/2 has 8


@dataclass(frozen=True, config=SETTINGS)
class _FrameGrid:
    """Frame timing's two settings, exactly one of them set: ``fs`` (frames per second; the paper
    used 20) or ``steps_per_beat`` (a grid that follows the song's tempo map, and a DAW's tempo
    when played). FrameTiming is the pair alone; DataConfig begins with it, and a checkpoint's
    config.json stores it there, once."""

    fs: Optional[Annotated[Float, Gt(0)]] = 20.0  # frames per second, or None for a beat grid
    steps_per_beat: Optional[Annotated[Int, Ge(1)]] = None  # grid steps per beat, following the tempo map

    @model_validator(mode="after")
    def _one_grid(self):
        if (self.fs is None) == (self.steps_per_beat is None):
            raise ValueError("frame timing needs exactly one of fs and steps_per_beat")
        return self


@_settings
class FrameTiming(_FrameGrid):
    """How one piano-roll frame maps to time: seconds (``fs``) or beats (``steps_per_beat``)."""

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


@_settings
class DataConfig(_FrameGrid):
    # first fs and steps_per_beat, the frame timing (_FrameGrid)
    pitch_range: Optional[PitchPair] = None  # inclusive MIDI range; None: pitches the songs use
    window: Annotated[Int, Ge(2)] = 50  # time steps per training sequence
    hop: Annotated[Int, Ge(1)] = 50  # steps between window starts (window // 2 gives the paper's 50% overlap)
    max_windows_per_song: Optional[Annotated[Int, Ge(1)]] = None  # the paper took the first 520 of each song
    val_fraction: Annotated[Float, Ge(0), Lt(1)] = 0.1  # share of songs (never of windows) held out for validation
    # a frame also says where notes start: an onset column per pitch after the P sounding ones, so a
    # note struck again is told from one held (off: the paper's binary roll)
    onsets: Bool = False
    # with a beat grid: each frame fed to the model also says where the next step falls in the beat and
    # the bar (data/meter.py), from the songs' time signatures, and live from the clock (frames in
    # seconds have no beat: no meter; fed_meter)
    meter: Bool = False

    @property
    def timing(self) -> FrameTiming:
        return FrameTiming(fs=self.fs, steps_per_beat=self.steps_per_beat)

    def columns(self, pitches: int) -> int:
        """Columns of a model frame: a pitch each, and an onset each with ``onsets``."""
        return pitches * (2 if self.onsets else 1)

    @property
    def fed_meter(self) -> bool:
        """Whether the model is fed the meter: ``meter``, on a beat grid."""
        return self.meter and self.steps_per_beat is not None

    def inputs(self, pitches: int) -> int:
        """Columns of what a model is fed each step: a frame, and the next step's meter with ``fed_meter``."""
        return self.columns(pitches) + (self.steps_per_beat + MAX_BAR_BEATS if self.fed_meter else 0)


ModelKind = Literal["vrae", "vrnn", "rnn"]
MODELS = get_args(ModelKind)


@_settings
class ModelConfig:
    # vrae: Fabius & van Amersfoort (2014); vrnn: Chung et al. (2015), a latent at every step;
    # rnn: the same recurrence with no latent, a baseline (docs/models.md)
    model: ModelKind = "vrae"
    cell: Literal["rnn", "gru", "lstm"] = "rnn"  # rnn is the paper's tanh RNN; gru and lstm are options
    hidden: Annotated[Int, Ge(1)] = 500
    latent: Annotated[Int, Ge(1)] = 2  # the VRAE's code size; the VRNN's per-step z_t size; unused by rnn
    # VRAE only:
    reverse_input: Bool = True  # the encoder reads each window backwards (the paper's section 4)
    mu_batchnorm: Annotated[Float, Ge(0)] = 0.7  # > 0: batch-normalise mu to this scale in training (BN-VAE); 0: off
    mu_whiten: Bool = False  # with mu_batchnorm: whiten mu (decorrelate the units too), models/whitening.py
    z_every_step: Bool = False  # feed z to the decoder at every step, not only into h_0 (the paper)
    # > 0: weight of a loss that predicts the window's notes from z alone (models/vrae.py)
    bag_of_notes: Annotated[Float, Ge(0)] = 0.0
    # VRAE only: the latent units the pad's x and y move, each taught to rise with an attribute of the
    # window (training/axes.py); () keeps the plane of the songs' codes (the paper's presets)
    pad_axes: PadAxes = ()
    # VRAE only: > 1: the notes of a frame are drawn together, from one of this many frames the decoder
    # offers (a mixture of products of Bernoullis, models/mixture.py); 1: each column on its own (the paper)
    components: Annotated[Int, Ge(1)] = 1
    # VRAE only, with components > 1: > 0: the K frames' logits are read from this many numbers of the
    # decoder's state, not from the whole state (a cheaper output layer, models/mixture.py); 0: the whole state
    mixture_rank: Annotated[Int, Ge(0)] = 0
    # VRAE only: the decoder is told each window's key (a key signature, models/keys.py) beside its code, and
    # live the key to play in (serve --key, or its songs' most common key), so the code need not carry it
    key_input: Bool = False
    # VRAE only: the decoder's output reads the code beside its state at every step (a generative skip,
    # Dieng et al. 2019), so what is played depends on z directly, not only through the recurrence
    z_skip: Bool = False
    # VRAE only: each column of the frame before moves its own column's chance by a gate the decoder's state sets,
    # the same for every pitch (models/vrae.py), so whether a sounding note goes on is learnt once for all pitches
    hold_gate: Bool = False
    # VRNN only:
    features: Annotated[Int, Ge(1)] = 100  # width of phi_x, phi_z and of the prior, posterior and generation networks


Schedule = Literal["plateau", "exponential"]

# Settings older checkpoints carry that no longer shape training; read and dropped.
RETIRED_TRAIN_SETTINGS = ("min_steps", "kl_warmup_epochs")


@_settings
class TrainConfig:
    # plateau: lr held while the validation bound improves, lowered on a plateau down to lr_final, then
    # the run stops (training/schedule.py); exponential: lr falls to lr_final over a fixed run of epochs
    schedule: Schedule = "plateau"
    epochs: Annotated[Int, Ge(1)] = 20  # the most; unless --epochs is given, fitted to max_steps (training/length.py)
    max_steps: Annotated[Int, Ge(1)] = 6000  # the step budget: epochs are fitted to it unless --epochs is given
    patience: Annotated[Int, Ge(1)] = 200  # plateau: steps without a better validation bound before lr drops (or the run stops)
    batch_size: Annotated[Int, Ge(1)] = 100
    lr: Annotated[Float, Gt(0)] = 1e-3
    lr_final: Annotated[Float, Gt(0)] = 1e-4  # plateau: the lowest rate; exponential: the rate of the last step
    beta1: Annotated[Float, Ge(0), Lt(1)] = 0.95  # the paper's "beta1 = 0.05" in the first Adam preprint's notation
    beta2: Annotated[Float, Ge(0), Lt(1)] = 0.999  # the paper's "beta2 = 0.001"
    clip_grad_norm: Annotated[Float, Gt(0)] = 5.0
    kl_anneal_steps: Annotated[Int, Ge(0)] = 500  # KL weight rises linearly from 0 to 1 over these first steps
    kl_cycles: Annotated[Int, Ge(0)] = 0  # > 0: cyclical KL annealing: the anneal steps in this many cycles
    free_bits: Annotated[Float, Ge(0)] = 0.25  # nats per latent unit under which KL is not pushed down further
    # > 0: steps of the encoder alone before each step, early in the run (training/aggressive.py)
    encoder_steps: Annotated[Int, Ge(0)] = 0
    # share of teacher-forced decoder inputs blanked, so z must carry the music
    input_dropout: Annotated[Float, Ge(0), Lt(1)] = 0.0
    # share of the frames fed back as the decoder itself drew them (a VRAE only; models/vrae.py, _own_frames)
    own_frames: Annotated[Float, Ge(0), Lt(1)] = 0.0
    transpose: Annotated[Int, Ge(0), Le(12)] = 0  # > 0: each training window moved by up to this many semitones either way
    weight_decay: Annotated[Float, Ge(0)] = 0.0  # decoupled weight decay (AdamW), per unit of learning rate
    axes_weight: Annotated[Float, Ge(0)] = 0.25  # with pad_axes: the weight of the axes' loss (AR-VAE's gamma), per step
    axes_sharpness: Annotated[Float, Gt(0)] = 10.0  # with pad_axes: AR-VAE's delta, how steeply tanh compares two codes
    axes_decoder: Annotated[Float, Ge(0)] = 0.0  # with pad_axes: the weight of the decoder's term (training/axes.py), per step
    seed: Annotated[Int, Ge(0), Le(2**32 - 1)] = 0
    device: Str = "auto"  # auto | cpu | cuda | cuda:N
    precision: Literal["fp32", "bf16"] = "fp32"  # of the training step's forward pass (autocast); docs/scale.md

    @model_validator(mode="before")
    @classmethod
    def _drop_retired(cls, values: Any) -> Any:
        if isinstance(values, Mapping) and any(k in values for k in RETIRED_TRAIN_SETTINGS):
            # written before the plateau schedule: that run's rate fell exponentially
            return {"schedule": "exponential", **{k: v for k, v in values.items() if k not in RETIRED_TRAIN_SETTINGS}}
        return values

    @field_validator("device")
    @classmethod
    def _known_device(cls, device: str) -> str:
        if device not in ("auto", "cpu", "cuda") and not re.fullmatch(r"cuda:\d+", device):
            raise ValueError(f"unknown device {device!r}; known: auto, cpu, cuda, cuda:N")
        return device


@_settings
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
_CONFIG = TypeAdapter(Config)
_PITCH_PAIR = TypeAdapter(PitchPair)


def _field_names(cls) -> list[str]:
    return [f.name for f in dataclasses.fields(cls)]


# The names allowed in a preset, listed after an unknown one.
KNOWN_NAMES: dict[tuple[str, ...], Sequence[str]] = {
    (): list(SECTIONS), **{(name,): _field_names(cls) for name, cls in SECTIONS.items()}
}


def parse_pitch_range(value: Any) -> tuple[int, int]:
    """``"36-84"`` or ``[36, 84]`` to ``(36, 84)``."""
    try:
        return _PITCH_PAIR.validate_python(value)
    except ValidationError as err:
        raise ConfigError(f"pitch range: {error_message(err, known=KNOWN_NAMES, sections=SECTIONS)}") from None


def build_config(sections: Any, source: str | None = None) -> Config:
    """A Config from nested dicts ``{"data": {...}, ...}``; unknown names are errors.

    ``source`` (a file, "command line") begins the message of the ConfigError.
    """
    try:
        return _CONFIG.validate_python(sections)
    except ValidationError as err:
        raise ConfigError((f"{source}: " if source else "") + error_message(err, known=KNOWN_NAMES, sections=SECTIONS)) from None


def _merge(config: Config, sections: Any, source: str | None = None) -> Config:
    """``config`` with the settings in ``sections`` replaced, then checked.

    Setting ``fs`` alone clears ``steps_per_beat`` and the other way round.
    """
    if not isinstance(sections, Mapping):
        return build_config(sections, source)  # the type check says what is wrong
    merged: dict[str, Any] = config.to_dict()
    for name, values in sections.items():
        if name in SECTIONS and isinstance(values, Mapping):
            merged[name] = {**merged[name], **values}
            if name == "data" and ("fs" in values) != ("steps_per_beat" in values):
                merged[name]["steps_per_beat" if "fs" in values else "fs"] = None
        else:
            merged[name] = values  # an unknown section, or not a table: the check reports it
    return build_config(merged, source)


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


# Model settings of the VRAE's code and decoder, and their values off.
VRAE_ONLY = {"pad_axes": (), "components": 1, "mixture_rank": 0, "key_input": False, "z_skip": False,
             "hold_gate": False}


def load_config(preset: str | None = None, overrides: Mapping[str, Any] | None = None) -> Config:
    """Defaults, then the preset, then flat ``overrides`` (None values are ignored).

    Override keys are setting names without their section (``hidden``, ``fs``,
    ``epochs``); setting ``fs`` clears ``steps_per_beat`` and the other way round. For a model
    other than the VRAE, a preset's VRAE-only settings (``VRAE_ONLY``) are turned off unless the
    overrides set them (and then the model says they are not its own).
    """
    config = Config()
    if preset is not None:
        path = resolve_preset(preset)
        config = _merge(config, read_toml(path), str(path))
    owner = {key: name for name, cls in SECTIONS.items() for key in _field_names(cls)}
    changes: dict[str, dict[str, Any]] = {}
    for key, value in (overrides or {}).items():
        if value is None:
            continue
        if key not in owner:
            raise ConfigError(f"command line: unknown setting {key!r}")
        changes.setdefault(owner[key], {})[key] = value
    config = _merge(config, changes, "command line") if changes else config
    if config.model.model != "vrae":  # a preset's named axes and mixture are the VRAE's, unless asked for
        dropped = {key: value for key, value in VRAE_ONLY.items()
                   if (overrides or {}).get(key) is None and getattr(config.model, key) != value}
        config = _merge(config, {"model": dropped}) if dropped else config
    return config


def with_changes(config: Config, **sections: Mapping[str, Any]) -> Config:
    """A copy of ``config`` with some settings of some sections replaced."""
    return _merge(config, sections)
