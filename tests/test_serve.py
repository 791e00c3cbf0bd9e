"""The performer in process (fake clock, memory sink), and `vrae-live serve` end to end on real JACK."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import threading

import numpy as np
import pytest
import torch
from pythonosc.udp_client import SimpleUDPClient

from tests.conftest import write_motif_songs
from tests.performing import assert_nothing_hangs, note_ons, perform
from vrae_live.checkpoint import load_checkpoint, save_checkpoint
from vrae_live.config import load_config
from vrae_live.data.corpus import prepare_data
from vrae_live.measure.seams import measure_seams, note_starts
from vrae_live.measure.steering import measure_steering, play_takes
from vrae_live.models import model_for
from vrae_live.offline.render import TakeSettings, fixed_path, render_take
from vrae_live.pad import LatentPlane
from vrae_live.play.demo import DemoPath
from vrae_live.play.stream import live_hop
from vrae_live.testing.fake_time import FakeTime
from vrae_live.testing.jack import MidiDump
from vrae_live.training.trainer import Trainer


@pytest.fixture(scope="module")
def checkpoint_dir(tmp_path_factory):
    """A small model trained on six distinct songs, its codes whitened and scaled as live-2d's are."""
    root = tmp_path_factory.mktemp("serve")
    songs = write_motif_songs(root / "songs", count=6, seconds=12.0)
    config = load_config(None, {"hidden": 64, "window": 16, "hop": 8, "batch_size": 16, "epochs": 40, "lr": 3e-3,
                                "mu_batchnorm": 1.5, "mu_whiten": True})
    data = prepare_data(songs, config.data, config.train.seed, config.train.batch_size)
    Trainer(config, data, root / "model").fit()
    return root / "model"


def pitch_profile(sink):
    notes = np.array([m.note for m in note_ons(sink)])
    histogram = np.bincount(notes % 12, minlength=12) / max(1, len(notes))
    return histogram, notes.mean() if len(notes) else 0.0


def profile_distance(a, b):
    (ha, ma), (hb, mb) = pitch_profile(a), pitch_profile(b)
    return np.abs(ha - hb).sum() + abs(ma - mb) / 12


def test_the_performer_plays_and_switches_every_note_off(checkpoint_dir):
    sink, stats, _, performer = perform(checkpoint_dir, 200)
    assert stats.frames == 200
    assert len(note_ons(sink)) > 10
    assert_nothing_hangs(sink.messages)
    assert any(m.type == "control_change" and m.control == 123 for m in sink.messages)


def test_opposite_corners_differ_more_than_the_same_corner_twice(checkpoint_dir):
    def corner(x, y):
        return [("/vrae/xy", (x, y))]
    a1, *_ = perform(checkpoint_dir, 400, corner(0.05, 0.05), seed=1)
    a2, *_ = perform(checkpoint_dir, 400, corner(0.05, 0.05), seed=2)
    b2, *_ = perform(checkpoint_dir, 400, corner(0.95, 0.95), seed=2)
    c1, *_ = perform(checkpoint_dir, 400, corner(0.05, 0.95), seed=1)
    d2, *_ = perform(checkpoint_dir, 400, corner(0.95, 0.05), seed=2)
    same = profile_distance(a1, a2)
    opposite = (profile_distance(a1, b2) + profile_distance(c1, d2)) / 2
    assert opposite > 2 * same, (opposite, same)


@pytest.mark.slow
def test_the_steering_measurement_tells_a_steerable_model_from_one_that_ignores_z(checkpoint_dir):
    ckpt = load_checkpoint(checkpoint_dir)
    steered = measure_steering(ckpt)
    assert steered.ratio > 2, steered.line()
    # the breakdown by feature adds up to the distances it breaks down
    assert sum(steered.same_parts) == pytest.approx(steered.same) and len(steered.same_parts) == 3
    assert sum(steered.opposite_parts) == pytest.approx(steered.opposite), steered.parts_line()
    with torch.no_grad():
        ckpt.model.to_h0.weight.zero_()  # h_0 no longer depends on z
        if ckpt.config.model.z_every_step:
            ckpt.model.decoder.weight_ih_l0[:, len(ckpt.pitches):].zero_()
    deaf = measure_steering(ckpt)
    assert deaf.ratio < 1.5, deaf.line()
    assert not deaf.steers and "will change little" in deaf.verdict()  # the end-of-training verdict
    assert "--preset live-2d" in deaf.verdict(pad_preset=False) and "live-2d" not in deaf.verdict(pad_preset=True)


@pytest.mark.slow
def test_a_pad_whose_y_axis_moves_nothing_does_not_steer(checkpoint_dir):
    ckpt = load_checkpoint(checkpoint_dir)
    ckpt.plane.axes[1] = [0.0] * len(ckpt.plane.origin)  # up and down the pad, z stays where it is
    report = measure_steering(ckpt)
    across, up_and_down = report.axes
    assert up_and_down < 1.3 and report.weaker <= up_and_down, report.line()
    assert report.ratio > report.weaker  # the one figure of old, over both diagonals, would hide it
    assert not report.steers and "weakest direction" in report.verdict()


def test_note_starts_count_onsets_not_sustains():
    frames = np.array([[1, 0], [1, 1], [0, 1], [1, 1]], dtype=bool)
    assert note_starts(frames).tolist() == [1, 1, 0, 1]


def test_window_joins_start_no_more_notes_than_the_frames_inside_a_hop(checkpoint_dir):
    report = measure_seams(load_checkpoint(checkpoint_dir), hops=300)
    assert report.inside > 0.05, report.line()  # the take has notes to compare
    assert report.ratio <= 1.1, report.line()


def test_the_demo_tours_the_pad_until_the_controller_takes_over(checkpoint_dir):
    frame_z = {}  # frame: the z it was decoded from

    def follow(controls, index, performer):
        frame_z[index] = performer.current_z.copy()  # the frame just played was the last decoded
        if index == 400:
            controls.handle_message("/vrae/xy", [0.5, 0.5])

    ckpt = load_checkpoint(checkpoint_dir)
    plane = LatentPlane.from_meta(ckpt.meta["latent_plane"])
    path = DemoPath.for_songs(ckpt.song_spots())
    sink, stats, controls, performer = perform(checkpoint_dir, 600, at_frame=follow, demo=True, glide_s=0.0)
    period = ckpt.timing.frame_seconds()
    for f in range(401):  # each frame plays the path's position at that frame, until the controller moved
        np.testing.assert_allclose(frame_z[f], plane.z_at(*path.at(f * period)), atol=1e-9)
    assert len({tuple(np.round(frame_z[f], 6)) for f in range(401)}) > 3  # it moved
    np.testing.assert_allclose(frame_z[401], plane.z_at(0.5, 0.5), atol=1e-9)  # the very next frame
    np.testing.assert_allclose(frame_z[599], plane.z_at(0.5, 0.5), atol=1e-9)
    assert performer.demo is None and len(note_ons(sink)) > 10


@pytest.fixture(scope="module")
def beat_checkpoint(tmp_path_factory):
    """Like the shipped model: the live-2d preset (a beat grid, z fed at every step, hop 16), small, random weights."""
    config = load_config("live-2d", {"hidden": 32})
    torch.manual_seed(0)
    model = model_for(config, 49).eval()
    return save_checkpoint(tmp_path_factory.mktemp("beat") / "model", model, config, list(range(36, 85)))


def played_probs(ckpt, frames, move_after=None):
    """The probabilities of each frame played; the pad jumps corner to corner after frame ``move_after``."""
    def jump(controls, index, performer):
        if index == move_after:
            controls.handle_message("/vrae/xy", [0.9, 0.9])

    played = []
    perform(ckpt, frames, [("/vrae/xy", (0.1, 0.1))], seed=1, at_frame=jump, played=played)
    return np.array(played)


@pytest.mark.parametrize("model", ["beat, z every step", "paper, z only in h0"])
def test_a_pad_move_changes_the_next_frame_at_every_phase_of_a_hop(model, beat_checkpoint, checkpoint_dir):
    """A /vrae/xy jump after frame N changes frame N + 1 (at most N + 2), wherever N falls in a hop."""
    ckpt = load_checkpoint(beat_checkpoint if model.startswith("beat") else checkpoint_dir)
    assert ckpt.config.model.z_every_step == model.startswith("beat")
    hop = live_hop(ckpt, None)
    start = 2 * hop
    still = played_probs(ckpt, start + hop + 3)
    for n in range(start, start + hop):  # every phase of a hop
        moved = played_probs(ckpt, start + hop + 3, move_after=n)
        changed = np.flatnonzero(np.any(moved != still, axis=1))
        assert changed.size and changed[0] > n, (n, changed[:3])  # nothing before the move
        assert changed[0] <= n + 2, f"a jump after frame {n} first changed frame {changed[0]} (hop {hop})"


def test_panic_silences_and_the_stream_goes_on(checkpoint_dir):
    def press_panic(controls, index, performer):
        if index == 50:
            controls.handle_message("/vrae/panic", [])

    sink, stats, *_ = perform(checkpoint_dir, 120, at_frame=press_panic)
    assert stats.panics == 1
    cc123 = [i for i, m in enumerate(sink.messages) if m.type == "control_change" and m.control == 123]
    assert len(cc123) >= 2  # once for the panic, once at the end
    assert_nothing_hangs(sink.messages[: cc123[0] + 1])
    later = [m for m in sink.messages[cc123[0]:] if m.type == "note_on" and m.velocity > 0]
    assert later  # it plays on after the panic


def test_panic_drops_the_rest_of_the_hop(checkpoint_dir):
    """After a panic the stream starts afresh at once, not after the hop already decoded has played out."""
    def press_panic(controls, index, performer):
        if index == 50:
            controls.handle_message("/vrae/panic", [])

    _, plain, _, performer = perform(checkpoint_dir, 120)
    assert 50 % performer.hop not in (performer.hop - 1, 0)  # the panic falls inside a hop
    sink, panicked, *_ = perform(checkpoint_dir, 120, at_frame=press_panic)
    assert panicked.hops == plain.hops + 1  # a hop decoded at the panic, and the grid of hops moved with it
    panic_at = next(t for t, m in sink.timed if m.type == "control_change" and m.control == 123)
    assert not [m for t, m in sink.timed if t == panic_at and m.type == "note_on" and m.velocity > 0]


def test_the_stop_line_says_how_late_the_clock_ticked(checkpoint_dir):
    late, fake = 0.003, FakeTime()

    def stall(controls, index, performer):  # frame 3 takes a period and 3 ms: tick 4 comes 3 ms late
        if index == 3:
            fake.t += performer.period_s + late

    _, stats, _, performer = perform(checkpoint_dir, 10, at_frame=stall, fake=fake)
    assert len(performer.clock.lateness) == 10 and performer.clock.lateness.max == pytest.approx(late)
    assert stats.lateness_max_s == pytest.approx(late) and 0 < stats.lateness_p99_s <= late
    assert "max 3.00 ms late" in stats.line()


# -- end to end: a real daemon, real UDP, a real JACK MIDI server, a separate JACK client ------


def _read_until(stream, marker, lines):
    for line in stream:
        lines.append(line)
        if marker in line:
            return True
    return False


@pytest.mark.slow
@pytest.mark.jack
def test_serve_end_to_end_on_jack(jack_server, checkpoint_dir, tmp_path):
    take = tmp_path / "take.mid"
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    command = [sys.executable, "-m", "vrae_live", "serve", "--checkpoint", str(checkpoint_dir),
               "--host", "127.0.0.1", "--port", "0", "--midi-api", "jack", "--record", str(take), "--web-port", "0"]
    proc = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env)
    lines: list[str] = []
    try:
        assert _read_until(proc.stdout, "ready", lines), "".join(lines)
        port = int(next(line for line in lines if "OSC in: send to" in line).rsplit(":", 1)[1].split(",")[0])
        polyphony = load_checkpoint(checkpoint_dir).polyphony
        assert any(f"up to {polyphony} notes at once (as its songs)" in line for line in lines), "".join(lines)
        drain = threading.Thread(target=lambda: lines.extend(proc.stdout), daemon=True)
        drain.start()
        with MidiDump("vrae-live:vrae-live") as dump:
            client = SimpleUDPClient("127.0.0.1", port)
            client.send_message("/vrae/xy", [0.05, 0.05])
            def ons(events):
                return [e for e in events if e.data[0] & 0xF0 == 0x90 and e.data[2] > 0]
            first = ons(dump.wait_until(lambda ev: len(ons(ev)) >= 12, timeout=30))
            if shutil.which("oscsend"):  # an independent OSC client moves the pad to the other corner
                subprocess.run(["oscsend", "127.0.0.1", str(port), "/vrae/xy", "ff", "0.95", "0.95"], check=True)
            else:
                client.send_message("/vrae/xy", [0.95, 0.95])
            count = len(dump.events)
            later = dump.wait_until(lambda ev: len(ons(ev[count:])) >= 12, timeout=30)[count:]
            second = ons(later)
            proc.send_signal(signal.SIGINT)
            assert proc.wait(timeout=20) == 0, "".join(lines)
            events = dump.wait_until(lambda ev: any(e.data[:2] == bytes([0xB0, 123]) for e in ev), timeout=10)
        drain.join(timeout=5)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert first and second  # notes before and after the pad moved (how much the music differs
    # between positions is measured in process, above, where the randomness is seeded)
    sounding = set()
    for e in events:  # every note-on has its note-off
        kind, note = e.data[0] & 0xF0, e.data[1]
        if kind == 0x90 and e.data[2] > 0:
            sounding.add(note)
        elif kind in (0x80, 0x90):
            sounding.discard(note)
    assert not sounding
    output = "".join(lines)
    assert "stopped:" in output and "OSC" in output
    from vrae_live.live.realtime import realtime_permitted

    # the clock took realtime priority exactly where this machine permits it, and said so
    assert ("clock: realtime priority" in output) == (realtime_permitted() is None), output
    import mido

    recorded = mido.MidiFile(take)
    assert sum(m.type == "note_on" and m.velocity > 0 for m in recorded) >= 24


@pytest.mark.slow
def test_serve_demo_renders_a_take_and_sends_feedback_without_a_midi_port(checkpoint_dir, tmp_path):
    """`serve --demo --no-midi --record --duration`: the first-run path, over real UDP, with no MIDI system."""
    import socket

    import mido
    from pythonosc.osc_message import OscMessage

    listener = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    listener.bind(("127.0.0.1", 0))
    listener.settimeout(0.5)
    take = tmp_path / "demo.mid"
    command = [sys.executable, "-m", "vrae_live", "serve", "--checkpoint", str(checkpoint_dir), "--demo",
               "--no-midi", "--record", str(take), "--duration", "2", "--host", "127.0.0.1", "--port", "0",
               "--web-port", "0", "--feedback", f"127.0.0.1:{listener.getsockname()[1]}"]
    proc = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    positions = []
    try:
        while proc.poll() is None or not positions:
            try:
                message = OscMessage(listener.recv(4096))
            except socket.timeout:
                if proc.poll() is not None:
                    break
                continue
            if message.address == "/vrae/xy":
                positions.append(tuple(message.params))
        output = proc.communicate(timeout=30)[0]
    finally:
        listener.close()
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 0, output
    assert "demo" in output and "stopped:" in output
    start = DemoPath.for_songs(load_checkpoint(checkpoint_dir).song_spots()).at(0.0)
    assert positions and positions[0] == pytest.approx(start, abs=1e-6)
    recorded = [m for m in mido.MidiFile(take) if m.type in ("note_on", "note_off")]
    assert sum(m.type == "note_on" and m.velocity > 0 for m in recorded) >= 4
    assert_nothing_hangs(recorded)


def test_takes_played_together_are_the_takes_played_alone(checkpoint_dir):
    """Measurements play their takes as voices of one stream: take k is the take seeded seed + k."""
    ckpt = load_checkpoint(checkpoint_dir)
    plane = ckpt.latent_plane()
    zs = [plane.z_at(0.1, 0.1), plane.z_at(0.9, 0.9), plane.z_at(0.1, 0.1)]
    together = play_takes(ckpt, zs, 96, seed=5)
    for k, z in enumerate(zs):
        alone, _ = play_takes(ckpt, [z], 96, seed=5 + k)[0]
        assert np.array_equal(together[k][0], alone), k
    assert not np.array_equal(together[0][0], together[2][0])  # the same z, its own dice


def test_takes_played_together_are_the_takes_render_take_plays(checkpoint_dir):
    """What the measures play is what `generate` writes: voice k of the batch, in a key, is the take
    rendered through serve's Performer seeded seed + k, at the same density and temperature."""
    ckpt = load_checkpoint(checkpoint_dir)
    plane = ckpt.latent_plane()
    zs = [plane.z_at(0.2, 0.7), plane.z_at(0.8, 0.3)]
    together = play_takes(ckpt, zs, 80, seed=3, density=0.6, temperature=0.8, key=2, scale="minor", key_strength=0.9)
    for k, z in enumerate(zs):
        settings = TakeSettings(density=0.6, temperature=0.8, seed=3 + k, key=2, scale="minor", key_strength=0.9)
        alone = render_take(ckpt, fixed_path(z), 80, settings=settings)
        assert np.array_equal(together[k][0], alone.frames), k
        assert alone.frames.any(), k
    unleaned = play_takes(ckpt, zs, 80, seed=3, density=0.6, temperature=0.8)
    assert any(not np.array_equal(a[0], b[0]) for a, b in zip(together, unleaned))  # the key did lean
