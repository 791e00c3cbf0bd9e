"""Where the trainer's windows come from: batches drawn by index, and bounded subsets for measuring.

A :class:`WindowBatches` hands the trainer ``draw(indices) -> (B, W, P)`` float32 on its
device, whatever holds the windows: a :class:`~vrae_live.data.store.StoredWindows` reads
and unpacks only the batch's windows from the memory-mapped roll store; an array in memory
(a small corpus built in a test) is kept on the device as one tensor, as before the store.
Which indices make an epoch's batches is the trainer's business (``Trainer._epoch_order``).

The end-of-epoch figures (validation bound, posterior means for the pad's plane, the window
map) see at most ``MEASURED_WINDOWS`` windows, an even subsample: every window of a corpus
smaller than that, so its figures are those of all its windows.
"""

from __future__ import annotations

import numpy as np
import torch

from ..data.corpus import WindowSet
from ..data.store import StoredWindows
from ..songmap import subsample, window_starts

MEASURED_WINDOWS = 8192  # (8192, 50, 49) uint8 is 20 MB


class WindowBatches:
    """Training batches of ``windows`` (``(N, W, P)``, in memory or stored) by window index."""

    def __init__(self, windows: np.ndarray | StoredWindows, device: torch.device) -> None:
        self.windows = windows
        self.device = device
        # A small corpus in memory stays one tensor on the device: a batch is a gather there.
        self.x = (torch.from_numpy(np.asarray(windows)).to(device=device, dtype=torch.float32)
                  if isinstance(windows, np.ndarray) else None)  # (N, W, P)

    def __len__(self) -> int:
        return len(self.windows)

    @property
    def steps(self) -> int:
        """Time steps of a window."""
        return self.windows.shape[1]

    def draw(self, indices: torch.Tensor) -> torch.Tensor:
        """The windows ``indices`` (``(B,)`` int64), ``(B, W, P)`` float32 on the device."""
        if self.x is not None:
            return self.x[indices.to(self.device)]
        # numpy's cast, not torch's: torch casts with its thread pool, which on a busy machine took
        # 12 ms for a batch numpy casts in 0.05 ms (docs/scale.md)
        batch = self.windows[indices.numpy()].astype(np.float32)  # (B, W, P), read from the store
        return torch.from_numpy(batch).to(self.device, non_blocking=True)


class MeasuredWindows:
    """The windows a set's figures are taken on: all of them, or an even subsample of ``MEASURED_WINDOWS``.

    ``x`` (n, W, P) uint8 tensor on the device (``array``: the same in numpy); ``song`` (n,) index into the set's song names;
    ``starts`` (n,) first step of each in its song.
    """

    def __init__(self, windows: WindowSet, hop: int, device: torch.device, limit: int | None = None) -> None:
        keep = subsample(len(windows.x), MEASURED_WINDOWS if limit is None else limit)
        if isinstance(windows.x, StoredWindows):
            x, starts = windows.x[keep], windows.x.starts(keep)
        else:
            x, starts = np.asarray(windows.x)[keep], window_starts(windows.song, hop)[keep]
        self.keep = keep
        self.array = np.ascontiguousarray(x, dtype=np.uint8)  # (n, W, P)
        self.x = torch.from_numpy(self.array).to(device)  # (n, W, P) uint8; shares self.array on the CPU
        self.song = np.asarray(windows.song[keep])  # (n,)
        self.starts = starts
        self.all = len(keep) == len(windows.x)

    def __len__(self) -> int:
        return len(self.keep)


class Transposer:
    """Training windows moved by a random number of semitones, within ``max_shift`` either way.

    A window moves only where every note it holds lands on one of the model's ``pitches`` (the
    pitches kept need not be a contiguous range), so no note is lost; one with nowhere to go stays
    where it is. The shifts come from ``draws`` (``Transposer.draws``), one row per window, drawn
    for the global batch so that a batch shared among processes moves as it would in one.
    """

    def __init__(self, pitches: list[int], max_shift: int, device: torch.device, columns: int | None = None) -> None:
        self.max_shift = max_shift
        self.columns = columns or len(pitches)  # of the frames (the pitches, and their onsets); any after stay
        self.pitches = torch.tensor(pitches, device=device)  # (P,)
        # kept[s, j]: the pitch a shift s - max_shift takes pitch j to is one of the model's, and its index
        shifted = self.pitches[None, :] + torch.arange(-max_shift, max_shift + 1, device=device)[:, None]  # (S, P)
        self.target = torch.searchsorted(self.pitches, shifted).clamp(max=len(pitches) - 1)  # (S, P)
        self.kept = self.pitches[self.target] == shifted  # (S, P)

    def draws(self, n: int, generator: torch.Generator) -> torch.Tensor:
        """Random numbers ``(n, S)`` that choose the shifts of ``n`` windows."""
        return torch.rand((n, 2 * self.max_shift + 1), generator=generator)

    def __call__(self, batch: torch.Tensor, draws: torch.Tensor) -> torch.Tensor:
        """``batch (B, W, C [+ M])`` with each window moved by the shift its row of ``draws (B, S)`` picks; a
        new tensor. ``C`` is the ``P`` pitches, or ``2P`` with their onsets after them (moved alike); the
        meter after them, if any, stays."""
        parts = self.columns // len(self.pitches)
        x = batch[..., :self.columns].unflatten(2, (parts, len(self.pitches)))  # (B, W, parts, P)
        sounding = x[:, :, 0].amax(1) > 0  # (B, P)
        allowed = ~(sounding[:, None, :] & ~self.kept[None]).any(-1)  # (B, S): every note lands on a pitch
        shift = torch.where(allowed, draws.to(batch.device), -1.0).argmax(1)  # (B,) a uniform choice among the allowed
        target = self.target[shift][:, None, None, :].expand_as(x)  # (B, W, parts, P) where each pitch goes
        moved = torch.zeros_like(x)
        # pitches moved off the model's add nothing (their window was not allowed that shift)
        moved.scatter_add_(3, target, x * self.kept[shift][:, None, None, :])
        return torch.cat([moved.flatten(2), batch[..., self.columns:]], dim=2)
