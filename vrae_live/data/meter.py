"""Where each step falls in the beat and the bar: the meter a model of the beat grid may be told.

A song's bar is read from its first time signature (``bar_quarters``: 4/4 is 4 quarter notes,
6/8 is 3, 4/2 is 8); a file without one is in 4/4, as MIDI says. Step 0 of a song is a
downbeat. A step's meter is two one-hot groups (:func:`meter_columns`): its step within the
beat (``steps_per_beat`` columns) and its beat within the bar (``MAX_BAR_BEATS`` columns, the
last shared by the beats past it).

A model of the meter is fed, with each frame, the meter of the step after it: the step it is
about to predict (``data.windows`` and ``StoredWindows`` append it to each frame; the live
stream appends it to each frame it feeds back, counting steps from the take's first downbeat).
"""

from __future__ import annotations

import numpy as np

from ..config import MAX_BAR_BEATS

DEFAULT_BAR_QUARTERS = 4.0  # no time signature: 4/4


def meter_size(steps_per_beat: int) -> int:
    """Columns of a step's meter (``DataConfig.inputs`` counts them alike)."""
    return steps_per_beat + MAX_BAR_BEATS


def bar_steps(bar_quarters: float, steps_per_beat: int) -> int:
    """Steps in a bar of ``bar_quarters`` quarter notes (at least one)."""
    return max(1, round(bar_quarters * steps_per_beat))


def meter_columns(steps: np.ndarray, steps_per_beat: int, bar: int) -> np.ndarray:
    """``(N, M)`` uint8: the meter of each step number in ``steps (N,)``, in bars of ``bar`` steps."""
    in_bar = np.asarray(steps, dtype=np.int64) % bar
    out = np.zeros((len(in_bar), meter_size(steps_per_beat)), dtype=np.uint8)
    rows = np.arange(len(in_bar))
    out[rows, in_bar % steps_per_beat] = 1
    out[rows, steps_per_beat + np.minimum(in_bar // steps_per_beat, MAX_BAR_BEATS - 1)] = 1
    return out


def bar_quarters_of(content: bytes) -> float:
    """Quarter notes in a bar of a MIDI file's first time signature (``DEFAULT_BAR_QUARTERS`` without one)."""
    import symusic

    try:
        signatures = symusic.Score.from_midi(content).time_signatures.numpy()
    except Exception:  # noqa: BLE001 -- a file symusic cannot read: the roll's parser decides whether it is usable
        return DEFAULT_BAR_QUARTERS
    if not len(signatures["time"]):
        return DEFAULT_BAR_QUARTERS
    first = int(np.argmin(signatures["time"]))
    numerator, denominator = int(signatures["numerator"][first]), int(signatures["denominator"][first])
    if numerator < 1 or denominator < 1:
        return DEFAULT_BAR_QUARTERS
    return numerator * 4.0 / denominator
