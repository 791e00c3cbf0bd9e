"""Following chords on a real JACK server: a separate JACK client holds chords on `vrae-live follow`
while `serve --key C --key-strength 1 --follow` plays, and another records both, as a DAW would:
every note-on is in the key or the chord held, a chord's own notes come in the frame decoded after
it arrives, and nothing hangs at a change or at the stop. And a decoder told the key (`--key-input`)
plays in the key serve is given, and in the one /vrae/key sends while it plays."""

from __future__ import annotations

import subprocess

import pytest
import torch

from vrae_live.checkpoint import save_checkpoint
from vrae_live.config import load_config
from vrae_live.models import model_for
from vrae_live.play.key import scale_classes
from vrae_live.testing.jack import MidiDump, jack_connect
from vrae_live.testing.serve import ServeProcess, all_notes_off, hanging, note_ons

PORT = "vrae-live:vrae-live"
FOLLOW = "vrae-live follow:vrae-live follow"
PERIOD_S = 60 / 240 / 4  # a frame of a model of sixteenths at ServeProcess's 240 bpm
LAG_S = 2 * PERIOD_S + 0.01  # a frame decoded ahead, then the frame that hears the chord; JACK's cycles
CHORD_CHANNEL = 15
C_MAJOR = scale_classes(0, "major")
# F# major (all outside C major: the random model strikes some of its 12 pitches in the first frame
# it may), E major (G# outside), released
CHORDS = ((54, 58, 61), (52, 56, 59), ())


@pytest.fixture(scope="module")
def eager_checkpoint(tmp_path_factory):
    """A live-2d model with random weights: it strikes notes on every pitch every frame, so what a
    chord allows is heard at once."""
    config = load_config("live-2d", {"hidden": 32})
    torch.manual_seed(0)
    return save_checkpoint(tmp_path_factory.mktemp("eager") / "model", model_for(config, 49).eval(), config,
                           list(range(36, 85)))


class ChordSender:
    """A JACK client of its own (python-rtmidi) that holds chords on channel 16."""

    def __init__(self, *destinations: str) -> None:
        import rtmidi

        self.out = rtmidi.MidiOut(rtmidi.API_UNIX_JACK, name="chord-sender")
        self.out.open_virtual_port("out")
        for destination in destinations:
            jack_connect("chord-sender:out", destination)
        self.held: tuple[int, ...] = ()

    def hold(self, chord: tuple[int, ...]) -> int:
        """Release the chord held and hold ``chord``; the messages sent."""
        count = len(self.held) + len(chord)
        for note in self.held:
            self.out.send_message([0x80 | CHORD_CHANNEL, note, 0])
        for note in chord:
            self.out.send_message([0x90 | CHORD_CHANNEL, note, 90])
        self.held = chord
        return count

    def close(self) -> None:
        self.out.close_port()
        self.out.delete()


def played(events):
    return [e for e in events if e.data[0] & 0x0F != CHORD_CHANNEL]


def sent(events):
    return [e for e in events if e.data[0] & 0x0F == CHORD_CHANNEL and e.data[0] < 0xF0]


@pytest.mark.slow
@pytest.mark.jack
def test_serve_follows_the_chords_held_on_its_follow_input(jack_server, eager_checkpoint):
    daemon = ServeProcess(eager_checkpoint, "--key", "C", "--key-strength", "1", "--follow", "--glide", "0",
                          env=jack_server.env)
    try:
        assert "key: C major, strength 1" in daemon.output and "follow: send the chords to vrae-live follow" \
            in daemon.output, daemon.output
        with MidiDump(PORT) as dump:
            sender = ChordSender(FOLLOW, dump.input_port)
            try:
                dump.wait_until(lambda ev: len(note_ons(played(ev))) >= 32, timeout=30)
                changes = []
                for chord in CHORDS:
                    start = len(dump.events)
                    messages = sender.hold(chord)
                    # the change as the recording sees it: when its last message arrived
                    arrived = dump.wait_until(lambda ev: len(sent(ev[start:])) >= messages, timeout=10)
                    changes.append((sent(arrived[start:])[-1].time, chord))
                    count = len(note_ons(played(dump.events)))
                    dump.wait_until(lambda ev: len(note_ons(played(ev))) >= count + 64, timeout=30)
            finally:
                sender.close()
            daemon.proc.terminate()
            assert daemon.wait(timeout=30) == 0, daemon.output
            events = dump.wait_until(lambda ev: all_notes_off(ev), timeout=10)
    finally:
        daemon.kill()

    ons = note_ons(played(events))
    times = [t for t, _ in changes]
    for (at, chord), until in zip(changes, times[1:] + [float("inf")]):
        allowed = C_MAJOR | {n % 12 for n in chord}
        settled = [e for e in ons if at + LAG_S <= e.time < until]
        assert settled, f"nothing played while {chord} was held"
        outside = [e.data[1] for e in settled if e.data[1] % 12 not in allowed]
        assert not outside, f"notes outside C major and {chord}: {outside}"
        if chord == CHORDS[0]:  # F# major, all outside the key: its notes come in the frame decoded after it
            own = [e.time for e in ons if e.time >= at and e.data[1] % 12 in {n % 12 for n in chord} - C_MAJOR]
            assert own and own[0] - at <= LAG_S, f"first note of {chord} {own[0] - at if own else None:.3f} s after it"
    before = [e.data[1] % 12 for e in ons if e.time < times[0]]
    assert set(before) <= C_MAJOR
    assert hanging(played(events)) == set()
    assert "chord changes" in daemon.output, daemon.output


@pytest.fixture(scope="module")
def tonic_checkpoint(tmp_path_factory):
    """A VRAE told the key whose frame is its key's tonic alone, from the octave above middle C; its songs
    were in G major."""
    config = load_config(None, {"hidden": 12, "latent": 2, "z_every_step": True, "key_input": True,
                                "steps_per_beat": 4})
    model = model_for(config, list(range(60, 72)))
    with torch.no_grad():
        for p in model.parameters():
            p.zero_()
        model.to_h0.weight[:, 2:] = 5 * torch.eye(12)  # h_0 is the key, and so is every step's state
        model.decoder.weight_ih_l0[:, 12 + 2:] = 5 * torch.eye(12)
        model.to_logits.weight.copy_(40 * torch.eye(12))
        model.to_logits.bias.fill_(-20.0)
    return save_checkpoint(tmp_path_factory.mktemp("tonic") / "model", model.eval(), config, list(range(60, 72)),
                           {"training": {"key": 7}})


@pytest.mark.slow
@pytest.mark.jack
def test_serve_tells_a_decoder_told_the_key_the_key_it_is_given(jack_server, tonic_checkpoint):
    """--key D --scale minor reaches the decoder (F major's signature: it holds F), and the keys /vrae/key
    sends while it plays, from an independent OSC client: A (minor: C major's signature, so C), then D again."""
    daemon = ServeProcess(tonic_checkpoint, "--key", "D", "--scale", "minor", env=jack_server.env)

    def send_key(name: str) -> None:
        subprocess.run(["oscsend", "127.0.0.1", str(daemon.osc_port), "/vrae/key", "s", name], check=True)

    try:
        assert "told the key: G major's signature unless --key says another" in daemon.output, daemon.output
        with MidiDump(PORT) as dump:  # F sounds already, held since serve started
            send_key("A")
            dump.wait_until(lambda ev: [e.data[1] for e in note_ons(ev)] == [60], timeout=30)
            send_key("D")
            dump.wait_until(lambda ev: [e.data[1] for e in note_ons(ev)] == [60, 65], timeout=30)
            daemon.proc.terminate()
            assert daemon.wait(timeout=30) == 0, daemon.output
            events = dump.wait_until(lambda ev: all_notes_off(ev), timeout=10)
    finally:
        daemon.kill()
    offs = [e.data[1] for e in events if e.data[0] & 0xF0 == 0x80 or (e.data[0] & 0xF0 == 0x90 and e.data[2] == 0)]
    assert offs[:2] == [65, 60]  # the F that --key D minor played, then the C of A minor
    assert [e.data[1] for e in note_ons(events)] == [60, 65]  # nothing else
    assert hanging(events) == set()
