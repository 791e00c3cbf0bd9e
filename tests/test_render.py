"""Offline takes through the live path: notes balanced, z paths, codes of passages, like serve."""

from __future__ import annotations

import mido
import numpy as np
import pytest

from tests.performing import perform
from vrae_live.checkpoint import load_checkpoint
from vrae_live.config import build_config
from vrae_live.data.corpus import prepare_data
from vrae_live.errors import ConfigError, DataError
from vrae_live.offline.render import TakeSettings, fixed_path, glide_path, parse_z, passage_code, passage_window, render_take
from vrae_live.play.state import ControlState
from vrae_live.training.trainer import Trainer


@pytest.fixture(scope="module")
def tiny_ckpt(tmp_path_factory):
    """A tiny 2-D model trained for two epochs on the motif songs."""
    from tests.conftest import write_motif_songs

    base = tmp_path_factory.mktemp("render")
    songs = write_motif_songs(base / "songs")
    config = build_config({"data": {"window": 16, "hop": 8, "val_fraction": 0.0},
                           "model": {"hidden": 16, "latent": 2},
                           "train": {"epochs": 2, "batch_size": 16, "kl_anneal_steps": 0}})
    data = prepare_data(songs, config.data, seed=0, batch_size=16, cache_dir=base / "cache")
    Trainer(config, data, base / "run").fit()
    return load_checkpoint(base / "run"), songs


def note_messages(path):
    """(kind, note, absolute seconds) of every note message in a MIDI file."""
    out, t = [], 0.0
    for msg in mido.MidiFile(str(path)):
        t += msg.time
        if msg.type in ("note_on", "note_off"):
            out.append(("on" if msg.type == "note_on" and msg.velocity > 0 else "off", msg.note, t))
    return out


def test_take_writes_balanced_notes_on_the_frame_grid(tiny_ckpt, tmp_path):
    ckpt, _ = tiny_ckpt
    out = tmp_path / "take.mid"
    take = render_take(ckpt, fixed_path(np.zeros(2)), 120, out, TakeSettings(density=0.8))
    assert take.frames.shape == (120, len(ckpt.pitches)) and take.frames.any()
    messages = note_messages(out)
    ons = [m for m in messages if m[0] == "on"]
    assert len(ons) == take.notes_on > 0
    sounding = set()
    for kind, note, _ in messages:  # every on is closed by an off before the file ends
        assert (kind == "on") != (note in sounding)
        (sounding.add if kind == "on" else sounding.discard)(note)
    assert not sounding
    period = ckpt.timing.frame_seconds()
    for _, _, t in messages:
        assert abs(t / period - round(t / period)) < 1e-3  # on the frame grid: no wall clock involved
    assert max(t for *_, t in messages) <= 120 * period + 1e-6


def test_take_matches_what_serve_plays(tiny_ckpt, tmp_path):
    """The same z and seed through serve's Performer on a fake clock give the same notes at the same frames."""
    ckpt, _ = tiny_ckpt
    z = np.array([0.3, -0.4])
    out = tmp_path / "take.mid"
    render_take(ckpt, fixed_path(z), 64, out, TakeSettings(seed=3))
    period = ckpt.timing.frame_seconds()
    rendered = [(round(t / period), note) for kind, note, t in note_messages(out) if kind == "on"]

    sink, *_ = perform(ckpt, 64, seed=3, initial=ControlState(z=tuple(z)))
    served = [(round(t / period), m.note) for t, m in sink.timed if m.type == "note_on" and m.velocity > 0]
    assert rendered and rendered == served


def test_different_z_give_different_takes(tiny_ckpt):
    ckpt, _ = tiny_ckpt
    a = render_take(ckpt, fixed_path(np.array([-3.0, -3.0])), 96, None, TakeSettings(temperature=0.0, density=0.7))
    b = render_take(ckpt, fixed_path(np.array([3.0, 3.0])), 96, None, TakeSettings(temperature=0.0, density=0.7))
    assert not np.allclose(a.probs, b.probs)
    again = render_take(ckpt, fixed_path(np.array([-3.0, -3.0])), 96, None, TakeSettings(temperature=0.0, density=0.7))
    np.testing.assert_array_equal(a.frames, again.frames)  # and the same z, the same take


def test_glide_path_runs_from_a_to_b():
    a, b = np.array([0.0, 1.0]), np.array([2.0, -1.0])
    path = glide_path(a, b, steps=100, hop=10)
    np.testing.assert_allclose(path(0), a)
    np.testing.assert_allclose(path(90), b)  # the last hop starts at frame 90
    distances = [np.linalg.norm(path(f) - a) for f in range(0, 100, 10)]
    assert all(x < y for x, y in zip(distances, distances[1:]))


def test_interpolated_take_starts_near_a_and_ends_near_b(tiny_ckpt):
    ckpt, songs = tiny_ckpt
    z_a = passage_code(songs / "song0.mid", ckpt, 0.0)
    z_b = passage_code(songs / "song3.mid", ckpt, 2.0)
    assert not np.allclose(z_a, z_b)
    take = render_take(ckpt, glide_path(z_a, z_b, 80, 8), 80, None)
    d_a = np.linalg.norm(take.z - z_a, axis=1)
    assert d_a[:8].max() < d_a[-8:].min()
    np.testing.assert_allclose(take.z[-1], z_b)


def test_passage_window_and_its_errors(tiny_ckpt, tmp_path):
    ckpt, songs = tiny_ckpt
    w = passage_window(songs / "song1.mid", ckpt, 1.0)
    assert w.shape == (16, len(ckpt.pitches)) and w.any()
    with pytest.raises(DataError, match="no window of 16 frames starts at 60 s"):
        passage_window(songs / "song1.mid", ckpt, 60.0)
    (tmp_path / "bad.mid").write_bytes(b"not midi")
    with pytest.raises(DataError, match="not a readable MIDI file"):
        passage_window(tmp_path / "bad.mid", ckpt, 0.0)


def test_parse_z():
    np.testing.assert_allclose(parse_z("0.1,-0.3", 2), [0.1, -0.3])
    with pytest.raises(ConfigError, match="2 dimensions"):
        parse_z("1,2,3", 2)
    with pytest.raises(ConfigError, match="comma-separated"):
        parse_z("a,b", 2)
    with pytest.raises(ConfigError):
        parse_z("nan,1", 2)
