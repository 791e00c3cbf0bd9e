"""What a window of music is like, in numbers a musician can name: the pad's axes.

A model trained with ``--pad-axes A,B`` (the default: ``onsets,register``) is taught that its
first latent unit rises with attribute A of the window it encodes and its second with B
(``training/axes.py``, after AR-VAE, Pati & Lerch 2021), so the pad's x and y mean them.
``info --steering`` plays points along each axis and measures the same attributes of what was
played. Every attribute is a number per window, NaN where the window has nothing to measure
(no note sounding, no note started); only its order between windows matters.

The attributes (``ATTRIBUTES``):

- ``onsets``: notes started per beat (per second for a model whose frames are seconds);
- ``register``: the mean MIDI pitch of the sounding notes, each frame it sounds;
- ``range``: semitones from the lowest pitch sounding in the window to the highest;
- ``polyphony``: notes sounding at once, over the frames where any sounds;
- ``syncopation``: the share of notes started off the beat (a model of the meter: its frames
  say where the beat is);
- ``pitch-classes``: how evenly the sounding notes spread over the 12 pitch classes, as the
  histogram's entropy in bits (0: one pitch class; 3.58: all twelve alike).

Torch, batched ``(B, T, ...)``: the trainer measures every batch as it comes.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import torch

from ..config import PAD_ATTRIBUTES
from ..errors import ConfigError


@dataclass(frozen=True)
class Attribute:
    name: str
    low: str  # what the pad's low end plays, in a word: "sparser"
    high: str  # and its high end: "busier"
    unit: str  # what a value of it counts, after the number: "notes started a beat"
    digits: int = 1  # decimals worth showing


ATTRIBUTES = {a.name: a for a in (
    Attribute("onsets", "sparser", "busier", "notes started a beat"),
    Attribute("register", "lower", "higher", "(mean MIDI pitch)", 0),
    Attribute("range", "narrower", "wider", "semitones", 0),
    Attribute("polyphony", "thinner", "fuller", "notes at once"),
    Attribute("syncopation", "on the beat", "off the beat", "of the notes off the beat", 2),
    Attribute("pitch-classes", "fewer keys", "more keys", "bits of pitch-class spread"),
)}
assert tuple(ATTRIBUTES) == PAD_ATTRIBUTES  # the names config.py checks --pad-axes against


def axis_words(name: str) -> str:
    """How an axis reads on the pad: "sparser → busier"."""
    a = ATTRIBUTES[name]
    return f"{a.low} → {a.high}"


def amounts(name: str, values: Sequence[float], per_beat: bool = True) -> str:
    """Values of attribute ``name`` with its unit: "1.9 → 3.6 notes started a beat" (a second, for a
    model of seconds)."""
    a = ATTRIBUTES[name]
    unit = a.unit if per_beat else a.unit.replace("a beat", "a second")
    return f"{' → '.join(f'{v:.{a.digits}f}' for v in values)} {unit}"


def axis_title(name: str) -> str:
    """An axis with its attribute, for ``info`` and a map's axes: "sparser → busier (onsets)"."""
    return f"{axis_words(name)} ({name})"


def pad_labels(names: Sequence[str]) -> dict[str, dict[str, str]] | None:
    """What the pad's edges play, for the web page: ``{"x": {"name", "low", "high"}, "y": ...}``; None without names."""
    if len(names) != 2:
        return None
    return {axis: {"name": n, "low": ATTRIBUTES[n].low, "high": ATTRIBUTES[n].high} for axis, n in zip("xy", names)}


def attributes(sound: torch.Tensor, struck: torch.Tensor, pitches: Sequence[int], names: Sequence[str],
               steps_per_unit: float, step_in_beat: torch.Tensor | None = None) -> torch.Tensor:
    """The attributes ``names`` of windows ``(B, A)``, NaN where a window has nothing to measure.

    sound, struck: ``(B, T, P)`` what sounds and where notes start, on the columns ``pitches``.
    steps_per_unit: frames per beat (per second for a model whose frames are seconds).
    step_in_beat: ``(B, T)`` each frame's step within its beat (0 on the beat); needed for syncopation.
    """
    sound, struck = sound > 0.5, struck > 0.5
    midi = torch.as_tensor(list(pitches), dtype=torch.float32, device=sound.device)
    frames = sound.float()
    notes = frames.sum(2)  # (B, T) sounding at once
    heard = notes.sum(1)  # (B,) note-frames
    nan = torch.full_like(heard, float("nan"))
    out = []
    for name in names:
        if name == "onsets":
            value = _onsets(struck.float(), sound.shape[1], steps_per_unit)
        elif name == "register":
            value = torch.where(heard > 0, _register(frames, midi), nan)
        elif name == "range":
            any_frame = sound.any(1)  # (B, P)
            top = torch.where(any_frame, midi, -torch.inf).amax(1)
            bottom = torch.where(any_frame, midi, torch.inf).amin(1)
            value = torch.where(any_frame.any(1), top - bottom, nan)
        elif name == "polyphony":
            busy = (notes > 0).float().sum(1)
            value = torch.where(busy > 0, heard / busy.clamp(min=1), nan)
        elif name == "syncopation":
            if step_in_beat is None:
                raise ConfigError("syncopation needs a model of the meter (--meter): its frames say where the beat is")
            started = struck.float().sum(2)  # (B, T)
            total = started.sum(1)
            off = (started * (step_in_beat != 0).float()).sum(1)
            value = torch.where(total > 0, off / total.clamp(min=1), nan)
        elif name == "pitch-classes":
            classes = torch.zeros(len(pitches), 12, device=sound.device)
            classes[torch.arange(len(pitches)), (midi.long() % 12)] = 1.0
            histogram = frames.sum(1) @ classes  # (B, 12)
            share = histogram / histogram.sum(1, keepdim=True).clamp(min=1)
            bits = -(share * torch.log2(share.clamp(min=1e-12))).sum(1)
            value = torch.where(heard > 0, bits, nan)
        else:
            raise ConfigError(f"no attribute {name!r}; known: {', '.join(ATTRIBUTES)}")
        out.append(value)
    return torch.stack(out, 1)


SOFT = ("onsets", "register")  # the attributes soft_attributes measures


def _onsets(struck: torch.Tensor, frames: int, steps_per_unit: float) -> torch.Tensor:
    """Notes started per beat of ``struck (B, T, P)`` (0/1, or the chances of a start) in a window of ``frames``."""
    return struck.sum((1, 2)) / frames * steps_per_unit


def _register(sound: torch.Tensor, midi: torch.Tensor) -> torch.Tensor:
    """The mean pitch of ``sound (B, T, P)`` (0/1, or the chances of sounding), each note-frame counted."""
    return (sound * midi).sum((1, 2)) / sound.sum((1, 2)).clamp(min=1e-3)


def soft_attributes(probs: torch.Tensor, pitches: Sequence[int], names: Sequence[str], onsets: bool,
                    steps_per_unit: float) -> torch.Tensor:
    """The expected attributes ``names`` (onsets, register) of decoded probabilities ``(B, T, C)``,
    differentiable: notes started per beat (the onsets' chances, or the chances of sounding that
    rise for a binary roll), and the mean pitch weighted by the chances of sounding."""
    p = len(pitches)
    sound = probs[..., :p]
    struck = probs[..., p:2 * p] if onsets else torch.relu(sound[:, 1:] - sound[:, :-1])
    midi = torch.as_tensor(list(pitches), dtype=probs.dtype, device=probs.device)
    out = []
    for name in names:
        if name == "onsets":
            out.append(_onsets(struck, sound.shape[1], steps_per_unit))
        elif name == "register":
            out.append(_register(sound, midi))
        else:
            raise ConfigError(f"no expected {name!r} of probabilities; known: {', '.join(SOFT)}")
    return torch.stack(out, 1)


def starts_of(sound: torch.Tensor) -> torch.Tensor:
    """Where notes start in a binary roll ``(B, T, P)`` with no onsets: a frame sounding after one
    silent (the first frame's notes may have started before the window, and do not count)."""
    sound = sound > 0.5
    struck = torch.zeros_like(sound)
    struck[:, 1:] = sound[:, 1:] & ~sound[:, :-1]
    return struck


def window_attributes(windows: torch.Tensor, pitches: Sequence[int], names: Sequence[str], onsets: bool,
                      steps_per_unit: float, steps_per_beat: int | None) -> torch.Tensor:
    """:func:`attributes` of training windows ``(B, T, C)`` as a model is fed them: the sounding
    columns, then the onsets (a model of onsets), then the next step's meter (a model of the meter)."""
    p = len(pitches)
    sound = windows[..., :p]
    struck = windows[..., p:2 * p] if onsets else starts_of(sound)
    meter_at = 2 * p if onsets else p
    step_in_beat = None
    if steps_per_beat and windows.shape[-1] > meter_at:
        following = windows[..., meter_at:meter_at + steps_per_beat].argmax(-1)  # the next step's, fed with each frame
        step_in_beat = (following - 1) % steps_per_beat
    return attributes(sound, struck, pitches, names, steps_per_unit, step_in_beat)
