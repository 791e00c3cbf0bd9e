"""Models: one interface (encode, loss_terms, initial_state / logits / advance) for all."""

from ..config import ModelConfig
from .vrae import VRAE, LossTerms, gaussian_kl


def build_model(n_pitches: int, config: ModelConfig) -> VRAE:
    """The model a config names, for piano rolls of ``n_pitches`` columns."""
    if config.model == "vrae":
        return VRAE(n_pitches, config)
    raise ValueError(f"unknown model {config.model!r}")


__all__ = ["VRAE", "LossTerms", "build_model", "gaussian_kl"]
