"""Checkpoints: save then load gives identical outputs; anything damaged is one clear error."""

from __future__ import annotations

import json

import pytest
import torch

from vrae_live.checkpoint import load_checkpoint, load_optimizer_state, read_config, save_checkpoint, store_meta
from vrae_live.config import load_config
from vrae_live.errors import CheckpointError
from vrae_live.models import model_for

PITCHES = [48, 50, 52, 55, 57, 60]


@pytest.fixture(params=["rnn", "gru", "lstm"])
def saved(request, tmp_path):
    config = load_config(None, {"cell": request.param, "hidden": 12, "latent": 3, "steps_per_beat": 4})
    torch.manual_seed(0)
    model = model_for(config, len(PITCHES))
    directory = save_checkpoint(tmp_path / "ckpt", model, config, PITCHES, {"training": {"epochs_done": 1}})
    return model, config, directory


@torch.no_grad()
def test_save_then_load_gives_identical_outputs(saved):
    model, config, directory = saved
    model.eval()
    ckpt = load_checkpoint(directory)
    x = (torch.rand(3, 10, len(PITCHES)) < 0.3).float()
    z = torch.randn(3, config.model.latent)
    assert ckpt.config == config
    assert ckpt.pitches == PITCHES
    assert ckpt.timing.steps_per_beat == 4 and ckpt.timing.fs is None
    assert ckpt.meta["training"] == {"epochs_done": 1}
    assert not ckpt.model.training
    torch.testing.assert_close(ckpt.model.encode(x), model.encode(x), rtol=0, atol=0)
    torch.testing.assert_close(ckpt.model.decode(z, x), model.decode(z, x), rtol=0, atol=0)


def test_config_json_describes_the_model(saved):
    _, _, directory = saved
    document = json.loads((directory / "config.json").read_text())
    assert document["format"] == "vrae-live/1"
    assert (document["data"]["fs"], document["data"]["steps_per_beat"]) == (None, 4)
    assert "frame_timing" not in document  # frame timing is stored once, in data
    assert document["pitches"] == PITCHES
    assert {"torch", "vrae_live", "python"} <= set(document["versions"])
    assert not list(directory.glob("*.tmp")) and not list(directory.glob(".*"))


def test_the_summary_and_versions_through_typed_accessors(saved):
    _, _, directory = saved
    ckpt = load_checkpoint(directory)
    assert ckpt.training == {"epochs_done": 1} and ckpt.song_names("training") == [] and ckpt.window_map() is None
    assert set(ckpt.versions) == {"torch", "vrae_live", "python"}
    store_meta(directory, "training", {"train_songs": ["a.mid", "b.mid"], "val_songs": ["c.mid"]})
    ckpt = load_checkpoint(directory)
    assert (ckpt.song_names("training"), ckpt.song_names("validation")) == (["a.mid", "b.mid"], ["c.mid"])


def _written_before(directory, timing):
    """The checkpoint's config.json as vrae-live wrote it before frame timing was stored once:
    again as a top-level ``frame_timing``."""
    path = directory / "config.json"
    document = json.loads(path.read_text())
    document["frame_timing"] = timing
    path.write_text(json.dumps(document, indent=2))
    return document


def test_an_older_checkpoint_with_frame_timing_twice_still_loads(saved):
    model, config, directory = saved
    _written_before(directory, {"fs": None, "steps_per_beat": 4})
    ckpt = load_checkpoint(directory)
    assert ckpt.config == config and ckpt.timing == config.data.timing
    assert "frame_timing" not in ckpt.meta and read_config(directory)["frame_timing"]
    store_meta(directory, "training", {"epochs_done": 2})  # rewritten in today's form
    document = json.loads((directory / "config.json").read_text())
    assert "frame_timing" not in document and document["training"] == {"epochs_done": 2}
    assert load_checkpoint(directory).timing.steps_per_beat == 4


def test_an_older_checkpoint_whose_two_timings_disagree_is_an_error(saved):
    _, _, directory = saved
    _written_before(directory, {"fs": 20.0, "steps_per_beat": None})
    with pytest.raises(CheckpointError, match="frame_timing: 20 frames per second disagrees with data's 4 steps per beat"):
        load_checkpoint(directory)


def test_missing_directory(tmp_path):
    with pytest.raises(CheckpointError, match="no such checkpoint directory"):
        load_checkpoint(tmp_path / "nope")


def test_not_a_checkpoint(tmp_path):
    with pytest.raises(CheckpointError, match="not a checkpoint"):
        load_checkpoint(tmp_path)


def test_damaged_config(saved):
    _, _, directory = saved
    (directory / "config.json").write_text('{"format": "vrae-live/1", "mod')
    with pytest.raises(CheckpointError, match="config.json: damaged"):
        load_checkpoint(directory)


def test_unknown_format(saved):
    _, _, directory = saved
    (directory / "config.json").write_text('{"format": "something-else/9"}')
    with pytest.raises(CheckpointError, match="unknown checkpoint format 'something-else/9'"):
        read_config(directory)


def test_damaged_weights(saved):
    _, _, directory = saved
    (directory / "model.safetensors").write_bytes(b"\x00" * 64)
    with pytest.raises(CheckpointError, match="model.safetensors: damaged"):
        load_checkpoint(directory)


def test_weights_that_do_not_fit_the_config(saved):
    _, _, directory = saved
    document = json.loads((directory / "config.json").read_text())
    document["model"]["hidden"] = 13
    (directory / "config.json").write_text(json.dumps(document))
    with pytest.raises(CheckpointError, match="do not fit the model"):
        load_checkpoint(directory)


def test_optimizer_state_needs_no_unpickling(tmp_path):
    config = load_config(None, {"hidden": 8, "latent": 2, "onsets": False, "meter": False})
    model = model_for(config, 4)
    optimizer = torch.optim.Adam(model.parameters())
    model.loss_terms(torch.ones(2, 5, 4)).rec.sum().backward()
    optimizer.step()
    state = {"optimizer": optimizer.state_dict(), "noise": torch.Generator().get_state(), "progress": {"epoch": 1}}
    save_checkpoint(tmp_path, model, config, [60, 62, 64, 65], optimizer_state=state)
    loaded = load_optimizer_state(tmp_path)  # torch.load(..., weights_only=True) inside
    assert loaded["progress"] == {"epoch": 1}
    fresh = torch.optim.Adam(model.parameters())
    fresh.load_state_dict(loaded["optimizer"])
    (tmp_path / "optimizer.pt").write_bytes(b"not a torch file")
    with pytest.raises(CheckpointError, match="optimizer.pt: damaged"):
        load_optimizer_state(tmp_path)
