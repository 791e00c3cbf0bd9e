"""Several piano-roll streams, one per voice, decoded together: one batched model call per step.

Each voice is a :class:`~vrae_live.live.stream.StreamDecoder` stream of its own (its own z,
recurrent state, history of decided frames, gate and dice), with the same windows, hops,
re-anchoring and cross-fades; what differs is that the model runs once per step for all
sounding voices, never once per voice:

- the voices that run on feed their last frame in one ``advance`` over the batch;
- the voices that begin a window look past the old window's end together (``blend`` steps,
  each one batched call), then get their h_0 and are teacher-forced through their context in
  one ``initial_state`` and one ``advance`` per context length (one length, but for a voice
  that started less than a context ago);
- the logits of every voice come from one ``logits`` call.

The hop grid is shared: windows begin on the same frames for every voice, so their
teacher-forced passes, the expensive part of a step, are one batched pass rather than one
per voice spread over the hop. A voice that starts mid-hop (a touch down) begins its first
window at once, from no context, and joins the grid at the next boundary: a window cut
short, as a re-anchored one is. Started on frame 0, voice k plays frame for frame and draw
for draw what a lone StreamDecoder seeded alike plays (``tests/test_voices.py`` checks it).

Pure: torch and numpy, no IO.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal, Sequence

import numpy as np
import torch

from .notes import FrameGate, NoteSettings
from .stream import DecodedFrame, density_bias


def stack_states(states: Sequence) -> object:
    """Batch-1 states of any model (``(1, 1, H)``, an LSTM's pair, a VRNNState) as one batch."""
    first = states[0]
    if isinstance(first, torch.Tensor):
        return torch.cat(states, dim=1)  # (1, B, H)
    if isinstance(first, tuple):
        return tuple(torch.cat(parts, dim=1) for parts in zip(*states))
    fields = {}  # a dataclass of (B, ...) tensors or None (the VRNN's)
    for name in first.__dataclass_fields__:
        parts = [getattr(s, name) for s in states]
        fields[name] = None if parts[0] is None else torch.cat(parts, dim=0)
    return type(first)(**fields)


def split_states(state, count: int) -> list:
    """The batch of ``count`` voices back into batch-1 states."""
    if isinstance(state, torch.Tensor):
        return list(state.split(1, dim=1))
    if isinstance(state, tuple):
        return [tuple(parts) for parts in zip(*(t.split(1, dim=1) for t in state))]
    names = list(state.__dataclass_fields__)
    columns = {n: (None if getattr(state, n) is None else getattr(state, n).split(1, dim=0)) for n in names}
    return [type(state)(**{n: (None if columns[n] is None else columns[n][i]) for n in names}) for i in range(count)]


@dataclass
class VoiceStream:
    """One voice's place in the stream: what StreamDecoder keeps, minus the model."""

    gate: FrameGate
    rng: np.random.Generator
    history: np.ndarray  # (<= context, P) bool: the last decided frames
    position: int = 0  # frames this voice has decided since it started
    state: object = None  # batch-1 state predicting the next frame once `fed` is fed
    fed: torch.Tensor | None = None  # (1, P) the last decided frame, not yet fed
    anchor_z: np.ndarray | None = None  # the z its window's h_0 came from
    tail: np.ndarray | None = None  # (blend, P) the replaced window's look past its end
    fade: int = 0
    windows: int = 0
    reanchors: int = 0
    pending: dict = field(default_factory=dict)  # scratch for one step


class BatchedStream:
    """Streams for ``voices`` voices over one model, decoded together one frame per :meth:`step`.

    ``seeds[k]`` seeds voice k's gate draws (default ``seed + k``, so voice 0 plays what a
    StreamDecoder of ``seed`` plays). A voice decodes only while it is started
    (:meth:`start`, :meth:`stop`); the shared hop grid counts frames from the bank's first step.
    """

    def __init__(self, model: torch.nn.Module, window: int, hop: int, voices: int,
                 settings: NoteSettings | None = None, blend: int | None = None, seed: int = 0,
                 reanchor_distance: float = 0.0):
        if not 1 <= hop <= window:
            raise ValueError(f"hop must be 1..window ({window}), not {hop}")
        if voices < 1:
            raise ValueError(f"voices must be at least 1, not {voices}")
        self.model = model.eval()
        self.device = next(model.parameters()).device
        self.window, self.hop = window, hop
        self.context = window - hop
        self.blend = min(hop, max(1, self.context // 2)) if blend is None else min(blend, hop)
        self.settings = settings or NoteSettings()
        self.seed = seed
        if hasattr(model, "reseed"):
            model.reseed(seed)
        self.z_every_step = bool(getattr(model, "z_fed_every_step", False))
        self.reanchor_distance = float(reanchor_distance)
        self.n_pitches = model.n_pitches
        self.voices: list[VoiceStream | None] = [None] * voices
        self.frame = 0  # steps taken: the shared hop grid's clock
        self.model_calls = 0  # batched calls to the model, for tests and the benchmark

    # -- voices come and go

    def start(self, k: int) -> None:
        """Voice ``k`` starts afresh (no context, no sounding note) at the next step."""
        self.voices[k] = VoiceStream(FrameGate(self.settings), np.random.default_rng(self.seed + k),
                                     np.zeros((0, self.n_pitches), dtype=bool))

    def stop(self, k: int) -> None:
        self.voices[k] = None

    def active(self) -> list[int]:
        return [k for k, v in enumerate(self.voices) if v is not None]

    def reset(self) -> None:
        """After a panic: every started voice starts afresh, and the hop grid starts again."""
        for k in self.active():
            self.start(k)
        self.frame = 0

    # -- decoding

    def _zt(self, zs: Sequence[np.ndarray]) -> torch.Tensor:
        return torch.as_tensor(np.stack(zs), dtype=torch.float32, device=self.device)  # (B, L)

    def _join(self, v: VoiceStream, z: np.ndarray, on_grid: bool) -> Literal["hop", "move"] | None:
        if v.state is None or on_grid:
            return "hop"
        if not self.z_every_step:
            moved = float(np.linalg.norm(z - v.anchor_z))
            if moved > 0 and moved >= self.reanchor_distance:
                return "move"
        return None

    @torch.inference_mode()
    def step(self, zs: dict[int, np.ndarray], densities: dict[int, float] | None = None,
             temperature: float = 0.0) -> dict[int, DecodedFrame]:
        """The next frame of every started voice, from its z ``(L,)`` in ``zs`` (keyed by voice)."""
        model = self.model
        active = self.active()
        if set(zs) != set(active):
            raise ValueError(f"z for voices {sorted(zs)}, but voices {active} are started")
        if not active:
            self.frame += 1
            return {}
        densities = densities or {}
        on_grid = self.frame % self.hop == 0
        z = {k: np.asarray(zs[k], dtype=np.float64) for k in active}
        bias = {k: density_bias(densities.get(k, 0.5)) for k in active}
        joins = {k: self._join(self.voices[k], z[k], on_grid) for k in active}

        running = [k for k in active if joins[k] is None]
        if running:  # one advance for every voice that runs on
            zt = self._zt([z[k] for k in running])
            state = model.advance(torch.cat([self.voices[k].fed for k in running]),
                                  stack_states([self.voices[k].state for k in running]), zt)
            self.model_calls += 1
            for k, s in zip(running, split_states(state, len(running))):
                self.voices[k].state = s

        hopping = [k for k in active if joins[k] == "hop"]
        for k in hopping:
            self.voices[k].tail, self.voices[k].fade = None, 0
        looking = [k for k in hopping if self.voices[k].state is not None and self.blend]
        if looking:
            self._look_past(looking, z, bias, temperature)

        joining = [k for k in active if joins[k] is not None]
        by_length: dict[int, list[int]] = {}
        for k in joining:
            by_length.setdefault(min(len(self.voices[k].history), self.context), []).append(k)
        for teacher, group in by_length.items():  # one length, but for a voice younger than the context
            zt = self._zt([z[k] for k in group])
            state = model.initial_state(zt)
            self.model_calls += 1
            if teacher:
                context = torch.as_tensor(np.stack([self.voices[k].history[-teacher:] for k in group]),
                                          dtype=torch.float32, device=self.device)  # (B, teacher, P)
                state = model.advance(context, state, zt)
                self.model_calls += 1
            for k, s in zip(group, split_states(state, len(group))):
                v = self.voices[k]
                v.state, v.fed, v.anchor_z = s, None, z[k].copy()
                if joins[k] == "hop":
                    v.windows += 1
                else:
                    v.reanchors += 1

        logits = model.logits(stack_states([self.voices[k].state for k in active]))  # (B, P)
        self.model_calls += 1
        offsets = torch.tensor([bias[k] for k in active], dtype=logits.dtype, device=logits.device)[:, None]
        probs = torch.sigmoid(logits + offsets).double().cpu().numpy()  # (B, P)

        out: dict[int, DecodedFrame] = {}
        chosen = []
        for row, k in enumerate(active):
            v = self.voices[k]
            p = probs[row]
            if v.tail is not None:
                alpha = (v.fade + 1) / (self.blend + 1)
                p = (1 - alpha) * v.tail[v.fade] + alpha * p
                v.fade += 1
                if v.fade >= self.blend:
                    v.tail = None
            frame = v.gate.step(p, temperature, v.rng)
            chosen.append(frame)
            if self.context:
                v.history = np.concatenate([v.history, frame[None]])[-self.context:]
            out[k] = DecodedFrame(index=v.position, probs=p, frame=frame, join=joins[k])
            v.position += 1
        fed = torch.as_tensor(np.stack(chosen), dtype=torch.float32, device=self.device)  # (B, P)
        for k, row in zip(active, fed.split(1)):
            self.voices[k].fed = row
        self.frame += 1
        return out

    def _look_past(self, looking: list[int], z: dict, bias: dict, temperature: float) -> None:
        """The windows being replaced run ``blend`` frames on, undecided, for the cross-fade: batched."""
        model = self.model
        zt = self._zt([z[k] for k in looking])
        state = stack_states([self.voices[k].state for k in looking])
        frame = torch.cat([self.voices[k].fed for k in looking])  # (B, P)
        offsets = torch.tensor([bias[k] for k in looking], dtype=torch.float32, device=self.device)[:, None]
        tails = np.empty((len(looking), self.blend, self.n_pitches))
        for i in range(self.blend):
            state = model.advance(frame, state, zt)
            p = torch.sigmoid(model.logits(state) + offsets).double().cpu().numpy()  # (B, P)
            self.model_calls += 2
            tails[:, i] = p
            picks = [self.voices[k].rng.random(p.shape[1]) < p[row] if temperature > 0 else p[row] >= 0.5
                     for row, k in enumerate(looking)]
            frame = torch.as_tensor(np.stack(picks), dtype=torch.float32, device=self.device)
        for row, k in enumerate(looking):
            self.voices[k].tail = tails[row]
