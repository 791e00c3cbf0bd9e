"""A continuous piano-roll stream from overlapping decoder windows.

Every ``hop`` frames the decoder starts a new window of ``window`` frames from the
current z. Its first ``context = window - hop`` frames are the frames already decided,
fed teacher-forced, exactly as training fed a window that starts part-way into the
previous one (the paper's overlapping windows); it then runs free for the next ``hop``
frames, each fed its own previous output as decided by the FrameGate. So a new window
continues from what was played instead of starting cold, and a new z is heard from the
first frame of the next hop.

To hide the change of window further, the previous window runs ``blend`` frames past its
hop (not played, not fed back), and the first ``blend`` frames of the new window cross-fade
from those probabilities to its own.

Pure: torch and numpy, no IO. :func:`live_stream` builds a checkpoint's stream the one way
``serve``, offline takes and the measurements all use.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
import torch

from ..errors import ConfigError
from .notes import FrameGate, NoteSettings

if TYPE_CHECKING:
    from ..checkpoint import Checkpoint

DENSITY_RANGE = 4.0  # logits added at density 0 or 1 (0.5 adds none)


def density_bias(density: float) -> float:
    """Logit offset for ``density`` in 0..1: 0.5 plays the model as it is, 1 sounds readily."""
    return (2.0 * float(density) - 1.0) * DENSITY_RANGE


@dataclass
class Chunk:
    start: int  # index of the first frame in the whole stream
    probs: np.ndarray  # (hop, P) probabilities after density and blending
    frames: np.ndarray  # (hop, P) bool: what sounds, as decided by the gate


class StreamDecoder:
    def __init__(
        self,
        model: torch.nn.Module,
        window: int,
        hop: int,
        gate: FrameGate | None = None,
        blend: int | None = None,
        seed: int = 0,
    ):
        if not 1 <= hop <= window:
            raise ValueError(f"hop must be 1..window ({window}), not {hop}")
        self.model = model.eval()
        self.device = next(model.parameters()).device
        self.window, self.hop = window, hop
        self.context = window - hop
        self.blend = min(hop, max(1, self.context // 2)) if blend is None else min(blend, hop)
        self.gate = gate or FrameGate()
        self.rng = np.random.default_rng(seed)
        if hasattr(model, "reseed"):  # a model that draws its own noise (the VRNN's z_t) repeats with the take
            model.reseed(seed)
        n_pitches = model.n_pitches
        self.history = np.zeros((0, n_pitches), dtype=bool)  # the last `context` decided frames
        self.tail: np.ndarray | None = None  # (blend, P) the previous window's look past its hop
        self.position = 0

    def reset(self) -> None:
        """Start afresh (after a panic): no context, no blend, no sounding notes."""
        self.history = self.history[:0]
        self.tail = None
        self.gate.reset()

    @torch.inference_mode()
    def next_chunk(self, z: np.ndarray, density: float = 0.5, temperature: float = 0.0) -> Chunk:
        """Decode the next ``hop`` frames from latent ``z (L,)``."""
        model = self.model
        z = torch.as_tensor(z, dtype=torch.float32, device=self.device)[None]  # (1, L)
        state = model.initial_state(z)
        if len(self.history):
            context = torch.as_tensor(self.history, dtype=torch.float32, device=self.device)[None]
            state = model.advance(context, state, z)  # teacher-forced through the frames played
        bias = density_bias(density)
        probs = np.empty((self.hop, model.n_pitches))
        frames = np.empty((self.hop, model.n_pitches), dtype=bool)
        tail = np.empty((self.blend, model.n_pitches))
        for i in range(self.hop + self.blend):
            p = torch.sigmoid(model.logits(state)[0] + bias).double().cpu().numpy()
            if i < self.hop:
                if self.tail is not None and i < self.blend:
                    alpha = (i + 1) / (self.blend + 1)
                    p = (1 - alpha) * self.tail[i] + alpha * p
                frame = self.gate.step(p, temperature, self.rng)
                probs[i], frames[i] = p, frame
            else:  # looking past the hop, for the next window's cross-fade; nothing is decided
                tail[i - self.hop] = p
                frame = self.rng.random(p.shape) < p if temperature > 0 else p >= 0.5
            state = model.advance(torch.as_tensor(frame, dtype=torch.float32, device=self.device)[None], state, z)
        self.tail = tail
        if self.context:
            self.history = np.concatenate([self.history, frames])[-self.context:]
        chunk = Chunk(start=self.position, probs=probs, frames=frames)
        self.position += self.hop
        return chunk


def live_hop(checkpoint: "Checkpoint", hop: int | None) -> int:
    """Frames per decoded hop: ``hop``, or the checkpoint's if its windows overlap, else half a window."""
    data = checkpoint.config.data
    if hop is None:
        hop = data.hop if data.hop < data.window else max(1, data.window // 2)
    if not 1 <= hop <= data.window:
        raise ConfigError(f"--hop must be 1..{data.window} frames for this model, not {hop}")
    return hop


def live_stream(checkpoint: "Checkpoint", hop: int | None = None, notes: NoteSettings | None = None,
                seed: int = 0) -> StreamDecoder:
    """The stream ``serve`` plays from ``checkpoint``: its model and window, hop from :func:`live_hop`."""
    return StreamDecoder(checkpoint.model, checkpoint.config.data.window, live_hop(checkpoint, hop),
                         FrameGate(notes or NoteSettings()), seed=seed)
