"""The meter: where a step falls in the beat and the bar, from the songs' time signatures to the live stream."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from tests.songs import write_song_in_beats
from vrae_live.config import DataConfig
from vrae_live.data.corpus import load_songs, store_songs, windows_for
from vrae_live.data.meter import bar_quarters_of, meter_columns, meter_size
from vrae_live.data.store import StoredWindows
from vrae_live.play.stream import Stream


def test_a_steps_meter_is_its_place_in_the_beat_and_in_the_bar():
    four_four = meter_columns(np.arange(20), 4, 16)  # sixteenths in 4/4
    assert four_four.shape == (20, meter_size(4)) == (20, 12)
    assert four_four[:, :4].argmax(1).tolist() == [i % 4 for i in range(20)]
    assert four_four[:, 4:].argmax(1).tolist() == [(i % 16) // 4 for i in range(20)]
    assert (four_four.sum(1) == 2).all()
    six_eight = meter_columns(np.arange(12, 24), 4, 12)  # 3 quarter beats a bar: the second bar starts again
    assert six_eight[:, 4:].argmax(1).tolist() == [0] * 4 + [1] * 4 + [2] * 4
    long_bar = meter_columns(np.array([35, 36, 39]), 4, 40)  # 10 beats: the ninth and tenth share the last column
    assert long_bar[:, 4:].argmax(1).tolist() == [7, 7, 7]


@pytest.mark.parametrize("signature, quarters", [((3, 4), 3.0), ((6, 8), 3.0), ((4, 2), 8.0), (None, 4.0)])
def test_a_songs_bar_comes_from_its_first_time_signature(tmp_path, signature, quarters):
    path = write_song_in_beats(tmp_path / "s.mid", [(60, 0, 1)], time_signature=signature)
    assert bar_quarters_of(path.read_bytes()) == quarters


def write_waltzes(folder):
    for k in range(4):  # in 3/4: a low note on each downbeat, a high one on the other beats
        notes = [(48 if beat % 3 == 0 else 67 + k, beat, beat + 0.5) for beat in range(48)]
        write_song_in_beats(folder / f"w{k}.mid", notes, time_signature=(3, 4))
    return folder


def test_windows_of_a_model_of_the_meter_carry_the_next_steps_place_in_the_bar(tmp_path, monkeypatch):
    from vrae_live.data import store

    monkeypatch.setattr(store, "GATHER_CHUNK", 3)  # windows read a few at a time, as a large corpus is
    songs = write_waltzes(tmp_path / "songs")
    data = DataConfig(fs=None, steps_per_beat=2, window=12, hop=5, onsets=True, meter=True)
    in_memory = load_songs(songs, data.timing, cache_dir=tmp_path / "cache", workers=1)
    assert [s.bar for s in in_memory] == [3.0] * 4
    pitches = [48, 67, 68, 69, 70]
    expected = windows_for(in_memory, pitches, data).x
    stored = StoredWindows(store_songs(songs, data.timing, cache_dir=tmp_path / "cache", workers=1),
                           [0, 1, 2, 3], pitches, data)
    assert expected.shape[2] == data.inputs(5) == 10 + 2 + 8
    assert np.array_equal(np.asarray(stored), expected)
    second = expected[1]  # starts at step 5 of its song: its frames carry the meter of steps 6..17
    assert np.array_equal(second[:, 10:], meter_columns(np.arange(6, 18), 2, 6))
    # the low note sounds on the steps whose successor is a downbeat's successor: step 6k, fed at row 6k - 6
    low_rows = np.flatnonzero(second[:, 0] & second[:, 5])  # low C struck
    assert ((5 + low_rows) % 6 == 0).all() and len(low_rows) == 2


def test_the_meter_is_of_a_beat_grid():
    from vrae_live.config import load_config

    seconds = load_config("live-2d", {"fs": 20.0})  # the preset's meter, on frames without a beat
    assert seconds.data.meter and not seconds.data.fed_meter and seconds.data.inputs(5) == 10
    assert load_config("live-2d", {}).data.inputs(5) == 10 + 4 + 8


class RecordingDecoder(torch.nn.Module):
    """A decoder that predicts silence and remembers what it was fed (pure logic: the stream's inputs)."""

    n_columns, z_fed_every_step = 3, True

    def __init__(self):
        super().__init__()
        self.weight = torch.nn.Parameter(torch.zeros(1))
        self.fed: list[torch.Tensor] = []

    def initial_state(self, z):
        return torch.zeros(z.shape[0], 1)

    def advance(self, frames, state, z):
        self.fed.append(frames.clone())
        return state

    def logits(self, state):
        return torch.full((state.shape[0], self.n_columns), -20.0)

    def reseed(self, seed):
        pass


def test_the_stream_feeds_each_frame_with_the_meter_of_the_step_after_it_and_follows_align():
    model = RecordingDecoder()
    stream = Stream(model, window=8, hop=4, meter=(2, 6))  # 2 steps a beat, bars of 3 beats
    for _ in range(6):
        stream.next_frame(np.zeros(1))
    one_step = [f for f in model.fed if f.dim() == 2]  # one frame fed a step: frames 1..5 decided after 0..4
    context = [f for f in model.fed if f.dim() == 3]  # the window begun at frame 4: frames 0..3 teacher-forced
    assert [f.shape[-1] for f in one_step] == [3 + 2 + 8] * len(one_step)
    steps = [int(np.flatnonzero(f[0, 3:5])[0]) + 2 * int(np.flatnonzero(f[0, 5:])[0]) for f in one_step]
    # the meter of the frame being decoded; at 4 a window begins, and the one it replaces first looks
    # past its end (frames 4 and 5, undecided, for the cross-fade)
    assert steps == [1, 2, 3, 4, 5, 5]
    window = context[0][0, :, 3:].numpy()
    assert np.array_equal(window, meter_columns(np.arange(1, 5), 2, 6))
    model.fed.clear()
    stream.align(6)  # the frame decoded next is a downbeat (a Song Position Pointer says so)
    stream.next_frame(np.zeros(1))
    assert np.array_equal(model.fed[0][0, 3:].numpy(), meter_columns(np.array([6]), 2, 6)[0])


def test_the_performer_puts_a_model_of_the_meter_where_the_clock_says_the_song_is():
    """A clock that knows the song's position (a DAW's Song Position Pointer; Link's beat) moves the
    stream's step count: each frame is decoded with the meter of the step it is played on."""
    from vrae_live.checkpoint import Checkpoint
    from vrae_live.config import load_config
    from vrae_live.live.controls import Controls
    from vrae_live.models import model_for
    from vrae_live.play.clock import OfflineClock
    from vrae_live.play.performer import Performer
    from vrae_live.play.sink import MemorySink

    config = load_config("live-2d", {"hidden": 8, "meter": True, "onsets": True})
    ckpt = Checkpoint(model_for(config, 3).eval(), config, [60, 64, 67])

    class MidSong(OfflineClock):  # the DAW started the take 5 steps into a bar (step 21 of the song)
        def song_step(self, k: int) -> int:
            return k + 21

    performer = Performer(ckpt, Controls(latent_size=2), MemorySink(), clock=MidSong(0.125))
    performer.run(max_frames=6)
    stream = performer.bank.stream
    assert stream.first_step == 21  # the stream's frame 0 was the song's step 21, the bar's sixth sixteenth


def test_a_join_is_compared_with_frames_at_its_place_in_the_beat():
    from vrae_live.measure.seams import join_rates

    phase = np.arange(64) % 4  # sixteenths: a beat every 4
    starts = np.where(phase == 0, 3.0, 1.0)  # music that starts more notes on the beat
    joined = np.arange(64) % 16 == 0  # a window begun on each downbeat
    at_joins, inside = join_rates(starts, joined, phase)
    assert (at_joins, inside) == (3.0, 3.0)  # no seam: the joins play as the other beats do
    starts[joined] = 6.0  # a seam: every join strikes more
    assert join_rates(starts, joined, phase) == (6.0, 3.0)
    assert join_rates(starts, joined, np.zeros(64, int))[1] == pytest.approx((3 * 12 + 48 * 1) / 60)  # no beat


@pytest.mark.parametrize("kind", ["vrae", "vrnn", "rnn"])
def test_every_model_is_fed_the_meter_and_predicts_only_the_frame(kind):
    from vrae_live.config import load_config
    from vrae_live.models import model_for

    config = load_config("live-2d", {"model": kind, "hidden": 8, "features": 4, "meter": True, "onsets": True})
    model = model_for(config, 3)
    assert (model.n_columns, model.n_inputs) == (6, 6 + 4 + 8)
    x = torch.zeros(2, 16, 18)
    x[:, :, :6] = (torch.rand(2, 16, 6) < 0.3).float()
    x[:, :, 6:] = torch.from_numpy(meter_columns(np.arange(1, 17), 4, 16)).float()
    terms = model.loss_terms(x)
    assert torch.isfinite(terms.rec).all() and terms.rec.shape == (2,)
    stream = Stream(model, window=16, hop=8, meter=(4, 16), onsets=True)
    assert stream.next_chunk(np.zeros(config.model.latent), temperature=1.0).frames.shape == (8, 3)
