"""Models: one interface (encode, loss_terms, importance_weighted_bound, initial_state /
logits / advance, generate) for the VRAE, the VRNN and a plain RNN baseline."""

from typing import Sequence

from torch import nn

from ..config import Config, ModelConfig
from ..errors import ConfigError
from .rnn import RNN
from .vrae import VRAE, LossTerms, gaussian_kl
from .vrnn import VRNN

MODELS = {"vrae": VRAE, "vrnn": VRNN, "rnn": RNN}


def build_model(n_columns: int, config: ModelConfig, n_inputs: int | None = None, groups: int = 1) -> nn.Module:
    """The model a config names, for frames of ``n_columns`` columns (the pitches, and their onsets for a
    model of onsets: ``groups`` 2), fed ``n_inputs`` columns a step (a frame and the next step's meter; default: a frame)."""
    try:
        cls = MODELS[config.model]
    except KeyError:
        raise ValueError(f"unknown model {config.model!r}; known: {', '.join(MODELS)}") from None
    if config.bag_of_notes > 0 and config.model != "vrae":
        raise ConfigError(f"--bag-of-notes is for the vrae, whose one code holds a whole window; not the {config.model}")
    if config.components > 1 and config.model != "vrae":
        raise ConfigError(f"--components is for the vrae's decoder; the {config.model} draws each column on its own")
    if config.mixture_rank and config.model != "vrae":
        raise ConfigError(f"--mixture-rank is for the vrae's decoder; the {config.model} draws each column on its own")
    if config.key_input and config.model != "vrae":
        raise ConfigError(f"--key-input is for the vrae, whose decoder is told a window's key; not the {config.model}")
    if config.z_skip and config.model != "vrae":
        raise ConfigError(f"--z-skip is for the vrae, whose output reads its one code; not the {config.model}")
    if config.hold_gate and config.model != "vrae":
        raise ConfigError(f"--hold-gate is for the vrae's decoder; not the {config.model}")
    return cls(n_columns, config, n_inputs, groups)


def model_for(config: Config, pitches: int | Sequence[int]) -> nn.Module:
    """The model of ``config`` (its model and data settings) for ``pitches``: the MIDI pitches of its
    columns, or how many (a decoder told the key then has no key to find until ``set_pitches``)."""
    count = pitches if isinstance(pitches, int) else len(pitches)
    model = build_model(config.data.columns(count), config.model, config.data.inputs(count),
                        groups=config.data.columns(1))
    if not isinstance(pitches, int) and hasattr(model, "set_pitches"):
        model.set_pitches(pitches)
    return model


__all__ = ["MODELS", "RNN", "VRAE", "VRNN", "LossTerms", "build_model", "gaussian_kl"]
