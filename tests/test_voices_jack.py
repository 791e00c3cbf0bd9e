"""Two voices on a real JACK server, recorded by a separate JACK client as a DAW's track would:
each plays on its own channel from its own corner, and a released voice leaves nothing sounding."""

from __future__ import annotations

import pytest
from pythonosc.udp_client import SimpleUDPClient

from vrae_live.testing.serve import ServeProcess, all_notes_off, hanging, note_ons

PORT = "vrae-live:vrae-live"


def on_channel(events, channel):
    return [e for e in events if e.data[0] & 0x0F == channel and e.data[0] & 0xF0 in (0x80, 0x90)]


@pytest.mark.slow
@pytest.mark.jack
def test_two_voices_at_opposite_corners_play_on_two_channels_and_a_release_leaves_none(jack_server, beat_checkpoint):
    from vrae_live.testing.jack import MidiDump

    daemon = ServeProcess(beat_checkpoint, "--voices", "2", "--channel", "3", "--on-threshold", "0.2",
                          "--off-threshold", "0.1", "--glide", "0", env=jack_server.env)
    try:
        assert "voices: 2 on channels 3, 4" in daemon.output, daemon.output
        with MidiDump(PORT) as dump:
            osc = SimpleUDPClient("127.0.0.1", daemon.osc_port)
            osc.send_message("/vrae/voice/1/xy", [0.0, 0.0])
            osc.send_message("/vrae/voice/2/xy", [1.0, 1.0])
            osc.send_message("/vrae/voice/2/on", [1])
            events = dump.wait_until(lambda ev: len(note_ons(on_channel(ev, 2))) >= 8
                                     and len(note_ons(on_channel(ev, 3))) >= 8, timeout=30)
            first, second = ([e.data[1] for e in note_ons(on_channel(events, ch))][:8] for ch in (2, 3))
            assert first != second  # two streams, not one copied onto two channels
            assert {e.data[0] & 0x0F for e in note_ons(events)} == {2, 3}

            osc.send_message("/vrae/voice/2/on", [0])
            released = len(dump.events)
            # voice 1 plays on (8 more notes) while voice 2 fades and ends with none sounding ...
            dump.wait_until(lambda ev: len(note_ons(on_channel(ev[released:], 2))) >= 8
                            and not hanging(on_channel(ev, 3)), timeout=30)
            after = dump.events[released:]
            # ... within a beat (at 240 bpm a beat is 0.25 s): it starts at most a beat's notes
            late = note_ons(on_channel(after, 3))
            assert len(late) <= 4 * 8, late  # a beat is 4 frames of this model; 8 notes a frame at most
            if late:
                assert late[-1].time - after[0].time < 0.25 + 0.1
            ended = on_channel(after, 3)
            assert not ended or ended[-1].time - after[0].time < 0.25 + 0.1  # its last note off within the beat
            daemon.proc.terminate()
            assert daemon.wait(timeout=30) == 0, daemon.output
            events = dump.wait_until(lambda ev: all_notes_off(ev), timeout=10)
        assert hanging(events) == set()
        assert "stopped:" in daemon.output
    finally:
        daemon.kill()


@pytest.mark.slow
@pytest.mark.jack
def test_voice_ports_each_carry_one_voice_and_a_release_leaves_none(jack_server, beat_checkpoint):
    """``--voice-ports``: each voice on a JACK port of its own, both on ``--channel``, each recorded by
    its own client connected to that port: two streams, and the released voice's port left silent."""
    from vrae_live.testing.jack import MidiDump

    ports = [f"vrae-live voice {k}:vrae-live voice {k}" for k in (1, 2)]
    daemon = ServeProcess(beat_checkpoint, "--voices", "2", "--voice-ports", "--channel", "3", "--on-threshold", "0.2",
                          "--off-threshold", "0.1", "--glide", "0", env=jack_server.env)
    try:
        assert "voices: 2;" in daemon.output, daemon.output
        with MidiDump(ports[0]) as one, MidiDump(ports[1]) as two:
            osc = SimpleUDPClient("127.0.0.1", daemon.osc_port)
            osc.send_message("/vrae/voice/1/xy", [0.0, 0.0])
            osc.send_message("/vrae/voice/2/xy", [1.0, 1.0])
            osc.send_message("/vrae/voice/2/on", [1])
            one.wait_until(lambda ev: len(note_ons(ev)) >= 8, timeout=30)
            two.wait_until(lambda ev: len(note_ons(ev)) >= 8, timeout=30)
            for dump in (one, two):  # every note on --channel 3, on its voice's own port
                assert {e.data[0] & 0x0F for e in note_ons(dump.events)} == {2}
            assert [e.data[1] for e in note_ons(one.events)][:8] != [e.data[1] for e in note_ons(two.events)][:8]

            osc.send_message("/vrae/voice/2/on", [0])
            released = len(one.events)
            # voice 2 fades within a beat (0.25 s at 240 bpm; a second allows for the machine) and stays silent
            two.wait_until(lambda ev: hanging(ev) == set(), timeout=1.0)
            silent = len(two.events)
            one.wait_until(lambda ev: len(note_ons(ev[released:])) >= 8, timeout=30)  # while voice 1 plays on
            assert note_ons(two.events[silent:]) == [], two.events[silent:]
            daemon.proc.terminate()
            assert daemon.wait(timeout=30) == 0, daemon.output
            for dump in (one, two):
                dump.wait_until(lambda ev: all_notes_off(ev), timeout=10)
                assert hanging(dump.events) == set()
        assert "stopped:" in daemon.output
    finally:
        daemon.kill()
