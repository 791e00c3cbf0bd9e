"""A continuous piano-roll stream from overlapping decoder windows, decoded a frame at a time.

Every ``hop`` frames the decoder starts a new window of ``window`` frames from the
current z. Its first ``context = window - hop`` frames are the frames already decided,
fed teacher-forced, exactly as training fed a window that starts part-way into the
previous one (the paper's overlapping windows); it then runs free for the next ``hop``
frames, each fed its own previous output as decided by the FrameGate. So a new window
continues from what was played instead of starting cold.

The stream is decoded one frame per call (:meth:`StreamDecoder.next_frame`), the
recurrent state kept between calls, and each call takes the z of that moment, so a pad
move reaches the very next frame decoded:

- a model fed z at every step (``z_every_step``; the VRNN's prior offset) takes the new
  z at its next step, the state running on;
- a model fed z only in h_0 (the paper's) cannot hear a new z without a new h_0: when z
  has moved ``reanchor_distance`` or more from the z its window began with, the window
  is re-anchored mid-hop: a new window, h_0 from the new z, teacher-forced through the
  last ``context`` frames played, as at a hop boundary, then free until the next boundary
  (so it is cut short of a full window, never longer). Its first frame sits where a hop's
  first frame sits in its window, where h_0 holds as much as it does anywhere in the
  stream; a window teacher-forced from the replaced window's start instead would have read
  up to ``window - 1`` frames first, and an untrained decoder forgets h_0 entirely over 49
  steps (the paper-2d preset with random weights: a jump late in a hop left the next frames
  unchanged). Smaller moves wait for the next hop.

Windows still begin on the hop grid, so each stays the length training saw. To hide the
change of window there, the window being replaced first runs ``blend`` frames on (not
played, each fed its own output), and the first ``blend`` frames of the new window
cross-fade from those probabilities to its own. (Fading instead from the replaced window
fed the frames actually played changes nothing for a decoder that forgets h_0 within the
context, and the shipped model then settles on one held chord within a few hops; the
look-past's own dice keep it moving.) A window re-anchored mid-hop has no fade of its own:
its teacher-forced pass through the frames played is what joins it on (a fade in progress
goes on). At a fixed z the stream is the same, frame for frame and draw for draw, as when
it decoded a whole hop at once.

Pure: torch and numpy, no IO. :func:`live_stream` builds a checkpoint's stream the one way
``serve``, offline takes and the measurements all use.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal

import numpy as np
import torch

from ..errors import ConfigError
from ..pad import LatentPlane
from .notes import FrameGate, NoteSettings

if TYPE_CHECKING:
    from ..checkpoint import Checkpoint

DENSITY_RANGE = 4.0  # logits added at density 0 or 1 (0.5 adds none)
REANCHOR_SHARE = 0.02  # a pad move of this share of the pad's diagonal re-anchors an h_0-only model mid-hop


def blend_frames(hop: int, context: int, blend: int | None = None) -> int:
    """Frames faded across a window join: ``blend`` (at most a hop), or by default half the context."""
    return min(hop, max(1, context // 2)) if blend is None else min(blend, hop)


def density_bias(density: float) -> float:
    """Logit offset for ``density`` in 0..1: 0.5 plays the model as it is, 1 sounds readily."""
    return (2.0 * float(density) - 1.0) * DENSITY_RANGE


@dataclass
class DecodedFrame:
    index: int  # of the frame in the whole stream
    probs: np.ndarray  # (P,) probabilities after density and blending
    frame: np.ndarray  # (P,) bool: what sounds, as decided by the gate
    join: Literal["hop", "move"] | None  # a window began here: on the hop grid, or re-anchored by a pad move


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
        reanchor_distance: float = 0.0,
    ):
        if not 1 <= hop <= window:
            raise ValueError(f"hop must be 1..window ({window}), not {hop}")
        self.model = model.eval()
        self.device = next(model.parameters()).device
        self.window, self.hop = window, hop
        self.context = window - hop
        self.blend = blend_frames(hop, self.context, blend)
        self.gate = gate or FrameGate()
        self.rng = np.random.default_rng(seed)
        if hasattr(model, "reseed"):  # a model that draws its own noise (the VRNN's z_t) repeats with the take
            model.reseed(seed)
        # z fed at every step reaches the next frame through the running state; z only in h_0 needs a new window
        self.z_every_step = bool(getattr(model, "z_fed_every_step", False))
        self.reanchor_distance = float(reanchor_distance)  # 0: any move re-anchors an h_0-only model
        n_pitches = model.n_pitches
        self.history = np.zeros((0, n_pitches), dtype=bool)  # the last `context` decided frames
        self.position = 0  # frames decided since the stream began
        self._state = None  # the current window's state, predicting the next frame once `_fed` is fed
        self._fed: torch.Tensor | None = None  # the last decided frame (1, P), not yet fed to the states
        self._anchor_z: np.ndarray | None = None  # the z the current window's h_0 came from
        self._in_hop = 0  # frames decided since the last window on the hop grid began
        self._tail: np.ndarray | None = None  # (blend, P) the replaced window's look past its end, to fade from
        self._fade = 0  # frames of the cross-fade done
        self.windows = 0  # windows begun on the hop grid
        self.reanchors = 0  # windows begun mid-hop by a pad move

    def reset(self) -> None:
        """Start afresh (after a panic): no context, no blend, no sounding notes; the hop grid starts again."""
        self.history = self.history[:0]
        self._state = self._fed = self._anchor_z = self._tail = None
        self._in_hop = 0
        self.gate.reset()

    def _z(self, z: np.ndarray) -> torch.Tensor:
        return torch.as_tensor(z, dtype=torch.float32, device=self.device)[None]  # (1, L)

    def _join(self, z: np.ndarray) -> Literal["hop", "move"] | None:
        """Whether the next frame begins a window: on the hop grid, or a pad move for an h_0-only model."""
        if self._state is None or self._in_hop >= self.hop:
            return "hop"
        if not self.z_every_step:
            moved = float(np.linalg.norm(z - self._anchor_z))
            if moved > 0 and moved >= self.reanchor_distance:
                return "move"
        return None

    def _begin_window(self, z: np.ndarray, zt: torch.Tensor, join: str, bias: float, temperature: float) -> None:
        """h_0 from ``z``, teacher-forced through the last ``context`` frames decided."""
        model = self.model
        if join == "hop":
            self._tail, self._fade, self._in_hop = None, 0, 0
            if self._state is not None and self.blend:  # the replaced window looks past its end, for the fade
                state, frame, tail = self._state, self._fed, np.empty((self.blend, model.n_pitches))
                for i in range(self.blend):
                    state = model.advance(frame, state, zt)
                    tail[i] = p = torch.sigmoid(model.logits(state)[0] + bias).double().cpu().numpy()
                    chosen = self.rng.random(p.shape) < p if temperature > 0 else p >= 0.5  # nothing is decided
                    frame = torch.as_tensor(chosen, dtype=torch.float32, device=self.device)[None]
                self._tail = tail
        # `context` frames back, on the grid or re-anchored: the new z's first frame sits where a hop's first frame does
        teacher = min(len(self.history), self.context)
        state = model.initial_state(zt)
        if teacher:
            context = torch.as_tensor(self.history[-teacher:], dtype=torch.float32, device=self.device)[None]
            state = model.advance(context, state, zt)
        self._state, self._fed, self._anchor_z = state, None, z.copy()
        if join == "hop":
            self.windows += 1
        else:
            self.reanchors += 1

    @torch.inference_mode()
    def next_frame(self, z: np.ndarray, density: float = 0.5, temperature: float = 0.0) -> DecodedFrame:
        """Decode the next frame from latent ``z (L,)``, the z of this moment."""
        model = self.model
        z = np.asarray(z, dtype=np.float64)
        zt = self._z(z)
        join = self._join(z)
        bias = density_bias(density)
        if join is not None:
            self._begin_window(z, zt, join, bias, temperature)
        else:
            self._state = model.advance(self._fed, self._state, zt)
        p = torch.sigmoid(model.logits(self._state)[0] + bias).double().cpu().numpy()
        if self._tail is not None:
            alpha = (self._fade + 1) / (self.blend + 1)
            p = (1 - alpha) * self._tail[self._fade] + alpha * p
            self._fade += 1
            if self._fade >= self.blend:
                self._tail = None
        frame = self.gate.step(p, temperature, self.rng)
        self._fed = torch.as_tensor(frame, dtype=torch.float32, device=self.device)[None]
        if self.context:
            self.history = np.concatenate([self.history, frame[None]])[-self.context:]
        self._in_hop += 1
        out = DecodedFrame(index=self.position, probs=p, frame=frame, join=join)
        self.position += 1
        return out

    def next_chunk(self, z: np.ndarray, density: float = 0.5, temperature: float = 0.0) -> Chunk:
        """The next ``hop`` frames, all at latent ``z (L,)`` (a take at a fixed z; ``serve`` decodes per frame)."""
        start = self.position
        decoded = [self.next_frame(z, density, temperature) for _ in range(self.hop)]
        return Chunk(start=start, probs=np.stack([f.probs for f in decoded]),
                     frames=np.stack([f.frame for f in decoded]))


def live_hop(checkpoint: "Checkpoint", hop: int | None) -> int:
    """Frames per decoded hop: ``hop``, or the checkpoint's if its windows overlap, else half a window."""
    data = checkpoint.config.data
    if hop is None:
        hop = data.hop if data.hop < data.window else max(1, data.window // 2)
    if not 1 <= hop <= data.window:
        raise ConfigError(f"--hop must be 1..{data.window} frames for this model, not {hop}")
    return hop


def reanchor_distance(checkpoint: "Checkpoint") -> float:
    """How far z moves before an h_0-only model re-anchors mid-hop: ``REANCHOR_SHARE`` of the pad's diagonal."""
    plane = LatentPlane.stored_or_standard(checkpoint.meta.get("latent_plane"), checkpoint.config.model.latent)
    return REANCHOR_SHARE * float(np.linalg.norm(plane.z_at(1.0, 1.0) - plane.z_at(0.0, 0.0)))


def live_stream(checkpoint: "Checkpoint", hop: int | None = None, notes: NoteSettings | None = None,
                seed: int = 0) -> StreamDecoder:
    """The stream ``serve`` plays from ``checkpoint``: its model and window, hop from :func:`live_hop`."""
    return StreamDecoder(checkpoint.model, checkpoint.config.data.window, live_hop(checkpoint, hop),
                         FrameGate(notes or NoteSettings()), seed=seed,
                         reanchor_distance=reanchor_distance(checkpoint))
