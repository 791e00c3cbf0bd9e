"""Offline takes: the live path (stream, gate, note emitter, MIDI file) on a clock that does not sleep.

``generate`` and ``interpolate`` render through :func:`render_take`, which is ``serve``'s
:class:`~vrae_live.play.performer.Performer` itself, on an
:class:`~vrae_live.play.clock.OfflineClock`: a take of 1000 frames is written as fast as it
decodes and its notes sit exactly on the frame grid. The z of each frame comes from a z path,
set as the controller's z before the frame is decoded (no glide), and the take's frames,
probabilities and z are read from each frame played. What you render is what the pad would
play at the same z, seed and note settings.

Also here: the code of a passage of a song (:func:`passage_code`), the z paths of the two
commands (:func:`fixed_path`, :func:`glide_path`), and parsing ``--z``.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np
import torch

from ..checkpoint import Checkpoint
from ..config import DEFAULT_BPM
from ..data.corpus import Song
from ..data.meter import bar_quarters_of
from ..data.pianoroll import N_MIDI_PITCHES, load_roll, seconds_to_beats
from ..errors import ConfigError, DataError
from ..play.clock import OfflineClock
from ..play.key import DEFAULT_KEY_STRENGTH
from ..play.notes import NoteSettings
from ..play.performer import PerformanceSettings, Performer
from ..play.sink import NullSink
from ..play.smf import MidiFileRecorder
from ..play.state import ControlState

ZPath = Callable[[int], np.ndarray]  # frame index -> the z (L,) that frame is decoded from


@dataclass(frozen=True)
class TakeSettings:
    """The performance knobs of ``serve`` that shape an offline take (same defaults)."""

    bpm: float = DEFAULT_BPM  # tempo of a beat-based model, and of the written file
    density: float = 0.5  # 0..1, 0.5 plays the model as it is
    temperature: float = 1.0  # 0 thresholds the probabilities; 1 samples them (serve's default)
    hop: int | None = None  # frames per decoded hop; None: live_hop's choice
    notes: NoteSettings = NoteSettings()
    seed: int = 0
    key: int | None = None  # the key's pitch class, or None: as the model plays (play/key.py)
    scale: str = "major"
    key_strength: float = DEFAULT_KEY_STRENGTH


@dataclass
class Take:
    """What was played: one row per frame, ``T = steps``."""

    frames: np.ndarray  # (T, P) bool, the gate's decisions (what sounded)
    probs: np.ndarray  # (T, P) probabilities after density and blending
    z: np.ndarray  # (T, L) the latent each frame was decoded from
    pitches: list[int]  # P MIDI note numbers
    frame_seconds: float  # seconds per frame at the take's tempo
    hop: int
    notes_on: int  # note-on messages written
    struck: np.ndarray | None = None  # (T, P) bool: where notes start, for a model of onsets; else None

    @property
    def seconds(self) -> float:
        return len(self.frames) * self.frame_seconds


class PathControls:
    """The controls of an offline take: one voice, its z from ``z_path`` at the frame ``at`` sets."""

    voices = 1

    def __init__(self, z_path: ZPath, latent: int, settings: TakeSettings) -> None:
        self.z_path, self.latent = z_path, latent
        self.state = ControlState(density=settings.density, temperature=settings.temperature, key=settings.key,
                                  scale=settings.scale, key_strength=settings.key_strength)
        self.at(0)

    def at(self, frame: int) -> None:
        z = np.asarray(self.z_path(frame), dtype=np.float64)
        if z.shape != (self.latent,):
            raise ValueError(f"the z path gave a z of shape {z.shape} for frame {frame}; the latent has {self.latent}")
        self.state = dataclasses.replace(self.state, z=tuple(z.tolist()))

    def snapshot(self) -> ControlState:
        return self.state


def render_take(checkpoint: Checkpoint, z_path: ZPath, steps: int, out: str | Path | None = None,
                settings: TakeSettings = TakeSettings()) -> Take:
    """Play ``steps`` frames as ``serve`` would, each from the z ``z_path`` gives for its frame.

    Writes a type-0 MIDI file to ``out`` (every note-on has its off; the file ends at the
    end of the last frame) unless ``out`` is None.
    """
    if steps < 1:
        raise ConfigError(f"--steps must be at least 1 frame, not {steps}")
    pitches, latent = checkpoint.pitches, checkpoint.config.model.latent
    clock = OfflineClock(checkpoint.timing.frame_seconds(settings.bpm))
    controls = PathControls(z_path, latent, settings)
    sink = MidiFileRecorder(out, bpm=settings.bpm, clock=clock.now, autosave_s=None) if out is not None else NullSink()
    frames = np.zeros((steps, len(pitches)), dtype=bool)
    probs = np.zeros((steps, len(pitches)))
    zs = np.zeros((steps, latent))
    struck = np.zeros((steps, len(pitches)), dtype=bool) if checkpoint.config.data.onsets else None

    def played(index: int, state: ControlState) -> None:
        decoded = performer.played.decoded[0]
        frames[index], probs[index], zs[index] = decoded.frame, decoded.probs, performer.played.zs[0]
        if struck is not None:
            struck[index] = decoded.struck
        if index + 1 < steps:
            controls.at(index + 1)  # the z of the frame decoded next
        else:
            clock.run_to(steps)  # the last frame sounds its full length: the offs come at its end

    performance = PerformanceSettings(hop=settings.hop, glide_s=0.0, bpm=settings.bpm, notes=settings.notes,
                                      seed=settings.seed)
    performer = Performer(checkpoint, controls, sink, performance, clock, played)
    stats = performer.run(max_frames=steps)
    return Take(frames=frames, probs=probs, z=zs, pitches=list(pitches), frame_seconds=clock.period_s,
                hop=performer.hop, notes_on=stats.notes_on, struck=struck)


# -- z paths ---------------------------------------------------------------------


def fixed_path(z: np.ndarray) -> ZPath:
    """The same z for the whole take (the paper's generation from one latent vector)."""
    z = np.asarray(z, dtype=np.float64)
    return lambda frame: z


def glide_path(z_a: np.ndarray, z_b: np.ndarray, steps: int, hop: int) -> ZPath:
    """From ``z_a`` at the first frame to ``z_b`` at the start of the last hop, a little each frame
    (paper section 3.3, where each window was decoded from its own point on the line)."""
    z_a, z_b = np.asarray(z_a, dtype=np.float64), np.asarray(z_b, dtype=np.float64)
    last_hop_start = max(1, ((steps - 1) // hop) * hop)

    def z_at(frame: int) -> np.ndarray:
        t = min(frame / last_hop_start, 1.0)
        return (1.0 - t) * z_a + t * z_b

    return z_at


def parse_z(text: str, latent: int) -> np.ndarray:
    """``"0.1,-0.3"`` to a latent vector ``(latent,)``; ConfigError on a bad or wrong-length list."""
    try:
        values = [float(v) for v in text.replace(" ", "").split(",") if v != ""]
    except ValueError:
        raise ConfigError(f"--z {text!r}: expected {latent} comma-separated numbers, e.g. "
                          f"{','.join(['0'] * latent)}") from None
    if len(values) != latent or not all(np.isfinite(values)):
        raise ConfigError(f"--z has {len(values)} finite value(s); this model's latent has {latent} dimensions")
    return np.asarray(values)


def random_z(latent: int, seed: int) -> np.ndarray:
    """A draw from the prior N(0, I), shape ``(latent,)``."""
    return np.random.default_rng(seed).standard_normal(latent)


# -- codes of passages -------------------------------------------------------------


def song_frame_at(path: str | Path, checkpoint: Checkpoint, seconds: float) -> int:
    """The frame of the checkpoint's timing at ``seconds`` into the song (a beat grid follows its tempo map)."""
    if seconds < 0:
        raise ConfigError(f"--at must be 0 seconds or more, not {seconds}")
    timing = checkpoint.timing
    if timing.fs is not None:
        return int(round(seconds * timing.fs))
    from ..data.pianoroll import read_midi

    midi = read_midi(path)
    return int(round(float(seconds_to_beats(midi, np.array([seconds]))[0]) * timing.steps_per_beat))


def passage_window(path: str | Path, checkpoint: Checkpoint, seconds: float) -> np.ndarray:
    """The window ``(W, C)`` float32 of the song at ``path`` that starts ``seconds`` in, as the model is fed
    it (``Song.inputs``): its pitches, their onsets for a model of onsets, the meter for a model of the meter."""
    full = load_roll(path, checkpoint.timing, with_onsets=True)  # UnusableSongError (a DataError) for a bad file
    song = Song(name=Path(path).name, path=Path(path), roll=full[:, :N_MIDI_PITCHES], onsets=full[:, N_MIDI_PITCHES:],
                bar=bar_quarters_of(Path(path).read_bytes()))
    roll = song.inputs(checkpoint.pitches, checkpoint.config.data)
    window = checkpoint.config.data.window
    start = song_frame_at(path, checkpoint, seconds)
    if start + window > len(roll):
        last = max(0.0, (len(roll) - window) * checkpoint.timing.frame_seconds())
        raise DataError(f"{path}: no window of {window} frames starts at {seconds:g} s; the song has "
                        f"{len(roll)} frames" + (f", so --at can be at most about {last:.2f} s" if len(roll) >= window
                                                 else ", shorter than one window"))
    return roll[start:start + window].astype(np.float32)


@torch.no_grad()
def passage_code(path: str | Path, checkpoint: Checkpoint, seconds: float) -> np.ndarray:
    """The posterior mean ``(L,)`` of the passage of the song at ``path`` starting ``seconds`` in."""
    model = checkpoint.model.eval()
    device = next(model.parameters()).device
    x = torch.from_numpy(passage_window(path, checkpoint, seconds)).to(device)  # (W, P)
    mu, _ = model.encode(x)
    return mu.double().cpu().numpy()
