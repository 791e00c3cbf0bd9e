"""Options more than one command has, each defined once: its type, range, default and help.

click checks every value against its type before the command runs, so a bad value stops
the command before anything opens (a checkpoint, a file, a port), in one line such as
``Error: Invalid value for '--bpm': 0.0 is not in the range 20<=x<=400.``
"""

from __future__ import annotations

import math
import os
from pathlib import Path

import click

from ..errors import ConfigError
from ..play.key import DEFAULT_KEY_STRENGTH, SCALE_ALIASES, SCALES, parse_key, parse_scale


class FiniteRange(click.FloatRange):
    """click's FloatRange that also refuses nan and inf (nan compares as in any range)."""

    def convert(self, value, param, ctx) -> float:
        number = super().convert(value, param, ctx)
        if not math.isfinite(number):
            self.fail(f"{number} is not a finite number.", param, ctx)
        return number


class KeyName(click.ParamType):
    """A key: a note name (C, F#, Bb) or a pitch class 0..11."""

    name = "key"

    def convert(self, value, param, ctx) -> int:
        if isinstance(value, int):
            return value
        try:
            return parse_key(value)
        except ConfigError as err:
            self.fail(f"{err}.", param, ctx)


MIN_BPM, MAX_BPM = 20, 400  # beyond these a beat-based model plays frames too long or too short to be music
SEEDS = click.IntRange(0, 2**32 - 1)  # what every generator we seed (torch, numpy) accepts
DEVICES = click.Choice(["auto", "cpu", "cuda"])


class OutputFile(click.Path):
    """A file to write: its folder must exist and be writable, checked before any work is done."""

    def __init__(self) -> None:
        super().__init__(dir_okay=False, writable=True, path_type=Path)

    def convert(self, value, param, ctx) -> Path:
        path = super().convert(value, param, ctx)
        folder = path.parent
        if not folder.is_dir():
            self.fail(f"the folder {folder} does not exist.", param, ctx)
        if not os.access(folder, os.W_OK):
            self.fail(f"the folder {folder} is not writable.", param, ctx)
        return path


def seed_option(default: int | None = 0, help: str = "Seeds every random choice."):
    return click.option("--seed", type=SEEDS, default=default, show_default=default is not None, help=help)


def workers_option(command):
    """--workers: processes that parse MIDI files (the commands that read a song folder)."""
    return click.option("--workers", type=click.IntRange(min=1), default=None,
                        help="Processes that parse MIDI files [default: the cores]; 1 parses in this one. "
                             "A few songs are parsed in one process whatever this says.")(command)


def device_option(default: str | None):
    return click.option("--device", type=DEVICES, default=default, show_default=default is not None,
                        help="Where the model runs; auto takes CUDA when present.")


def _options(*options):
    """One decorator that adds ``options``, listed in --help in the order given."""

    def add(command):
        for option in reversed(options):
            command = option(command)
        return command

    return add


# Playing in key (play/key.py): serve, generate, interpolate, and info's --quality takes.
_KEY = (
    click.option("--key", type=KeyName(), help="Play in this key (C, F#, Bb, ...) [default: as the model plays]."),
    click.option("--scale", type=click.Choice([*SCALES, *SCALE_ALIASES], case_sensitive=False), default="major",
                 show_default=True, callback=lambda ctx, param, value: parse_scale(value),
                 help="The key's scale."),
    click.option("--key-strength", type=FiniteRange(0, 1), default=DEFAULT_KEY_STRENGTH, show_default=True,
                 help="How hard notes lean to the key: 0 plays the model as it is, 1 only the scale's notes."),
)
key_options = _options(*_KEY)

# The performance settings of serve, generate and interpolate: an offline take sounds like a live one.
_PERFORMANCE = (
    seed_option(help="Seeds the sampling of notes (and generate's random z)."),
    click.option("--bpm", type=FiniteRange(MIN_BPM, MAX_BPM), default=120.0, show_default=True,
                 help="Tempo of a beat-based model, and of a written file."),
    click.option("--hop", type=click.IntRange(min=1),
                 help="Frames per decoded hop, at most the model's window [default: the model's, or half a window]."),
    click.option("--on-threshold", type=FiniteRange(0, 1, min_open=True), default=0.5, show_default=True,
                 help="A silent pitch starts when its probability reaches this."),
    click.option("--off-threshold", type=FiniteRange(0, 1, max_open=True), default=0.35, show_default=True,
                 help="A sounding pitch stops when its probability falls below this; below --on-threshold."),
    click.option("--polyphony", type=click.IntRange(1, 128),
                 help="Most notes sounding at once; a new note takes a held one's voice [default: as many as the "
                      "model's songs keep to, `info` says; 8 for a model that does not say]."),
    click.option("--min-len", type=click.IntRange(min=1), default=1, show_default=True,
                 help="Frames a note sounds at least."),
    click.option("--max-len", type=click.IntRange(min=1),
                 help="Frames after which a note is released, at least --min-len [default: no limit]."),
    *_KEY,
)

live_options = _options(
    *_PERFORMANCE,
    click.option("--glide", type=FiniteRange(min=0), default=0.25, show_default=True,
                 help="Seconds for a pad jump to be 63 % done (0: jump at once)."),
    device_option("auto"),
)
"""serve's performance options."""

take_options = _options(
    *_PERFORMANCE,
    click.option("--density", type=FiniteRange(0, 1), default=0.5, show_default=True,
                 help="0..1; 0.5 plays the model as it is."),
    click.option("--temperature", type=FiniteRange(min=0), default=1.0, show_default=True,
                 help="0 thresholds the probabilities; 1 samples them."),
    device_option("cpu"),
)
"""The same for an offline take (generate, interpolate), which also has --density and --temperature."""


def note_settings(on_threshold: float, off_threshold: float, polyphony: int | None, min_len: int, max_len: int | None):
    """The note options as NoteSettings; a check between two options fails as click's error naming one."""
    if off_threshold >= on_threshold:
        raise click.BadParameter(f"{off_threshold} must be below --on-threshold ({on_threshold}).",
                                 param_hint="'--off-threshold'")
    if max_len is not None and max_len < min_len:
        raise click.BadParameter(f"{max_len} must be at least --min-len ({min_len}).", param_hint="'--max-len'")
    from ..play.notes import SONGS, NoteSettings

    return NoteSettings(on_threshold=on_threshold, off_threshold=off_threshold, min_len=min_len,
                        max_len=max_len, polyphony=SONGS if polyphony is None else polyphony)
