"""Presets and config.json are checked with types: anything wrong is one line naming the file and field."""

from __future__ import annotations

import json
import math
from pathlib import Path
from unittest import mock

import numpy as np
import pytest
from click.testing import CliRunner
from hypothesis import HealthCheck, given, settings, strategies as st

from vrae_live.checkpoint import CONFIG, check_document, load_checkpoint, read_config, save_checkpoint
from vrae_live.cli import main
from vrae_live.config import (
    SECTIONS,
    Config,
    DataConfig,
    FrameTiming,
    ModelConfig,
    build_config,
    default_checkpoint,
    list_presets,
    load_config,
    with_changes,
)
from vrae_live.errors import CheckpointError, ConfigError
from vrae_live.models import model_for
from vrae_live.pad import latent_plane
from vrae_live.training.length import fit_to_corpus

PITCHES = [48, 50, 52, 55, 57, 60]


# -- presets ----------------------------------------------------------------------------


def write_preset(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "x.toml"
    path.write_text(text)
    return path


@pytest.mark.parametrize("text, where, problem", [
    ('[model]\nhidden = "500"\n', "[model] hidden", "expected an integer, got the string '500'"),
    ("[data]\nwindow = 64.5\n", "[data] window", "expected an integer, got 64.5"),
    ("[data]\nwindow = 64.0\n", "[data] window", "expected an integer, got 64.0"),
    ("[model]\nreverse_input = 1\n", "[model] reverse_input", "expected true or false, got 1"),
    ("[train]\nlr = true\n", "[train] lr", "expected a number, got true"),
    ("[model]\nhiden = 500\n", "[model] hiden", "unknown setting; known: model, cell, hidden,"),
    ("[modle]\nhidden = 500\n", "modle", "unknown section; known: data, model, train"),
    ("hidden = 500\n", "hidden", "unknown section; known: data, model, train"),
    ("[data]\nwindow = 1\n", "[data] window", "must be at least 2, not 1"),
    ("[train]\nlr = nan\n", "[train] lr", "must be a finite number, not nan"),
    ('[model]\ncell = "gruu"\n', "[model] cell", "unknown cell 'gruu'; known: rnn, gru, lstm"),
    ('[data]\npitch_range = "36-x"\n', "[data] pitch_range", "is not of the form LO-HI"),
    ("[data]\npitch_range = [84, 36]\n", "[data] pitch_range", "84-36 must satisfy 0 <= LO <= HI <= 127"),
    ("[data]\nfs = 20\nsteps_per_beat = 4\n", "[data]", "exactly one of fs and steps_per_beat"),
])
def test_a_bad_preset_is_one_line_naming_file_and_field(tmp_path, text, where, problem):
    path = write_preset(tmp_path, text)
    with pytest.raises(ConfigError) as err:
        load_config(str(path))
    message = str(err.value)
    assert message.startswith(f"{path}: {where}: ") and problem in message
    assert "\n" not in message


def test_an_integer_is_a_number_but_no_number_is_an_integer(tmp_path):
    config = load_config(str(write_preset(tmp_path, "[data]\nfs = 25\n[train]\nlr = 1\n")))
    assert config.data.fs == 25.0 and isinstance(config.data.fs, float) and config.data.steps_per_beat is None
    assert config.train.lr == 1.0
    beat = load_config(str(write_preset(tmp_path, "[data]\nsteps_per_beat = 2\n")))
    assert beat.data.fs is None and beat.data.steps_per_beat == 2  # setting one grid clears the other


def test_command_line_errors_say_so():
    with pytest.raises(ConfigError, match=r"^command line: \[data\] window: must be at least 2, not 1$"):
        load_config("paper-2d", {"window": 1})
    with pytest.raises(ConfigError, match="command line: unknown setting 'hiden'"):
        load_config(None, {"hiden": 5})
    assert load_config("paper-2d", {"steps_per_beat": 4}).data.fs is None
    assert load_config("live-2d", {"fs": 20.0, "pitch_range": "36-84"}).data.pitch_range == (36, 84)


def test_direct_construction_and_changes_are_checked():
    with pytest.raises(ConfigError, match="^hidden: expected an integer, got the string '500'$"):
        ModelConfig(hidden="500")
    with pytest.raises(ConfigError, match="exactly one of fs and steps_per_beat"):
        FrameTiming(fs=None)
    with pytest.raises(ConfigError, match=r"^\[train\] epochs: must be at least 1, not 0$"):
        with_changes(Config(), train={"epochs": 0})
    assert DataConfig(pitch_range=[40, 50]).pitch_range == (40, 50)


@pytest.mark.parametrize("name", list_presets())
def test_every_shipped_preset_loads(name):
    config = load_config(name)
    assert build_config(config.to_dict()) == config == Config.from_dict(json.loads(json.dumps(config.to_dict())))


# -- checkpoints ------------------------------------------------------------------------


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory) -> Path:
    config = load_config(None, {"hidden": 8, "latent": 3, "steps_per_beat": 4})
    model = model_for(config, len(PITCHES))
    rng = np.random.default_rng(0)
    plane = latent_plane(rng.normal(size=(30, 3)), np.arange(30) % 3, ["a.mid", "b.mid", "c.mid"])
    return save_checkpoint(tmp_path_factory.mktemp("ckpt") / "run", model, config, PITCHES,
                           {"training": {"epochs_done": 1}, "latent_plane": plane})


@pytest.fixture
def damaged(checkpoint, tmp_path):
    """``damaged(change)``: a copy of the checkpoint whose config.json ``change(document)`` edited."""

    def make(change) -> Path:
        directory = tmp_path / "damaged"
        directory.mkdir(exist_ok=True)
        for f in checkpoint.iterdir():
            (directory / f.name).write_bytes(f.read_bytes())
        document = json.loads((checkpoint / CONFIG).read_text())
        change(document)
        (directory / CONFIG).write_text(json.dumps(document))
        return directory

    return make


def _set(*path_and_value):
    *path, key, value = path_and_value

    def change(document):
        for p in path:
            document = document[p]
        document[key] = value

    return change


def _drop(*path):
    def change(document):
        for p in path[:-1]:
            document = document[p]
        del document[path[-1]]

    return change


def _append(*path):
    def change(document):
        for p in path:
            document = document[p]
        document.append(0.5)

    return change


@pytest.mark.parametrize("change, where, problem", [
    (_set("model", "hidden", "500"), "model.hidden", "expected an integer, got the string '500'"),
    (_set("data", "window", 64.5), "data.window", "expected an integer, got 64.5"),
    (_drop("pitches"), "pitches", "missing"),
    (_drop("model"), "model", "missing"),
    (_set("model", "hiden", 500), "model.hiden", "unknown setting; known: model, cell, hidden"),
    (_set("pitches", [48, 48, 50, 52, 55, 57]), "pitches", "strictly increasing"),
    (_set("pitches", [48, 50, 52, 55, 57, 128]), "pitches[5]", "must be at most 127, not 128"),
    (_set("pitches", []), "pitches", "expected at least 1"),
    (_set("pitches", 5, "60"), "pitches[5]", "expected an integer, got the string '60'"),
    (_set("frame_timing", {"fs": 20, "steps_per_beat": None}), "frame_timing", "disagrees with data's 4 steps per beat"),
    (_set("versions", "torch", 2), "versions.torch", "expected a string, got 2"),
    # the latent plane: wrong length, a non-number, a missing or unknown key, a wrong size
    (_append("latent_plane", "lo"), "latent_plane.lo", "expected 2 numbers, one per pad axis, got 3"),
    (_append("latent_plane", "axes", 1), "latent_plane.axes", "expected 2 row(s) of 3 numbers"),
    (_set("latent_plane", "hi", 0, "x"), "latent_plane.hi[0]", "expected a number, got the string 'x'"),
    (_set("latent_plane", "origin", 1, None), "latent_plane.origin[1]", "expected a number, got null"),
    (_set("latent_plane", "origin", 1, math.inf), "latent_plane.origin[1]", "must be a finite number, not inf"),
    (_drop("latent_plane", "songs"), "latent_plane.songs", "missing"),
    (_drop("latent_plane", "origin"), "latent_plane.origin", "missing"),
    (_set("latent_plane", "scale", 1.0), "latent_plane.scale", "unknown key; known: origin, axes, lo, hi, songs"),
    (_set("latent_plane", "songs", 1, "uv", [0.5]), "latent_plane.songs", "song 1 (b.mid) has 1 uv number(s), expected 2"),
    (_drop("latent_plane", "songs", 0, "name"), "latent_plane.songs[0].name", "missing"),
    (_set("latent_plane", [1, 2]), "latent_plane", "expected an object, got a list"),
    (_set("latent_plane", "lo", [50.0, 50.0]), "latent_plane.hi", "must be above lo on every pad axis"),
    (_set("latent_plane", "origin", [0.0, 0.0]), "latent_plane.axes", "expected 2 row(s) of 2 numbers (origin's size)"),
])
def test_a_damaged_config_json_is_one_line_naming_file_and_field(damaged, change, where, problem):
    directory = damaged(change)
    for load in (load_checkpoint, read_config):
        with pytest.raises(CheckpointError) as err:
            load(directory)
        message = str(err.value)
        assert message.startswith(f"{directory / CONFIG}: {where}: ") and problem in message, message
        assert "\n" not in message


def test_a_plane_of_another_latent_size_is_an_error(damaged):
    def two_dimensional(document):
        document["latent_plane"] = latent_plane(np.random.default_rng(1).normal(size=(9, 2)), np.zeros(9), ["a.mid"])

    with pytest.raises(CheckpointError, match="latent_plane: origin has 2 numbers; the model's latent has 3"):
        load_checkpoint(damaged(two_dimensional))


def test_a_sound_checkpoint_loads_with_its_plane(checkpoint):
    ckpt = load_checkpoint(checkpoint)
    assert ckpt.pitches == PITCHES and ckpt.config.model.latent == 3
    assert ckpt.plane is not None and len(ckpt.plane.origin) == 3 and len(ckpt.plane.axes) == 2
    assert ckpt.meta["latent_plane"]["songs"][0]["name"] == "a.mid"


def test_the_shipped_checkpoint_loads():
    ckpt = load_checkpoint(default_checkpoint())
    assert ckpt.plane is not None and len(ckpt.plane.songs) == len(ckpt.meta["latent_plane"]["songs"]) > 100
    fitted, _ = fit_to_corpus(load_config("live-2d", {"device": ckpt.config.train.device}),
                              ckpt.meta["training"]["train_windows"])
    assert ckpt.config == fitted


def test_info_on_a_damaged_checkpoint_is_one_line(damaged):
    directory = damaged(_set("model", "hidden", "500"))
    result = CliRunner().invoke(main, ["info", str(directory)])
    assert result.exit_code == 1
    assert result.output == f"error: {directory / CONFIG}: model.hidden: expected an integer, got the string '500'\n"


# -- whatever the input, a Config or a ConfigError ----------------------------------------

FIELDS = sorted({name for cls in SECTIONS.values() for name in cls.__dataclass_fields__})
LIKELY = st.sampled_from([0, 1, 2, 4, 20, 50, 127, -1, 0.5, 20.0, 1e-3, True, False, None, "", "rnn", "gru", "vrae",
                          "vrnn", "cpu", "cuda:0", "36-84", "84-36", [36, 84], [1, 2, 3], "500"])
SCALARS = st.one_of(LIKELY, st.none(), st.booleans(), st.integers(), st.floats(), st.text(max_size=8))
VALUES = st.recursive(SCALARS,
                      lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=4), inner, max_size=3),
                      max_leaves=6)
SECTION = st.dictionaries(st.sampled_from(FIELDS + ["bogus"]), VALUES, max_size=5)
DOCUMENT = st.dictionaries(st.sampled_from([*SECTIONS, "other"]), st.one_of(SECTION, VALUES), max_size=4)
FLAT = st.dictionaries(st.sampled_from(FIELDS), VALUES, max_size=4)


@pytest.mark.slow
@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(document=DOCUMENT, overrides=FLAT)
def test_the_loader_gives_a_config_or_a_config_error(document, overrides):
    for load in (
        lambda: build_config(document, "x.toml"),
        lambda: with_changes(Config(), **document),
        lambda: load_config(None, overrides),
    ):
        try:
            assert isinstance(load(), Config)
        except ConfigError as err:
            assert str(err) and "\n" not in str(err)
    with mock.patch("vrae_live.config.resolve_preset", return_value=Path("x.toml")), \
         mock.patch("vrae_live.config.read_toml", return_value=document):
        try:
            assert isinstance(load_config("x", overrides), Config)
        except ConfigError as err:
            assert str(err).startswith(("x.toml: ", "command line: ")) and "\n" not in str(err)


@settings(max_examples=200, deadline=None)
@given(sections=DOCUMENT, pitches=VALUES, plane=st.one_of(VALUES, st.dictionaries(
    st.sampled_from(["origin", "axes", "lo", "hi", "songs", "bogus"]), VALUES, max_size=5)))
@pytest.mark.slow
def test_the_checkpoint_check_gives_a_document_or_a_checkpoint_error(sections, pitches, plane):
    document = {**sections, "pitches": pitches, "latent_plane": plane}
    try:
        checked = check_document(document, Path("run/config.json"))
    except CheckpointError as err:
        assert str(err).startswith("run/config.json: ") and "\n" not in str(err)
    else:
        assert isinstance(checked.config, Config)
