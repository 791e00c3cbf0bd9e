"""Synthetic MIDI clocks for the delay-locked loop: tick times at a tempo (or a tempo per tick),
jitter, and what the loop predicted for each tick. Shared by the tests and ``scripts/bench_live.py``."""

from __future__ import annotations

import numpy as np

from ..live.sync.dll import TICKS_PER_BEAT, ClockDLL


def tick_times(bpms, start: float = 0.0) -> np.ndarray:
    """The time of each tick, ``bpms[i]`` being the tempo from tick ``i`` to ``i + 1``."""
    periods = 60.0 / (np.asarray(bpms, dtype=np.float64) * TICKS_PER_BEAT)
    return start + np.concatenate([[0.0], np.cumsum(periods[:-1])])


def jittered(times: np.ndarray, half_width_s: float, seed: int = 0) -> np.ndarray:
    """Each tick moved by a uniform random amount in +-``half_width_s``."""
    return times + np.random.default_rng(seed).uniform(-half_width_s, half_width_s, len(times))


def predictions(arrivals: np.ndarray, dll: ClockDLL | None = None) -> np.ndarray:
    """For each tick, the time the loop predicted for it just before it arrived (nan for the first).

    The transport is started before the first tick, so tick ``i`` is position ``i``."""
    dll = dll or ClockDLL()
    dll.start()
    out = np.full(len(arrivals), np.nan)
    for i, t in enumerate(arrivals):
        predicted = dll.time_of(i)
        if predicted is not None:
            out[i] = predicted
        dll.clock(float(t))
    return out


def ticks_to_lock(errors: np.ndarray, since: int, tolerance_s: float) -> int:
    """Ticks after ``since`` until every later prediction is within ``tolerance_s``."""
    bad = np.nonzero(~(np.abs(errors[since:]) <= tolerance_s))[0]
    return int(bad.max()) + 1 if len(bad) else 0
