"""Several piano-roll streams, one per voice, decoded together: one batched model call per step.

Each voice is a :class:`~vrae_live.play.stream.StreamDecoder` stream of its own (its own z,
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

Per frame the bank works on arrays with a voice axis, not on voices one by one: the
recurrent state of every voice is one batched state (rows taken and put back by index
when only some voices run), the gates are one :class:`~vrae_live.play.notes.GateBank`,
the histories one ring of frames, the fades, anchors, last frames and counters arrays.
Each voice keeps its own generator, seeded ``seed + k``, so that its draws are those of a
lone stream; they come from a buffer of ``DRAW_ROWS`` frames of draws per voice, filled
from that generator (``random((DRAW_ROWS, P))`` is ``DRAW_ROWS`` calls of ``random(P)``,
draw for draw), so a step takes every voice's draws in one indexing operation and
refills a voice's buffer once every ``DRAW_ROWS`` frames of draws.

Pure: torch and numpy, no IO.
"""

from __future__ import annotations

from typing import Callable

import numpy as np
import torch

from .notes import GateBank, NoteSettings
from .stream import DecodedFrame, blend_frames, density_bias

DRAW_ROWS = 64  # frames of draws buffered per voice
_JOINS = (None, "hop", "move")  # a voice's join code this step: 0 runs on, 1 a window on the grid, 2 re-anchored
_RUN, _HOP, _MOVE = 0, 1, 2


def map_states(fn: Callable[..., torch.Tensor], *states) -> object:
    """``fn(tensor, ..., batch_dim)`` over the matching tensors of states of any model: ``(1, B, H)``,
    an LSTM's pair of them, or a dataclass of ``(B, ...)`` tensors or None (the VRNN's)."""
    first = states[0]
    if isinstance(first, torch.Tensor):
        return fn(*states, 1)
    if isinstance(first, tuple):
        return tuple(fn(*parts, 1) for parts in zip(*states))
    return type(first)(**{name: None if getattr(first, name) is None else fn(*(getattr(s, name) for s in states), 0)
                          for name in first.__dataclass_fields__})


def take_states(state, index: torch.Tensor) -> object:
    """The rows ``index`` of a batched state."""
    return map_states(lambda t, dim: t.index_select(dim, index), state)


def put_states(state, index: torch.Tensor, rows) -> object:
    """A batched state with its rows ``index`` replaced by the batch ``rows``."""
    return map_states(lambda t, r, dim: t.index_copy(dim, index, r), state, rows)


def empty_states(like, count: int) -> object:
    """A batched state of ``count`` rows of zeros, shaped like the batch ``like``."""
    return map_states(lambda t, dim: t.new_zeros(t.shape[:dim] + (count,) + t.shape[dim + 1:]), like)


class VoiceStream:
    """One started voice, as seen from outside: its counts and history (the bank holds the arrays)."""

    def __init__(self, bank: "BatchedStream", k: int) -> None:
        self._bank, self.k = bank, k

    @property
    def position(self) -> int:
        """Frames this voice has decided since it started."""
        return int(self._bank._position[self.k])

    @property
    def windows(self) -> int:
        return int(self._bank._windows[self.k])

    @property
    def reanchors(self) -> int:
        return int(self._bank._reanchors[self.k])

    @property
    def history(self) -> np.ndarray:
        """``(<= context, P)`` bool: its last decided frames, oldest first."""
        return self._bank.history_of(self.k)


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
        self.blend = blend_frames(hop, self.context, blend)
        self.settings = settings or NoteSettings()
        self.seed = seed
        if hasattr(model, "reseed"):
            model.reseed(seed)
        self.z_every_step = bool(getattr(model, "z_fed_every_step", False))
        self.reanchor_distance = float(reanchor_distance)
        self.n_pitches = n = model.n_pitches
        self.count = voices
        self.voices: list[VoiceStream | None] = [None] * voices
        self.frame = 0  # steps taken: the shared hop grid's clock
        self.model_calls = 0  # batched calls to the model, for tests and the benchmark
        # every voice's part of the stream, one row a voice
        self._started = np.zeros(voices, bool)
        self._active = np.zeros(0, np.int64)  # the started voices, ascending
        self._state = None  # batched state of every voice (a row is stale until the voice's first window)
        self._has_state = np.zeros(voices, bool)  # its row predicts the next frame once `_fed` is fed
        self._fed = np.zeros((voices, n), np.float32)  # the last decided frame, not yet fed
        self._anchor_z: np.ndarray | None = None  # (voices, L) the z each window's h_0 came from
        self._gates = GateBank(voices, n, self.settings)
        self._rngs: list[np.random.Generator | None] = [None] * voices
        self._draws = np.zeros((voices, DRAW_ROWS, n))  # each voice's next draws, from its own generator
        self._drawn = np.full(voices, DRAW_ROWS)  # rows of `_draws` used
        self._ring = np.zeros((voices, max(self.context, 1), n), bool)  # the last `context` frames, a ring
        self._ring_at = 0  # the ring's next slot, the same for every voice (all started voices step together)
        self._history = np.zeros(voices, np.int64)  # frames in the ring, up to `context`
        self._tails = np.zeros((voices, max(self.blend, 1), n))  # the replaced window's look past its end
        self._fading = np.zeros(voices, bool)
        self._fade = np.zeros(voices, np.int64)  # frames of the cross-fade done
        self._position = np.zeros(voices, np.int64)
        self._windows = np.zeros(voices, np.int64)
        self._reanchors = np.zeros(voices, np.int64)

    # -- voices come and go

    def start(self, k: int) -> None:
        """Voice ``k`` starts afresh (no context, no sounding note) at the next step."""
        self.voices[k] = VoiceStream(self, k)
        self._started[k] = True
        self._active = np.flatnonzero(self._started)
        self._has_state[k] = self._fading[k] = False
        self._fed[k] = 0
        self._gates.reset(k)
        self._rngs[k] = np.random.default_rng(self.seed + k)
        self._drawn[k] = DRAW_ROWS
        self._history[k] = self._fade[k] = self._position[k] = self._windows[k] = self._reanchors[k] = 0

    def stop(self, k: int) -> None:
        self.voices[k] = None
        self._started[k] = False
        self._active = np.flatnonzero(self._started)

    def active(self) -> list[int]:
        return self._active.tolist()

    def reset(self) -> None:
        """After a panic: every started voice starts afresh, and the hop grid starts again."""
        for k in self.active():
            self.start(k)
        self.frame = 0

    def history_of(self, k: int) -> np.ndarray:
        """Voice ``k``'s last decided frames ``(<= context, P)``, oldest first."""
        return self._ring[k, self._ring_slots(int(self._history[k]))]

    def _ring_slots(self, frames: int) -> np.ndarray:
        """The ring's slots of the last ``frames`` frames written, oldest first."""
        return (self._ring_at - frames + np.arange(frames)) % self._ring.shape[1]

    # -- decoding

    def _draw(self, rows: np.ndarray) -> np.ndarray:
        """The next frame of draws ``(B, P)`` of voices ``rows``, each from its own generator."""
        empty = rows[self._drawn[rows] >= DRAW_ROWS]
        for k in empty:  # once every DRAW_ROWS frames of draws a voice
            self._draws[k] = self._rngs[k].random((DRAW_ROWS, self.n_pitches))
            self._drawn[k] = 0
        draws = self._draws[rows, self._drawn[rows]]
        self._drawn[rows] += 1
        return draws

    def _rows(self, rows: np.ndarray, everyone: bool):
        """The batched state's rows ``rows`` (the whole state when ``everyone``), and their index."""
        if everyone:
            return self._state, None
        index = torch.as_tensor(rows, device=self.device)
        return take_states(self._state, index), index

    def _put(self, rows: np.ndarray, index: torch.Tensor | None, state) -> None:
        if index is None:
            self._state = state
            return
        if self._state is None:
            self._state = empty_states(state, self.count)
        self._state = put_states(self._state, index, state)

    def _tensor(self, array: np.ndarray) -> torch.Tensor:
        return torch.as_tensor(array, dtype=torch.float32, device=self.device)

    @torch.inference_mode()
    def step(self, zs: dict[int, np.ndarray], densities: dict[int, float] | None = None,
             temperature: float = 0.0) -> dict[int, DecodedFrame]:
        """The next frame of every started voice, from its z ``(L,)`` in ``zs`` (keyed by voice)."""
        model = self.model
        active = self._active
        order = active.tolist()
        if len(zs) != len(order) or any(k not in zs for k in order):
            raise ValueError(f"z for voices {sorted(zs)}, but voices {active.tolist()} are started")
        if not len(active):
            self.frame += 1
            return {}
        z = np.array([zs[k] for k in order], dtype=np.float64)  # (B, L)
        densities = densities or {}
        bias = np.array([density_bias(densities.get(k, 0.5)) for k in order])  # (B,)
        if self._anchor_z is None:
            self._anchor_z = np.zeros((self.count, z.shape[1]))
        everyone = len(active) == self.count  # every voice started: its rows are the whole state

        # how each voice's frame begins: runs on, a window on the hop grid, or re-anchored by a move
        if self.frame % self.hop == 0:
            joins = np.full(len(active), _HOP)
        else:
            joins = np.where(self._has_state[active], _RUN, _HOP)
            if not self.z_every_step:
                moved = np.linalg.norm(z - self._anchor_z[active], axis=1)
                joins[(joins == _RUN) & (moved > 0) & (moved >= self.reanchor_distance)] = _MOVE

        running = np.flatnonzero(joins == _RUN)  # positions in `active`
        if len(running):  # one advance for every voice that runs on
            rows = active[running]
            state, index = self._rows(rows, everyone and len(running) == len(active))
            state = model.advance(self._tensor(self._fed[rows]), state, self._tensor(z[running]))
            self.model_calls += 1
            self._put(rows, index, state)

        hopping = active[joins == _HOP]
        self._fading[hopping] = False
        self._fade[hopping] = 0
        if self.blend:
            looking = np.flatnonzero((joins == _HOP) & self._has_state[active])
            if len(looking):
                self._look_past(active, looking, z, bias, temperature, everyone and len(looking) == len(active))

        joining = np.flatnonzero(joins != _RUN)
        if len(joining):
            self._begin_windows(active, joining, joins, z, everyone and len(joining) == len(active))

        state = self._state if everyone else take_states(self._state, torch.as_tensor(active, device=self.device))
        logits = model.logits(state)  # (B, P)
        self.model_calls += 1
        offsets = torch.as_tensor(bias, dtype=logits.dtype, device=logits.device)[:, None]
        probs = torch.sigmoid(logits + offsets).double().cpu().numpy()  # (B, P)

        fading = np.flatnonzero(self._fading[active])
        if len(fading):  # the first `blend` frames of a window fade in from the replaced window's look past
            rows = active[fading]
            done = self._fade[rows]
            alpha = ((done + 1) / (self.blend + 1))[:, None]
            probs[fading] = (1 - alpha) * self._tails[rows, done] + alpha * probs[fading]
            self._fade[rows] = done + 1
            self._fading[rows] = done + 1 < self.blend

        draws = self._draw(active) if temperature > 0 else None
        frames = self._gates.step(None if everyone else active, probs, temperature, draws)  # (B, P)
        self._fed[active] = frames
        if self.context:
            self._ring[active, self._ring_at] = frames
            self._ring_at = (self._ring_at + 1) % self.context
            self._history[active] = np.minimum(self._history[active] + 1, self.context)
        positions = self._position[active].tolist()
        self._position[active] += 1
        self.frame += 1
        return {k: DecodedFrame(index=i, probs=p, frame=f, join=_JOINS[j])
                for k, i, p, f, j in zip(order, positions, probs, frames, joins.tolist())}

    def _look_past(self, active: np.ndarray, looking: np.ndarray, z: np.ndarray, bias: np.ndarray,
                   temperature: float, whole: bool) -> None:
        """The windows being replaced run ``blend`` frames on, undecided, for the cross-fade: batched."""
        model = self.model
        rows = active[looking]
        zt = self._tensor(z[looking])
        state, _ = self._rows(rows, whole)
        frame = self._tensor(self._fed[rows])  # (B, P)
        offsets = torch.as_tensor(bias[looking], dtype=torch.float32, device=self.device)[:, None]
        for i in range(self.blend):
            state = model.advance(frame, state, zt)
            p = torch.sigmoid(model.logits(state) + offsets).double().cpu().numpy()  # (B, P)
            self.model_calls += 2
            self._tails[rows, i] = p
            picks = self._draw(rows) < p if temperature > 0 else p >= 0.5  # nothing is decided
            frame = self._tensor(picks)
        self._fading[rows] = True

    def _begin_windows(self, active: np.ndarray, joining: np.ndarray, joins: np.ndarray, z: np.ndarray,
                       whole: bool) -> None:
        """h_0 from each joining voice's z, teacher-forced through its last ``context`` frames: one
        ``initial_state`` and one ``advance`` per context length (one, but for voices younger than it)."""
        model = self.model
        rows = active[joining]
        teachers = np.minimum(self._history[rows], self.context)
        lengths, first = np.unique(teachers, return_index=True)
        lengths = lengths[np.argsort(first)]  # in the voices' order, as the model's own draws (the VRNN's) go
        for teacher in lengths.tolist():
            group = joining if len(lengths) == 1 else joining[teachers == teacher]
            members = active[group]
            zt = self._tensor(z[group])
            state = model.initial_state(zt)
            self.model_calls += 1
            if teacher:
                context = self._ring[members[:, None], self._ring_slots(teacher)[None, :]]  # (B, teacher, P)
                state = model.advance(self._tensor(context), state, zt)
                self.model_calls += 1
            self._put(members, None if whole and len(lengths) == 1 else torch.as_tensor(members, device=self.device),
                      state)
        self._has_state[rows] = True
        self._anchor_z[rows] = z[joining]
        hop = joins[joining] == _HOP
        self._windows[rows[hop]] += 1
        self._reanchors[rows[~hop]] += 1
