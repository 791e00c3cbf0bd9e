"""A decoder told the key (--key-input): each window's key signature in training, the key to play in live."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from click.testing import CliRunner

from vrae_live.checkpoint import load_checkpoint
from vrae_live.cli import main
from vrae_live.config import ModelConfig, load_config
from vrae_live.errors import ConfigError
from vrae_live.models import build_model
from vrae_live.models.keys import KEYS, key_columns, songs_key, window_keys
from vrae_live.pad import LatentPlane
from vrae_live.play.key import key_name, signature
from vrae_live.play.notes import NoteSettings
from vrae_live.play.state import ControlState
from vrae_live.play.stream import Stream
from vrae_live.play.voices import VoiceBank
from vrae_live.training.batches import Transposer

PITCHES = list(range(48, 84))  # three octaves from C3
MAJOR = (0, 2, 4, 5, 7, 9, 11)


def window(classes, weights=None, steps: int = 16) -> torch.Tensor:
    """A window ``(1, steps, P)`` sounding pitches of ``classes``, each in ``weights[i]`` of the steps."""
    weights = weights or [1.0] * len(classes)
    frames = torch.zeros(1, steps, len(PITCHES))
    for c, w in zip(classes, weights):
        frames[0, :max(1, round(w * steps)), PITCHES.index(60 + c)] = 1
    return frames


CLASSES = torch.tensor(PITCHES) % 12


@pytest.mark.parametrize("tonic", range(12))
def test_a_major_scale_is_its_own_key_and_its_relative_minor_shares_it(tonic):
    scale = [(tonic + d) % 12 for d in MAJOR]
    tonic_heavy = [3.0 if c == tonic else 2.0 if c == (tonic + 7) % 12 else 1.0 for c in scale]
    assert window_keys(window(scale, [w / 3 for w in tonic_heavy]), CLASSES).item() == tonic
    minor = (tonic + 9) % 12  # the relative minor: its tonic and fifth most, as a minor piece sounds them
    minor_heavy = [3.0 if c == minor else 2.0 if c == (minor + 7) % 12 else 1.0 for c in scale]
    assert window_keys(window(scale, [w / 3 for w in minor_heavy]), CLASSES).item() == tonic
    assert signature(minor, "minor") == tonic and signature((tonic + 2) % 12, "dorian") == tonic


def test_a_silent_window_is_in_c_and_the_songs_key_is_the_most_common():
    assert window_keys(torch.zeros(2, 8, len(PITCHES)), CLASSES).tolist() == [0, 0]
    g, d = [(7 + s) % 12 for s in MAJOR], [(2 + s) % 12 for s in MAJOR]
    windows = torch.cat([window(g), window(g), window(d)]).to(torch.uint8)
    assert songs_key(windows, PITCHES) == 7
    assert key_columns(torch.tensor([7])).tolist() == [[float(k == 7) for k in range(KEYS)]]


def test_a_transposed_window_is_in_the_key_it_was_moved_to():
    c_major = window([0, 4, 7, 0, 2, 5, 9, 11], [1, 0.8, 0.8, 1, 0.3, 0.3, 0.3, 0.3])
    moved = Transposer(PITCHES, 5, torch.device("cpu"))
    draws = torch.zeros(1, 11)
    draws[0, 5 + 2] = 1.0  # the shift +2 (draws pick the largest allowed)
    assert window_keys(c_major, CLASSES).item() == 0
    assert window_keys(moved(c_major, draws), CLASSES).item() == 2


def keyed_model(**overrides):
    config = ModelConfig(hidden=24, latent=2, z_every_step=True, key_input=True, **overrides)
    model = build_model(len(PITCHES), config)
    model.set_pitches(PITCHES)
    return model


def test_the_decoder_is_told_the_key_of_what_it_predicts_not_of_what_it_is_fed():
    torch.manual_seed(0)
    model = keyed_model()
    assert model.to_h0.in_features == 2 + KEYS
    x = window([(7 + s) % 12 for s in MAJOR]).repeat(3, 1, 1)  # G major
    z = torch.randn(3, 2)
    blank = torch.zeros_like(x)
    nll = model.reconstruction_nll(z, x, fed=blank)
    in_g = model.reconstruction_nll(model.code(z, torch.full((3,), 7)), x, fed=blank)
    in_c = model.reconstruction_nll(model.code(z, torch.zeros(3, dtype=torch.long)), x, fed=blank)
    torch.testing.assert_close(nll, in_g)
    assert not torch.allclose(nll, in_c)
    terms = model.loss_terms(x, torch.Generator().manual_seed(1), input_dropout=0.5)
    assert torch.isfinite(terms.rec).all() and terms.z.shape == (3, 2)


def test_only_the_vrae_is_told_the_key():
    with pytest.raises(ConfigError, match="--key-input is for the vrae"):
        build_model(8, ModelConfig(model="vrnn", key_input=True))
    assert load_config(None, {"key_input": True}).model.key_input
    assert load_config(None, {"model": "vrnn"}).model.key_input is False


def plays_its_key() -> torch.nn.Module:
    """A keyed VRAE of one octave whose frame is the key's tonic alone, whatever its z and its past."""
    pitches = list(range(60, 72))
    model = build_model(12, ModelConfig(hidden=12, latent=2, z_every_step=True, key_input=True))
    model.set_pitches(pitches)
    with torch.no_grad():
        for p in model.parameters():
            p.zero_()
        model.to_h0.weight[:, 2:] = 5 * torch.eye(12)  # h_0 is the key
        model.decoder.weight_ih_l0[:, 12 + 2:] = 5 * torch.eye(12)  # and so is every step's state
        model.to_logits.weight.copy_(10 * torch.eye(12))
        model.to_logits.bias.fill_(-5.0)
    return model


def test_the_stream_tells_the_decoder_each_voices_key():
    stream = Stream(plays_its_key(), window=8, hop=4, voices=2, settings=NoteSettings(polyphony=None), key=7)
    stream.start(0)
    stream.start(1)
    stream.set_key(1, 2)

    def frame() -> tuple[list[int], list[int]]:
        played = stream.step({0: np.zeros(2), 1: np.zeros(2)})
        return np.flatnonzero(played[0].frame).tolist(), np.flatnonzero(played[1].frame).tolist()

    assert frame() == ([7], [2])  # the stream's own key, and voice 1's
    stream.set_key(0, 4)
    stream.set_key(1, None)
    frame()  # a new key reaches the frame after the next, as a new z does
    assert frame() == ([4], [7])


def test_a_voice_plays_in_the_key_serve_is_given_before_its_transpose():
    stream = Stream(plays_its_key(), window=8, hop=4, settings=NoteSettings(polyphony=None), key=0)
    bank = VoiceBank(stream, LatentPlane.standard(2), list(range(60, 72)), period_s=0.1, glide_s=0.0)
    tonics = []
    for state in (ControlState(), ControlState(key=2, scale="minor"), ControlState(key=2, scale="minor", transpose=2)):
        for _ in range(2):
            decoded = bank.decode(state).decoded[0]
        tonics.append(np.flatnonzero(decoded.frame).tolist())
    # none: the stream's own (C); D minor: F major's signature; D minor sent 2 semitones up: C minor's, Eb
    assert tonics == [[0], [5], [3]]


def test_a_keyed_model_trains_saves_and_tells_its_songs_key(songs_dir, tmp_path):
    from vrae_live.data.corpus import prepare_data
    from vrae_live.training.trainer import Trainer

    config = load_config(None, dict(hidden=16, latent=2, window=16, hop=8, batch_size=16, epochs=2, fs=20,
                                    z_every_step=True, key_input=True))
    data = prepare_data(songs_dir, config.data, config.train.seed, config.train.batch_size)
    Trainer(config, data, tmp_path / "run").fit()
    ckpt = load_checkpoint(tmp_path / "run")
    assert ckpt.model.keyed and ckpt.model.pitch_classes.tolist() == [p % 12 for p in ckpt.pitches]
    windows = torch.as_tensor(np.asarray(data.train.x))
    assert ckpt.songs_key == songs_key(windows, data.pitches)
    assert ckpt.training["key"] == ckpt.songs_key
    info = CliRunner().invoke(main, ["info", str(tmp_path / "run")], catch_exceptions=False).output
    assert f"the decoder is told the key, live {key_name(ckpt.songs_key, 'major')}'s signature" in info


def test_a_checkpoint_that_does_not_say_its_songs_key_plays_in_c(tmp_path):
    from vrae_live.checkpoint import save_checkpoint
    from vrae_live.play.stream import live_stream

    config = load_config(None, {"hidden": 12, "latent": 2, "z_every_step": True, "key_input": True})
    model = build_model(12, config.model)
    save_checkpoint(tmp_path / "model", model.eval(), config, list(range(60, 72)))
    ckpt = load_checkpoint(tmp_path / "model")
    assert ckpt.songs_key == 0 and live_stream(ckpt).key == 0
    save_checkpoint(tmp_path / "told", model.eval(), config, list(range(60, 72)), {"training": {"key": 9}})
    assert live_stream(load_checkpoint(tmp_path / "told")).key == 9
