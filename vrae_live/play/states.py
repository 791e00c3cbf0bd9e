"""Batched recurrent states by row: one row a voice, for every model's kind of state.

A state is ``(1, B, H)`` (a GRU's or tanh RNN's h), an LSTM's pair of them, or a dataclass of
``(B, ...)`` tensors or None (the VRNN's). The stream takes the rows of the voices that step and
puts them back, so one batched state serves voices that come and go.
"""

from __future__ import annotations

from typing import Callable

import torch


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
