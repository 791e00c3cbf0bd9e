"""The pad's axes: attributes of hand-built windows, the AR-VAE loss, --pad-axes, the plane, the
controllability measure's ranks, and a small model trained with them."""

from __future__ import annotations

import re

import numpy as np
import pytest
import torch

from vrae_live.config import load_config
from vrae_live.data.attributes import (
    attributes,
    axis_words,
    pad_labels,
    soft_attributes,
    starts_of,
    window_attributes,
)
from vrae_live.data.meter import meter_columns
from vrae_live.errors import ConfigError
from vrae_live.measure.axes import Levelling, ranks, slope, spearman
from vrae_live.pad import LatentPlane, latent_plane
from vrae_live.songmap import pad_coordinates
from vrae_live.training.axes import attribute_loss

PITCHES = [60, 62, 64, 65, 67, 69, 71, 72]  # C major, C4 to C5
ALL = ("onsets", "register", "range", "polyphony", "syncopation", "pitch-classes")


def notes(steps: int, placed: list[tuple[int, int, int]]) -> tuple[torch.Tensor, torch.Tensor]:
    """(sound, struck) ``(1, steps, P)`` with notes ``(start, length, column)``."""
    sound = torch.zeros(1, steps, len(PITCHES))
    struck = torch.zeros_like(sound)
    for start, length, column in placed:
        sound[0, start:start + length, column] = 1
        struck[0, start, column] = 1
    return sound, struck


def test_each_attribute_of_a_hand_built_window():
    # 16 steps at 4 a beat: C4 held 8 steps from step 0, G4 two steps from step 2 and again from step 5
    sound, struck = notes(16, [(0, 8, 0), (2, 2, 4), (5, 2, 4)])
    step_in_beat = torch.arange(16)[None] % 4
    onsets, register, span, polyphony, syncopation, classes = attributes(sound, struck, PITCHES, ALL, 4, step_in_beat)[0]
    assert onsets == pytest.approx(3 / 16 * 4)  # 3 notes in 4 beats
    assert register == pytest.approx((8 * 60 + 4 * 67) / 12)  # each note-frame counts
    assert span == 7
    assert polyphony == pytest.approx(12 / 8)  # 12 note-frames over the 8 frames where anything sounds
    assert syncopation == pytest.approx(2 / 3)  # steps 2 and 5 are off the beat, step 0 on it
    share = np.array([8, 4]) / 12
    assert classes == pytest.approx(-(share * np.log2(share)).sum())


def test_a_silent_window_has_nothing_to_measure_but_its_onsets():
    sound, struck = notes(8, [])
    values = attributes(sound, struck, PITCHES, ALL, 4, torch.zeros(1, 8))[0]
    assert values[0] == 0 and torch.isnan(values[1:]).all()


def test_syncopation_needs_to_know_where_the_beat_is():
    sound, struck = notes(8, [(1, 2, 0)])
    with pytest.raises(ConfigError, match="meter"):
        attributes(sound, struck, PITCHES, ["syncopation"], 4)


def test_windows_as_fed_give_the_same_attributes_as_their_parts():
    # onsets, then the next step's meter, as data.windows lays a model of both out
    sound, struck = notes(16, [(0, 3, 1), (3, 1, 5), (6, 4, 7)])
    meter = torch.as_tensor(meter_columns(np.arange(1, 17), 4, 16), dtype=torch.float32)[None]
    windows = torch.cat([sound, struck, meter], dim=2)
    fed = window_attributes(windows, PITCHES, ALL, onsets=True, steps_per_unit=4, steps_per_beat=4)
    direct = attributes(sound, struck, PITCHES, ALL, 4, torch.arange(16)[None] % 4)
    assert torch.allclose(fed, direct, equal_nan=True)
    # A binary roll: notes start where a pitch begins to sound (a note sounding at the window's start is not counted)
    roll = window_attributes(sound, PITCHES, ["onsets"], onsets=False, steps_per_unit=4, steps_per_beat=None)
    assert roll[0, 0] == pytest.approx(2 / 16 * 4)
    assert starts_of(sound)[0, 0].sum() == 0


def test_expected_attributes_of_certain_probabilities_are_the_attributes():
    sound, struck = notes(16, [(0, 3, 1), (3, 1, 5), (6, 4, 7)])
    for onsets, probs in ((True, torch.cat([sound, struck], 2)), (False, sound)):
        soft = soft_attributes(probs, PITCHES, ["onsets", "register"], onsets, 4)
        hard = window_attributes(probs, PITCHES, ["onsets", "register"], onsets, 4, None)
        assert torch.allclose(soft, hard)
    half = soft_attributes(torch.full((1, 8, 2 * len(PITCHES)), 0.5), PITCHES, ["onsets", "register"], True, 4)
    assert half[0, 0] == pytest.approx(0.5 * len(PITCHES) * 4) and half[0, 1] == pytest.approx(np.mean(PITCHES))


def test_the_decoders_term_teaches_the_decoder_not_the_codes():
    from vrae_live.models import model_for
    from vrae_live.training.axes import AxesLoss

    config = load_config("live-2d", {"hidden": 16, "window": 16, "meter": False, "axes_decoder": 1.0})
    torch.manual_seed(0)
    model = model_for(config, len(PITCHES))
    windows = (torch.rand(6, 16, 2 * len(PITCHES)) < 0.3).float()
    z = torch.randn(6, config.model.latent, requires_grad=True)
    loss = AxesLoss(config, PITCHES).decoder_term(model, z, windows, torch.randn(6, 2))
    loss.backward()
    assert loss > 0 and z.grad is None  # the codes are held; only the decoder moves
    assert model.decoder.weight_ih_l0.grad.abs().sum() > 0 and model.encoder.weight_ih_l0.grad is None
    with pytest.raises(ConfigError, match="not under torchrun"):
        AxesLoss(config, PITCHES, distributed=True)
    with pytest.raises(ConfigError, match="--axes-decoder measures onsets, register"):
        AxesLoss(load_config("live-2d", {"pad_axes": ["range", "register"], "axes_decoder": 1.0}), PITCHES)


def test_the_loss_is_small_when_the_codes_follow_the_attributes_and_pushes_them_to():
    a = torch.tensor([[1.0, 4.0], [2.0, 3.0], [3.0, 2.0], [4.0, 1.0]])  # x rises, y falls
    z_follows = a.clone()
    z_against = -a
    assert attribute_loss(z_follows, a, 10.0) < 0.01
    assert attribute_loss(z_against, a, 10.0) > 1.4  # every pair but the diagonal wrong, on both units
    z = torch.zeros(4, 2, requires_grad=True)
    attribute_loss(z, a, 10.0).backward()
    assert (torch.argsort(z.grad[:, 0]) == torch.tensor([3, 2, 1, 0])).all()  # descent raises the busiest most
    # a window with nothing to measure (NaN) is left out of its unit's pairs
    a_nan = a.clone()
    a_nan[0, 0] = float("nan")
    z = torch.zeros(4, 2, requires_grad=True)
    attribute_loss(z, a_nan, 10.0).backward()
    assert z.grad[0, 0] == 0 and z.grad[0, 1] != 0


def test_pad_axes_are_two_known_attributes_or_songs():
    assert load_config("paper-2d").model.pad_axes == ()
    assert load_config("live-2d", {"pad_axes": "range,polyphony"}).model.pad_axes == ("range", "polyphony")
    assert load_config("live-2d", {"pad_axes": "songs"}).model.pad_axes == ()
    for bad in ("onsets", "onsets,onsets", "onsets,loudness", "a,b,c"):
        with pytest.raises(ConfigError, match="two different attributes"):
            load_config("live-2d", {"pad_axes": bad})


def test_a_plane_of_named_axes_moves_the_first_two_units_and_holds_the_rest_at_the_mean():
    rng = np.random.default_rng(0)
    means = rng.normal(size=(200, 3)) * [1.0, 2.0, 0.5]
    song = np.repeat(np.arange(4), 50)
    plane = LatentPlane.from_meta(latent_plane(means, song, list("abcd"), attributes=("onsets", "register")))
    assert plane.attributes == ("onsets", "register")
    assert np.array_equal(plane.axes, np.eye(3)[:2])
    low, high = plane.z_at(0.0, 0.5), plane.z_at(1.0, 0.5)
    assert high[0] > low[0] and high[1] == low[1] and high[2] == low[2] == pytest.approx(means[:, 2].mean())
    assert LatentPlane.from_meta(latent_plane(means, song, list("abcd"))).attributes == ()


def test_a_levelled_plane_leans_x_on_y_and_reads_its_points_back():
    rng = np.random.default_rng(0)
    means = rng.normal(size=(2000, 3)) * [1.0, 2.0, 0.5]
    meta = latent_plane(means, np.repeat(np.arange(4), 500), list("abcd"), attributes=("onsets", "register"), lean=-0.3)
    plane = LatentPlane.from_meta(meta)
    assert np.allclose(plane.axes, [[1.0, -0.3, 0.0], [0.0, 1.0, 0.0]])
    step = plane.z_at(0.8, 0.5) - plane.z_at(0.2, 0.5)
    assert step[0] > 0 and step[1] == pytest.approx(-0.3 * step[0]) and step[2] == 0  # right is busier and a little lower
    for u, v in [(0.2, 0.7), (0.5, 0.5), (0.9, 0.1)]:
        z = plane.z_at(u, v)
        assert plane.position_of(z) == pytest.approx((u, v))
        assert pad_coordinates(z[None], meta)[0] == pytest.approx([u, v])
    # the pad spans the windows on its tilted coordinates: 2 % of them past each edge of y
    v = pad_coordinates(means, meta)[:, 1]
    assert np.mean(v < 0) == pytest.approx(0.02, abs=0.002) and np.mean(v > 1) == pytest.approx(0.02, abs=0.002)
    # untilted, the plane is the units themselves, as every plane of named axes was before levelling
    assert np.array_equal(latent_plane(means, np.zeros(2000), ["a"], attributes=("onsets", "register"))["axes"],
                          np.eye(3)[:2])


def test_a_slope_and_its_standard_error():
    rng = np.random.default_rng(1)
    x = np.repeat(np.linspace(-2, 2, 9), 16)
    y = 0.5 * x + rng.normal(scale=0.4, size=len(x))
    b, error = slope(x, y)
    assert b == pytest.approx(np.polyfit(x, y, 1)[0]) and abs(b - 0.5) < 3 * error
    assert error == pytest.approx(0.4 / np.sqrt(np.square(x - x.mean()).sum()), rel=0.2)
    assert slope(x, 2 * x)[1] == pytest.approx(0.0, abs=1e-12)
    assert slope(np.append(x, 1.0), np.append(2 * x, np.nan))[0] == pytest.approx(2.0)  # a take with no notes is left out
    assert all(np.isnan(slope(np.array([0.0, 1.0]), np.array([0.0, 1.0]))))
    assert all(np.isnan(slope(np.ones(5), np.arange(5.0))))


def test_what_a_levelling_says():
    names = ("onsets", "register")
    assert Levelling(names, -0.204, 0.24).line() == (
        "levelled: register moved +24% as far along x as along y; x now leans -0.204 of y's unit, so that it stays level")
    assert Levelling(names, 0.0, -0.01, clear=False).line() == "level: register moved -1% as far along x as along y, " \
        "not told from the dice"
    assert "not levelled: register does not rise along y" in Levelling(names, 0.0, float("nan")).line()


def test_what_the_musician_reads():
    assert axis_words("onsets") == "sparser → busier"
    assert pad_labels(("onsets", "register"))["y"] == {"name": "register", "low": "lower", "high": "higher"}
    assert pad_labels(()) is None


def test_spearman_on_ranks_with_ties():
    assert list(ranks(np.array([3.0, 1.0, 3.0, 2.0]))) == [2.5, 0.0, 2.5, 1.0]
    x = np.arange(9.0)
    assert spearman(x, x ** 3) == pytest.approx(1.0)
    assert spearman(x, -x) == pytest.approx(-1.0)
    assert np.isnan(spearman(x, np.ones(9)))


def test_a_named_pad_is_judged_by_whether_each_axis_follows_its_name():
    from vrae_live.measure.axes import AxesReport

    good = AxesReport(("onsets", "register"), (0.97, 0.93), (0.2, 0.4), 4)
    assert good.follows and "do what they say" in good.verdict(1.4) and "1.40" in good.verdict(1.4)
    weak = AxesReport(("onsets", "register"), (0.97, 0.62), (0.2, 0.4), 4)
    assert not weak.follows
    assert "y (register) rho 0.62" in weak.verdict(1.4) and "x (onsets)" not in weak.verdict(1.4)


def test_an_axis_whose_attribute_never_changes_says_so_not_nan():
    from vrae_live.measure.axes import AxesReport

    flat = AxesReport(("polyphony", "register"), (float("nan"), 0.95), (0.3, float("nan")), 4)
    x, y = flat.lines()
    assert x == "x (polyphony: thinner → fuller): rho undefined along it (its polyphony is the same at every point), " \
                "register leaks 0.30"
    assert y == "y (register: lower → higher): rho +0.95 along it, polyphony does not change along it"
    assert not flat.follows and "nan" not in " ".join(flat.lines())


def test_each_axis_says_how_far_it_moves_its_attribute_against_the_dice():
    from vrae_live.measure.axes import AxesReport, _spread

    report = AxesReport(("onsets", "register"), (1.0, 0.98), (0.1, 0.2), 8, ends=((1.0, 3.0), (57.2, 64.4)),
                        spread=(0.5, 2.0))
    assert report.reach(0) == pytest.approx(4.0) and report.reach(1) == pytest.approx(3.6)
    x, y = report.lines()
    assert "(rho 1.00 and 0.98, 4.0 and 3.6 times as far as the dice spread them at a point)" in report.verdict(1.4)
    assert x.endswith("; 1.0 → 3.0 notes started a beat end to end, 4.0 times the dice's spread at a point")
    assert y.endswith("; 57 → 64 (mean MIDI pitch) end to end, 3.6 times the dice's spread at a point")
    seconds = AxesReport(("onsets", "range"), (1.0, 1.0), (0.1, 0.2), 8, ((2.0, 1.0), (3, 9)), (0.5, 1.5), False)
    assert "2.0 → 1.0 notes started a second end to end, 2.0 times" in seconds.lines()[0]
    assert "3 → 9 semitones end to end" in seconds.lines()[1]
    # the spread: each point's standard deviation over its takes, a take with nothing to measure left out
    points = np.array([[1.0, 3.0, np.nan], [2.0, 2.0, 2.0], [np.nan, np.nan, 5.0]])
    assert _spread(points) == pytest.approx((np.sqrt(2) + 0.0) / 2)
    assert np.isnan(_spread(np.full((3, 2), np.nan)))
    unmeasured = AxesReport(("onsets", "register"), (1.0, 0.98), (0.1, 0.2), 8)  # no spread: no reach said
    assert "end to end" not in " ".join(unmeasured.lines())


@pytest.mark.slow
def test_train_with_pad_axes_then_info_names_them_and_measures_them(tmp_path):
    from click.testing import CliRunner

    from tests.conftest import write_motif_songs
    from vrae_live.checkpoint import load_checkpoint
    from vrae_live.cli import main

    songs = write_motif_songs(tmp_path / "songs", count=4, seconds=8.0)
    tiny = ["--hidden", "16", "--window", "16", "--hop", "8", "--batch-size", "8", "--epochs", "2", "-q"]
    run = lambda *args: CliRunner().invoke(main, [str(a) for a in args], catch_exceptions=False)  # noqa: E731
    result = run("train", songs, "--out", tmp_path / "run", "--pad-axes", "polyphony,register", *tiny)
    assert result.exit_code == 0, result.output
    # a number, or, where a 2-epoch model's takes keep one polyphony at every point, why there is none
    said = r"rho ([+-]\d\.\d\d along it|undefined along it \(its polyphony is the same at every point\))"
    assert re.search(rf"pad axes: x \(polyphony: thinner → fuller\): {said}", result.output), result.output
    # judged by its names, not by the songs' plane's advice (--transpose 0, --input-dropout)
    assert "the pad's axes do what they say" in result.output or "does not follow its name" in result.output
    assert "--input-dropout" not in result.output
    plane = load_checkpoint(tmp_path / "run").latent_plane()
    assert plane.attributes == ("polyphony", "register")
    # the first two units, x leaning on y's as the levelling said (or not at all)
    assert np.array_equal(np.delete(plane.axes, 1, axis=1), np.eye(3)[:2][:, [0, 2]]) and plane.axes[1, 1] == 1
    levelled = re.search(r"pad axes: (levelled: .* leans ([+-]\d\.\d+)|level: |not levelled: )", result.output)
    assert levelled, result.output
    lean = float(levelled.group(2)) if levelled.group(2) else 0.0
    assert plane.axes[0, 1] == pytest.approx(lean, abs=5e-4)
    # a set of dice of its own, the same each time it is asked for (to average several when comparing pads)
    from vrae_live.measure.axes import measure_axes

    kept = load_checkpoint(tmp_path / "run")
    first, again = (measure_axes(kept, seeds=2, seed=100) for _ in range(2))
    assert np.array_equal(first.own + first.leak, again.own + again.leak, equal_nan=True)  # nan: a flat attribute
    result = run("info", tmp_path / "run", "--steering")
    assert result.exit_code == 0, result.output
    assert "x: thinner → fuller (polyphony); y: lower → higher (register)" in result.output
    assert re.search(rf"axes +x \(polyphony: thinner → fuller\): {said}, register leaks \d\.\d\d", result.output), result.output
    # and how far y moves the register from one end to the other, against the dice
    assert re.search(r"axes +y \(register: .*; \d+ → \d+ \(mean MIDI pitch\) end to end, \d+\.\d times", result.output), \
        result.output
    # a model with no code to teach, and a model of seconds asked for syncopation, are told why not
    result = run("train", songs, "--out", tmp_path / "rnn", "--model", "rnn", "--pad-axes", "onsets,register", *tiny)
    assert result.exit_code != 0 and "--pad-axes is for the VRAE" in result.output
    result = run("train", songs, "--out", tmp_path / "fs", "--fs", "20", "--pad-axes", "syncopation,register", *tiny)
    assert result.exit_code != 0 and "syncopation needs a model of the meter" in result.output
