"""Models: one interface (encode, loss_terms, importance_weighted_bound, initial_state /
logits / advance, generate) for the VRAE, the VRNN and a plain RNN baseline."""

from torch import nn

from ..config import ModelConfig
from ..errors import ConfigError
from .rnn import RNN
from .vrae import VRAE, LossTerms, gaussian_kl
from .vrnn import VRNN

MODELS = {"vrae": VRAE, "vrnn": VRNN, "rnn": RNN}


def build_model(n_columns: int, config: ModelConfig) -> nn.Module:
    """The model a config names, for frames of ``n_columns`` columns: the pitches, and their onsets for a model of onsets."""
    try:
        cls = MODELS[config.model]
    except KeyError:
        raise ValueError(f"unknown model {config.model!r}; known: {', '.join(MODELS)}") from None
    if config.bag_of_notes > 0 and config.model != "vrae":
        raise ConfigError(f"--bag-of-notes is for the vrae, whose one code holds a whole window; not the {config.model}")
    return cls(n_columns, config)


__all__ = ["MODELS", "RNN", "VRAE", "VRNN", "LossTerms", "build_model", "gaussian_kl"]
