"""Checkpoints: save then load gives identical outputs; anything damaged is one clear error."""

from __future__ import annotations

import json

import pytest
import torch

from vrae_live.checkpoint import load_checkpoint, load_optimizer_state, read_config, save_checkpoint
from vrae_live.config import load_config
from vrae_live.errors import CheckpointError
from vrae_live.models import build_model

PITCHES = [48, 50, 52, 55, 57, 60]


@pytest.fixture(params=["rnn", "gru", "lstm"])
def saved(request, tmp_path):
    config = load_config(None, {"cell": request.param, "hidden": 12, "latent": 3, "steps_per_beat": 4})
    torch.manual_seed(0)
    model = build_model(len(PITCHES), config.model)
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
    assert document["frame_timing"] == {"fs": None, "steps_per_beat": 4}
    assert document["pitches"] == PITCHES
    assert {"torch", "vrae_live", "python"} <= set(document["versions"])
    assert not list(directory.glob("*.tmp")) and not list(directory.glob(".*"))


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
    config = load_config(None, {"hidden": 8, "latent": 2})
    model = build_model(4, config.model)
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
