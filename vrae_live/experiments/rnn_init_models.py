"""The supervised RNNs of the VRAE-initialisation study (``rnn_init.py``) and their starts from a VRAE.

A window classifier with the VRAE encoder's recurrence, a next-frame predictor with its
decoder's, and the copies of a trained VRAE's weights (and, for the predictor, its network
state for a code ``z``) into them.
"""

from __future__ import annotations

import torch
from torch import nn

from ..config import ModelConfig
from ..models import RNN, VRAE
from ..models.vrae import CELLS


class WindowClassifier(nn.Module):
    """An RNN over a window ``(B, W, P)`` and a linear layer on its last state: logits ``(B, C)``.

    The same recurrence as the VRAE's encoder (``encoder`` has its names and shapes), so its
    weights can start from one; ``reverse_input`` reads the window backwards, as that encoder does.
    """

    def __init__(self, n_pitches: int, hidden: int, classes: int, cell: str = "rnn", reverse_input: bool = True):
        super().__init__()
        self.reverse_input = reverse_input
        self.is_lstm = cell == "lstm"
        self.encoder = CELLS[cell](n_pitches, hidden, batch_first=True)  # W_in, W_enc, b_enc
        self.head = nn.Linear(hidden, classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.reverse_input:
            x = x.flip(1)
        _, state = self.encoder(x)
        h_end = (state[0] if self.is_lstm else state).squeeze(0)  # (B, H)
        return self.head(h_end)  # (B, C)


def classifier_for(vrae_config: ModelConfig, n_pitches: int, classes: int) -> WindowClassifier:
    return WindowClassifier(n_pitches, vrae_config.hidden, classes, vrae_config.cell, vrae_config.reverse_input)


def predictor_for(vrae_config: ModelConfig, n_pitches: int) -> RNN:
    return RNN(n_pitches, ModelConfig(model="rnn", cell=vrae_config.cell, hidden=vrae_config.hidden))


def init_classifier_from_vrae(classifier: WindowClassifier, vrae: VRAE) -> list[str]:
    """Copy the VRAE's encoder into ``classifier.encoder``; the names of the parameters copied."""
    classifier.encoder.load_state_dict(vrae.encoder.state_dict())
    return [f"encoder.{name}" for name in vrae.encoder.state_dict()]


def init_predictor_from_vrae(predictor: RNN, vrae: VRAE, z: torch.Tensor) -> list[str]:
    """Copy the VRAE's decoder (recurrence and output layer) into ``predictor``, and set its
    initial state to the decoder's for code ``z (L,)``: ``tanh(h0) = tanh(W_z z + b_z)``.
    The names of the parameters set."""
    if vrae.config.z_every_step:
        raise ValueError("a decoder fed z at every step has more inputs than a plain RNN")
    predictor.rnn.load_state_dict(vrae.decoder.state_dict())
    predictor.to_logits.load_state_dict(vrae.to_logits.state_dict())
    with torch.no_grad():
        predictor.h0.copy_(vrae.to_h0(z.reshape(1, -1))[0])
    return ([f"rnn.{name}" for name in vrae.decoder.state_dict()]
            + [f"to_logits.{name}" for name in vrae.to_logits.state_dict()] + ["h0"])
