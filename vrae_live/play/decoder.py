"""What the stream needs of a model: the VRAE, the VRNN and the plain RNN all have it."""

from __future__ import annotations

from typing import Protocol

import torch


class Decoder(Protocol):
    """The model's state is its own recurrent state, batched over voices (see ``states.py``).
    ``C = n_columns``: a frame's width."""

    n_columns: int  # of a frame: the pitches, and their onsets for a model of onsets
    z_fed_every_step: bool  # a new z reaches the next frame through advance(), not only through h_0

    def initial_state(self, z: torch.Tensor) -> object:
        """h_0 for latents ``z (B, L)``."""

    def advance(self, frames: torch.Tensor, state: object, z: torch.Tensor) -> object:
        """The state after feeding ``frames (B, C)`` (one step) or ``(B, T, C)`` (T steps)."""

    def logits(self, state: object) -> torch.Tensor:
        """The next frame's logits ``(B, C)``. A VRAE of ``components > 1`` (``models/mixture.py``) also takes
        ``pick (B,)``, uniform draws that choose each row's frame (the likeliest without)."""

    def reseed(self, seed: int) -> None:
        """Restart any noise the model draws of its own (the VRNN's z_t), so a take repeats."""

    def parameters(self): ...

    def eval(self) -> "Decoder": ...
