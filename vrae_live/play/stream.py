"""A continuous piano-roll stream from overlapping decoder windows, decoded a frame at a time.

Every ``hop`` frames the decoder starts a new window of ``window`` frames from the
current z. Its first ``context = window - hop`` frames are the frames already decided,
fed teacher-forced, exactly as training fed a window that starts part-way into the
previous one (the paper's overlapping windows); it then runs free for the next ``hop``
frames, each fed its own previous output as decided by the gate. So a new window
continues from what was played instead of starting cold.

The stream is decoded one frame per call (:meth:`Stream.next_frame`), the
recurrent state kept between calls, and each call takes the z of that moment, so a pad
move reaches the very next frame decoded:

- a model fed z at every step (``z_every_step``; the VRNN's prior offset) takes the new
  z at its next step, the state running on;
- a model fed z only in h_0 (the paper's) cannot hear a new z without a new h_0: when z
  has moved ``reanchor_distance`` or more from the z its window began with, the window
  is re-anchored mid-hop: a new window, h_0 from the new z, teacher-forced through the
  last ``context`` frames played, as at a hop boundary, then free until the next boundary
  (so it is cut short of a full window, never longer; docs/models.md says why it starts
  there). Smaller moves wait for the next hop.

Windows still begin on the hop grid, so each stays the length training saw. To hide the
change of window there, the window being replaced first runs ``blend`` frames on (not
played, each fed its own output), and the first ``blend`` frames of the new window
cross-fade from those probabilities to its own (docs/models.md, "How the live stream
joins its windows", says why). A window re-anchored mid-hop has no fade of its own:
its teacher-forced pass through the frames played is what joins it on (a fade in progress
goes on). At a fixed z the stream is the same, frame for frame and draw for draw, as when
it decoded a whole hop at once.

One :class:`Stream` decodes any number of voices, one batched model call per step for all of
them: each voice has its own z, recurrent state, history of decided frames, gate and dice; one
voice is a bank of one (:meth:`Stream.next_frame`). The hop grid is shared: windows begin on the
same frames for every voice, so their teacher-forced passes, the expensive part of a step, are one
batched pass. A voice that starts mid-hop (a touch down) begins its first window at once, from no
context, and joins the grid at the next boundary: a window cut short, as a re-anchored one is.
Voice k of a bank plays, draw for draw, what a bank of one seeded ``seed + k`` plays; its draws
(one a pitch a frame) are read through a buffer of ``DRAW_ROWS`` frames. For a model of onsets
a frame is the pitches and then their onsets (``notes.Gate``), and both are fed back. For a model
whose notes of a frame are chosen together (``models/mixture.py``) each voice draws two more
numbers a frame: one picks the frame's component (the likeliest at temperature 0), and the gate,
the density and the lean work on that component's chances; in a fade, the other picks which
window's frame plays, the new one's with the fade's weight, so its notes are not averaged with
another chord's (at temperature 0 the chances are cross-faded as for one component).

Pure: torch and numpy, no IO. :func:`live_stream` builds a checkpoint's stream the one way
``serve``, offline takes and the measurements all use.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal

import numpy as np
import torch

from ..data.meter import bar_steps, meter_columns
from ..errors import ConfigError
from .decoder import Decoder
from .key import Lean, lean_probabilities
from .notes import Gate, NoteSettings
from .states import empty_states, put_states, take_states

if TYPE_CHECKING:
    from ..checkpoint import Checkpoint

DENSITY_RANGE = 4.0  # logits added at density 0 or 1 (0.5 adds none)
REANCHOR_SHARE = 0.02  # a pad move of this share of the pad's diagonal re-anchors an h_0-only model mid-hop
DRAW_ROWS = 64  # frames of draws buffered per voice
_KEY_COLUMNS = np.eye(12)  # a key signature's one-hot columns, for a decoder told the key
_JOINS = (None, "hop", "move")  # a voice's join code this step: 0 runs on, 1 a window on the grid, 2 re-anchored
_RUN, _HOP, _MOVE = 0, 1, 2


def blend_frames(hop: int, context: int, blend: int | None = None) -> int:
    """Frames faded across a window join: ``blend`` (at most a hop), or by default half the context."""
    return min(hop, max(1, context // 2)) if blend is None else min(blend, hop)


def density_bias(density: float) -> float:
    """Logit offset for ``density`` in 0..1: 0.5 plays the model as it is, 1 sounds readily."""
    return (2.0 * float(density) - 1.0) * DENSITY_RANGE


@dataclass
class DecodedFrame:
    index: int  # of the frame in the whole stream
    probs: np.ndarray  # (P,) probabilities of sounding, after density and blending
    frame: np.ndarray  # (P,) bool: what sounds, as decided by the gate
    join: Literal["hop", "move"] | None  # a window began here: on the hop grid, or re-anchored by a pad move
    struck: np.ndarray | None = None  # (P,) bool: where a note starts (a model of onsets), else None


@dataclass
class Chunk:
    start: int  # index of the first frame in the whole stream
    probs: np.ndarray  # (hop, P) probabilities of sounding after density and blending
    frames: np.ndarray  # (hop, P) bool: what sounds, as decided by the gate
    struck: np.ndarray | None = None  # (hop, P) bool: where notes start (a model of onsets)


class VoiceStream:
    """One started voice, as seen from outside: its counts and history (the bank holds the arrays)."""

    def __init__(self, bank: "Stream", k: int) -> None:
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

    @property
    def sounding(self) -> np.ndarray:
        """``(P,)`` bool: its pitches the gate holds on."""
        return self._bank._gates.on[self.k].copy()


class Stream:
    """Streams for ``voices`` voices over one model, decoded together one frame per :meth:`step`.

    Voice k's draws come from a generator seeded ``seed + k``. A voice decodes only while it is
    started (:meth:`start`, :meth:`stop`); the shared hop grid counts frames from the bank's first
    step. One voice: :meth:`next_frame` and :meth:`next_chunk` start voice 0 and step it alone.
    """

    def __init__(self, model: Decoder, window: int, hop: int, voices: int = 1,
                 settings: NoteSettings | None = None, blend: int | None = None, seed: int = 0,
                 reanchor_distance: float = 0.0, onsets: bool = False, meter: tuple[int, int] | None = None,
                 key: int = 0):
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
        model.reseed(seed)  # a model that draws its own noise (the VRNN's z_t) repeats with the take
        # z fed at every step reaches the next frame through the running state; z only in h_0 needs a new window
        self.z_every_step = bool(model.z_fed_every_step)
        self.reanchor_distance = float(reanchor_distance)  # 0: any move re-anchors an h_0-only model
        # a frame's columns: the pitches, and their onsets for a model of onsets
        self.n_columns = n = model.n_columns
        self.onsets = onsets
        self.n_pitches = p = n // 2 if onsets else n
        self.mixture = getattr(model, "components", 1) > 1  # a frame's notes drawn from one of several frames
        # a voice's draws a frame: one a pitch; for a mixture then the component's, and the window a fade plays
        self.n_draws = p + 2 if self.mixture else p
        self.count = voices
        self.voices: list[VoiceStream | None] = [None] * voices
        self.frame = 0  # steps taken: the shared hop grid's clock
        # a model of the meter: (steps a beat, steps a bar), and the step of the song at frame 0 (align())
        self.meter, self.first_step = meter, 0
        # a decoder told the key (models/keys.py): the key signature each voice plays in, `key` unless set_key
        self.keyed = bool(getattr(model, "keyed", False))
        self.key = key
        self._keys = np.full(voices, key, np.int64)
        self.model_calls = 0  # batched calls to the model, for tests and the benchmark
        # every voice's part of the stream, one row a voice
        self._started = np.zeros(voices, bool)
        self._active = np.zeros(0, np.int64)  # the started voices, ascending
        self._state = None  # batched state of every voice (a row is stale until the voice's first window)
        self._has_state = np.zeros(voices, bool)  # its row predicts the next frame once `_fed` is fed
        self._fed = np.zeros((voices, n), np.float32)  # the last decided frame, not yet fed
        self._anchor_z: np.ndarray | None = None  # (voices, L) the z each window's h_0 came from
        self._gates = Gate(voices, p, self.settings)
        self._rngs: list[np.random.Generator | None] = [None] * voices
        self._draws = np.zeros((voices, DRAW_ROWS, self.n_draws))  # each voice's next draws, from its own generator
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

    def set_key(self, k: int, key: int | None) -> None:
        """Voice ``k`` plays in key signature ``key`` (0..11, 0 is C major or A minor; None: the stream's
        own) from its next frame, for a decoder told the key; a decoder that is not, plays as it would."""
        self._keys[k] = self.key if key is None else int(key) % 12

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
        """The next frame of draws ``(B, n_draws)`` of voices ``rows``, each from its own generator: one a
        pitch, and for a mixture then one that picks the frame's component and one that picks the window a
        fade plays (:meth:`step`)."""
        drawn = self._drawn[rows]
        if drawn.max() >= DRAW_ROWS:  # once every DRAW_ROWS frames of draws a voice
            for k in rows[drawn >= DRAW_ROWS]:
                self._draws[k] = self._rngs[k].random((DRAW_ROWS, self.n_draws))
                self._drawn[k] = 0
            drawn = self._drawn[rows]
        draws = self._draws[rows, drawn]
        self._drawn[rows] = drawn + 1
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

    def _logits(self, state, draws: np.ndarray | None) -> torch.Tensor:
        """The model's logits ``(B, C)`` for the next frame; of a mixture, the component the draws' column
        ``P`` picks (the likeliest without draws)."""
        if not self.mixture:
            return self.model.logits(state)
        pick = None if draws is None else torch.as_tensor(draws[:, -2], dtype=torch.float64, device=self.device)
        return self.model.logits(state, pick)

    def _input(self, frames: np.ndarray, step: int) -> torch.Tensor:
        """What the model is fed: decided frames ``(B, C)`` or ``(B, T, C)``, the first of them the frame
        before stream frame ``step``, each with the meter of the step after it for a model of the meter."""
        if self.meter is None:
            return self._tensor(frames)
        steps = self.first_step + step + np.arange(frames.shape[1] if frames.ndim == 3 else 1)
        meter = meter_columns(steps, *self.meter)  # (T, M)
        meter = np.broadcast_to(meter if frames.ndim == 3 else meter[0], (*frames.shape[:-1], meter.shape[-1]))
        return self._tensor(np.concatenate([frames, meter], axis=-1))

    def align(self, step: int) -> None:
        """The frame decoded next falls on step ``step`` of the song (a step 0 is a downbeat): a clock that
        knows where the song is (a DAW's Song Position Pointer, Link's beat) puts a model of the meter there."""
        self.first_step = step - self.frame

    @torch.inference_mode()
    def step(self, zs: dict[int, np.ndarray], densities: dict[int, float] | None = None,
             temperature: float = 0.0, leans: dict[int, Lean] | None = None,
             cut: frozenset[int] = frozenset()) -> dict[int, DecodedFrame]:
        """The next frame of every started voice, from its z ``(L,)`` in ``zs`` (keyed by voice).

        ``leans``: how the starts of a voice's notes lean to a key and a chord (``key.py``), none
        for a voice left out; the voices in ``cut`` end their sounding notes outside their lean now.
        """
        model = self.model
        active = self._active
        order = active.tolist()
        if len(zs) != len(order) or any(k not in zs for k in order):
            raise ValueError(f"z for voices {sorted(zs)}, but voices {active.tolist()} are started")
        if not len(active):
            self.frame += 1
            return {}
        z = np.array([zs[k] for k in order], dtype=np.float64)  # (B, L)
        if self.keyed:  # the decoder's code: z and the voice's key (a new key reaches the next frame, as a new z)
            z = np.concatenate([z, _KEY_COLUMNS[self._keys[active]]], axis=1)
        densities = densities or {}
        bias = np.array([density_bias(densities.get(k, 0.5)) for k in order])  # (B,)
        if self._anchor_z is None:
            self._anchor_z = np.zeros((self.count, z.shape[1]))
        everyone = len(active) == self.count  # every voice started: its rows are the whole state
        rows = slice(None) if everyone else active  # a view of every voice's arrays is cheaper than an index

        # how each voice's frame begins: runs on, a window on the hop grid, or re-anchored by a move
        if self.frame % self.hop == 0:
            joins = np.full(len(active), _HOP)
        else:
            joins = np.where(self._has_state[rows], _RUN, _HOP)
            if not self.z_every_step:
                moved = np.sqrt(np.square(z - self._anchor_z[rows]).sum(axis=1))
                joins[(joins == _RUN) & (moved > 0) & (moved >= self.reanchor_distance)] = _MOVE
        runs = joins == _RUN
        all_run = bool(runs.all())  # most frames: every voice takes one step, nothing else happens

        if all_run:
            state, index = self._rows(active, everyone)
            state = model.advance(self._input(self._fed[rows], self.frame), state, self._tensor(z))
            self.model_calls += 1
            self._put(active, index, state)
        else:
            self._join_windows(active, joins, runs, z, bias, temperature, everyone)

        state = self._state if everyone else take_states(self._state, torch.as_tensor(active, device=self.device))
        draws = self._draw(active) if temperature > 0 else None
        logits = self._logits(state, draws)  # (B, C)
        self.model_calls += 1
        if len(bias) == 1 or (bias == bias[0]).all():  # one density for all: a scalar, none at 0.5 (sigmoid(-0.) = 0.5)
            logits = logits + float(bias[0]) if bias[0] else logits
        else:
            logits = logits + torch.as_tensor(bias, dtype=logits.dtype, device=logits.device)[:, None]
        probs = torch.sigmoid(logits).double().cpu().numpy()  # (B, P)

        if self._fading[rows].any():  # the first `blend` frames of a window fade in from the look past
            fading = np.flatnonzero(self._fading[rows])
            voices = active[fading]
            done = self._fade[voices]
            alpha = ((done + 1) / (self.blend + 1))[:, None]
            # for a model of onsets only where notes start fades: whether a sounding note holds is the new window's
            # call, fed the frames played, where the look past, run blind, knows none of the notes struck since
            fades = slice(self.n_pitches, None) if self.onsets else slice(None)
            new, old = probs[fading, fades], self._tails[voices, done, fades]
            if self.mixture and draws is not None:  # one window's frame or the other's, whole: its notes stay together
                probs[fading, fades] = np.where(draws[fading, -1:] < alpha, new, old)
            else:
                probs[fading, fades] = (1 - alpha) * old + alpha * new
            self._fade[voices] = done + 1
            self._fading[voices] = done + 1 < self.blend

        barred = cutting = None
        if leans:
            barred, cutting = self._lean(order, rows, probs, leans, cut)
        if draws is not None:
            draws = draws[:, :self.n_pitches]
        frames = self._gates.step(None if everyone else active, probs, temperature, draws, barred, cutting)  # (B, C)
        self._fed[rows] = frames
        if self.context:
            self._ring[rows, self._ring_at] = frames
            self._ring_at = (self._ring_at + 1) % self.context
            self._history[rows] = np.minimum(self._history[rows] + 1, self.context)
        positions = self._position[rows].tolist()
        self._position[rows] += 1
        self.frame += 1
        p = self.n_pitches
        struck = frames[:, p:] if self.onsets else [None] * len(order)
        return {k: DecodedFrame(index=i, probs=q[:p], frame=f[:p], join=_JOINS[j], struck=o)
                for k, i, q, f, j, o in zip(order, positions, probs, frames, joins.tolist(), struck)}

    def _lean(self, order: list[int], rows, probs: np.ndarray, leans: dict[int, Lean],
              cut: frozenset[int]) -> tuple[np.ndarray, np.ndarray]:
        """Lean the chances of a note starting (``key.py``), in place on ``probs (B, C)``: a model of
        onsets's onsets, else a silent pitch's chance of sounding (a sounding one goes on as it
        would). Returns the gate's barred pitches and the sounding ones cut now, each ``(B, P)``."""
        p = self.n_pitches
        on = self._gates.on[rows]
        barred = np.zeros(on.shape, bool)
        cutting = np.zeros(on.shape, bool)
        for i, k in enumerate(order):
            lean = leans.get(k)
            if lean is None:
                continue
            if self.onsets:
                probs[i, p:] = lean_probabilities(probs[i, p:], lean.weights)
            else:
                probs[i] = np.where(on[i], probs[i], lean_probabilities(probs[i], lean.weights))
            barred[i] = lean.barred
            if k in cut:
                cutting[i] = lean.outside & on[i]
        return barred, cutting

    def next_frame(self, z: np.ndarray, density: float = 0.5, temperature: float = 0.0) -> DecodedFrame:
        """One voice's next frame from latent ``z (L,)``, the z of this moment (voice 0 starts on the first call)."""
        if not self._started[0]:
            self.start(0)
        return self.step({0: z}, {0: density}, temperature)[0]

    def next_chunk(self, z: np.ndarray, density: float = 0.5, temperature: float = 0.0) -> Chunk:
        """One voice's next ``hop`` frames, all at latent ``z (L,)`` (a take at a fixed z; ``serve`` decodes per frame)."""
        decoded = [self.next_frame(z, density, temperature) for _ in range(self.hop)]
        return Chunk(start=decoded[0].index, probs=np.stack([f.probs for f in decoded]),
                     frames=np.stack([f.frame for f in decoded]),
                     struck=np.stack([f.struck for f in decoded]) if self.onsets else None)

    def _join_windows(self, active: np.ndarray, joins: np.ndarray, runs: np.ndarray, z: np.ndarray,
                      bias: np.ndarray, temperature: float, everyone: bool) -> None:
        """A step where some voices begin a window: the rest run on, then the joining voices look
        past their old window (on the hop grid) and begin their new one, each part batched."""
        model = self.model
        running = np.flatnonzero(runs)  # positions in `active`
        if len(running):  # one advance for every voice that runs on
            rows = active[running]
            state, index = self._rows(rows, False)
            state = model.advance(self._input(self._fed[rows], self.frame), state, self._tensor(z[running]))
            self.model_calls += 1
            self._put(rows, index, state)

        hopping = active[joins == _HOP]
        self._fading[hopping] = False
        self._fade[hopping] = 0
        if self.blend:
            looking = np.flatnonzero((joins == _HOP) & self._has_state[active])
            if len(looking):
                self._look_past(active, looking, z, bias, temperature, everyone and len(looking) == len(active))

        joining = np.flatnonzero(~runs)
        self._begin_windows(active, joining, joins, z, everyone and len(joining) == len(active))

    def _look_past(self, active: np.ndarray, looking: np.ndarray, z: np.ndarray, bias: np.ndarray,
                   temperature: float, whole: bool) -> None:
        """The windows being replaced run ``blend`` frames on, undecided, for the cross-fade: batched."""
        model = self.model
        rows = active[looking]
        zt = self._tensor(z[looking])
        state, _ = self._rows(rows, whole)
        frame = self._fed[rows]  # (B, C)
        offsets = torch.as_tensor(bias[looking], dtype=torch.float32, device=self.device)[:, None]
        for i in range(self.blend):
            state = model.advance(self._input(frame, self.frame + i), state, zt)
            draws = self._draw(rows) if temperature > 0 else None
            p = torch.sigmoid(self._logits(state, draws) + offsets).double().cpu().numpy()  # (B, C)
            self.model_calls += 2
            self._tails[rows, i] = p
            if temperature > 0:  # nothing is decided; a pitch's one draw serves its onset too
                picks = np.tile(draws[:, :self.n_pitches], self.n_columns // self.n_pitches) < p
            else:
                picks = p >= 0.5
            frame = picks
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
                context = self._ring[members[:, None], self._ring_slots(teacher)[None, :]]  # (B, teacher, C)
                state = model.advance(self._input(context, self.frame - teacher + 1), state, zt)
                self.model_calls += 1
            self._put(members, None if whole and len(lengths) == 1 else torch.as_tensor(members, device=self.device),
                      state)
        self._has_state[rows] = True
        self._anchor_z[rows] = z[joining]
        hop = joins[joining] == _HOP
        self._windows[rows[hop]] += 1
        self._reanchors[rows[~hop]] += 1


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
    plane = checkpoint.latent_plane()
    return REANCHOR_SHARE * float(np.linalg.norm(plane.z_at(1.0, 1.0) - plane.z_at(0.0, 0.0)))


def live_stream(checkpoint: "Checkpoint", hop: int | None = None, notes: NoteSettings | None = None,
                seed: int = 0, voices: int = 1) -> Stream:
    """The stream ``serve`` plays from ``checkpoint``: its model and window, hop from :func:`live_hop`, and
    ``notes`` whose polyphony, where it is ``SONGS``, is the checkpoint's songs' (``Checkpoint.polyphony``)."""
    data = checkpoint.config.data
    meter = (data.steps_per_beat, bar_steps(checkpoint.bar_quarters, data.steps_per_beat)) if data.fed_meter else None
    notes = (notes or NoteSettings()).for_songs(checkpoint.polyphony)
    return Stream(checkpoint.model, data.window, live_hop(checkpoint, hop), voices, notes, seed=seed,
                  reanchor_distance=reanchor_distance(checkpoint), onsets=data.onsets, meter=meter,
                  key=checkpoint.songs_key)
