"""The key of a window, as a decoder that knows the key is told it (``ModelConfig.key_input``).

A key here is a key signature: the major key whose scale a window's notes keep to most, 0..11
(0: C major or A minor, 7: G major or E minor). It is found as Krumhansl & Kessler (1982) find a
key: the window's pitch-class histogram (each pitch counted in every frame it sounds) is
correlated with their major and minor profiles in all twelve keys, and the best of the 24 is
taken; a minor key gives its relative major's signature. A silent window is in C.

Training tells the decoder the key of each window it decodes, after the window has been
transposed (``training/batches.Transposer``), so a transposed window is told its new key; live,
the stream tells it the key to play in (``serve --key``, or the key its songs are most in).
"""

from __future__ import annotations

import torch

KEYS = 12
# Krumhansl & Kessler's probe-tone profiles, tonic first
MAJOR_PROFILE = (6.35, 2.23, 3.48, 2.33, 4.38, 4.09, 2.52, 5.19, 2.39, 3.66, 2.29, 2.88)
MINOR_PROFILE = (6.33, 2.68, 3.52, 5.38, 2.60, 3.53, 2.54, 4.75, 3.98, 2.69, 3.34, 3.17)


def _profiles() -> tuple[torch.Tensor, torch.Tensor]:
    """The 24 keys' profiles, centred, as columns ``(12, 24)``, and the signature of each ``(24,)``:
    C major .. B major, then C minor .. B minor (a minor key's signature is 3 semitones up)."""
    columns = []
    for profile in (MAJOR_PROFILE, MINOR_PROFILE):
        base = torch.tensor(profile, dtype=torch.float64)
        base = base - base.mean()
        columns += [torch.roll(base, tonic) for tonic in range(KEYS)]
    signatures = torch.cat([torch.arange(KEYS), (torch.arange(KEYS) + 3) % KEYS])
    return torch.stack(columns, 1), signatures


PROFILES, SIGNATURES = _profiles()  # made once: window_keys runs on every training batch of a decoder told the key


def window_keys(frames: torch.Tensor, pitch_classes: torch.Tensor) -> torch.Tensor:
    """The key signature ``(B,)`` (long, 0..11) of each window of ``frames (B, T, P)`` (what sounds,
    0/1), whose columns are pitches of classes ``pitch_classes (P,)``."""
    counts = frames.to(torch.float64).sum(1)  # (B, P)
    classes = torch.zeros(counts.shape[0], KEYS, dtype=torch.float64, device=counts.device)
    classes.index_add_(1, pitch_classes.to(counts.device), counts)  # (B, 12)
    centred = classes - classes.mean(1, keepdim=True)
    scores = centred @ PROFILES.to(counts.device)  # (B, 24): the correlation's numerator; its denominator is one per window
    keys = SIGNATURES.to(counts.device)[scores.argmax(1)]
    return torch.where(counts.sum(1) > 0, keys, torch.zeros_like(keys))


def key_columns(keys: torch.Tensor, dtype: torch.dtype = torch.float32) -> torch.Tensor:
    """Keys ``(B,)`` 0..11 to the one-hot columns ``(B, 12)`` a decoder is fed beside its code."""
    return torch.nn.functional.one_hot(keys.long(), KEYS).to(dtype)


def songs_key(windows: torch.Tensor, pitches) -> int:
    """The key signature most of ``windows (N, T, C)`` keep to (their columns first ``pitches``): the key a
    decoder told the key plays in when it is not given one."""
    classes = torch.as_tensor(list(pitches), dtype=torch.long) % KEYS
    keys = torch.cat([window_keys(part[..., :len(classes)].cpu(), classes) for part in windows.split(1024)])
    return int(torch.bincount(keys, minlength=KEYS).argmax()) if len(keys) else 0
