"""The songs' own contrast (measure/contrast.py), on rolls made in code."""

from __future__ import annotations

import numpy as np
import pytest

from vrae_live.measure.contrast import ALIKE, excerpts, measure_contrast

PITCHES = np.arange(36, 96)


def song(rng: np.random.Generator, pool, frames: int = 512, notes_per_frame: int = 3) -> np.ndarray:
    """A roll ``(frames, 128)`` of random chords drawn from the pitches in ``pool``, changing every 4 frames."""
    roll = np.zeros((frames, 128), bool)
    for start in range(0, frames, 4):
        roll[start:start + 4, rng.choice(pool, notes_per_frame, replace=False)] = True
    return roll


def test_songs_in_other_keys_and_registers_contrast_and_songs_of_one_cloth_do_not():
    rng = np.random.default_rng(0)
    c_major_low = [36, 40, 43, 48, 52, 55]
    f_sharp_high = [78, 82, 85, 90, 94, 73]
    varied = [song(rng, c_major_low), song(rng, f_sharp_high), song(rng, c_major_low)]
    contrast = measure_contrast(varied, PITCHES)
    assert contrast.ratio > 4 * ALIKE and contrast.caveat() is None, contrast.line()
    assert contrast.typical < contrast.ratio  # the pair of like songs pulls the mean down
    alike = [song(rng, range(48, 72)) for _ in range(4)]  # four songs from one pool: no song is its own
    contrast = measure_contrast(alike, PITCHES)
    assert contrast.ratio < ALIKE and "differ little" in contrast.caveat(), contrast.line()
    assert contrast.songs == 4 and contrast.excerpts == 4 * 7  # 512 frames: excerpts of 128 every 64


def test_rolls_of_all_128_pitches_are_cut_to_the_models():
    rng = np.random.default_rng(1)
    rolls = [song(rng, [40, 44, 47]), song(rng, [60, 64, 67, 70])]
    full = measure_contrast(rolls, PITCHES)
    cut = measure_contrast([r[:, PITCHES] for r in rolls], PITCHES)
    assert full.ratio == pytest.approx(cut.ratio)


def test_too_little_to_measure_gives_none():
    rng = np.random.default_rng(2)
    assert measure_contrast([song(rng, [60, 64, 67])], PITCHES) is None  # one song
    short = [song(rng, [60, 64, 67], frames=100), song(rng, [62, 65, 69], frames=100)]
    assert measure_contrast(short, PITCHES) is None  # one excerpt each: nothing to set a song against itself
    silent = np.zeros((512, 128), bool)
    assert measure_contrast([silent, song(rng, [60, 64, 67])], PITCHES) is None  # one song with notes


def test_a_song_shorter_than_an_excerpt_is_one_excerpt():
    roll = np.ones((100, 5), bool)
    assert [len(e) for e in excerpts(roll)] == [100]
    assert [len(e) for e in excerpts(np.ones((256, 5), bool))] == [128, 128, 128]
