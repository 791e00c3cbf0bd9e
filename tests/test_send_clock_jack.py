"""`serve --send-clock` end to end on JACK, recorded by a separate JACK client as a DAW's MIDI
sync input would: Start, 24 clocks a beat at --bpm, Stop after the last note-off."""

from __future__ import annotations

import re

import mido
import numpy as np
import pytest

from vrae_live.config import default_checkpoint
from vrae_live.testing.jack import MidiDump, jack_connect
from vrae_live.testing.serve import ServeProcess, hanging, note_ons

CLOCK, START, STOP = 0xF8, 0xFA, 0xFC
BPM = 240  # ServeProcess runs serve at 240 bpm


class RealTimeStamps:
    """An rtmidi JACK input in this process: each clock tick's real time at the JACK cycle that
    carried it (rtmidi reads jack_get_time() in its process callback). The test's JACK runs without
    realtime priority, and its dummy driver's frame count falls behind real time when a cycle is
    late (a loaded machine): the DAW's timeline (jack_midi_dump's frames) carries those slips, the
    real-time stamps show what the daemon did."""

    def __init__(self, name: str):
        import rtmidi

        self.midi_in = rtmidi.MidiIn(rtmidi.API_UNIX_JACK, name=name, queue_size_limit=65536)
        self.midi_in.ignore_types(sysex=True, timing=False, active_sense=True)  # rtmidi drops clock by default
        self.midi_in.open_virtual_port("in")
        self.port = f"{name}:in"

    def clock_times(self) -> np.ndarray:
        elapsed, times = 0.0, []
        while (message := self.midi_in.get_message()) is not None:
            data, delta = message
            elapsed += delta
            if data[0] == CLOCK:
                times.append(elapsed)
        return np.array(times)

    def close(self) -> None:
        self.midi_in.close_port()
        self.midi_in.delete()


def grid_distance(times: np.ndarray, step: float) -> np.ndarray:
    """Each tick's signed distance from the grid ``offset + i * step``, the offset the median."""
    residual = times - np.arange(len(times)) * step
    return residual - np.median(residual)


@pytest.mark.slow
@pytest.mark.jack
def test_send_clock_starts_ticks_at_bpm_and_stops_after_the_last_note_off(jack_server, tmp_path):
    take = tmp_path / "take.mid"
    stamps = RealTimeStamps("rt-sync-in")
    with MidiDump(client_name="daw-sync-in") as dump:
        daemon = ServeProcess(default_checkpoint(), "--midi-port", "daw-sync-in", "--send-clock", "--duration", "4",
                        "--record", str(take))
        try:
            jack_connect("vrae-live:vrae-live", stamps.port)  # after "ready": it may miss the first ticks
            assert daemon.wait(timeout=30) == 0, daemon.output
        finally:
            daemon.kill()
        events = dump.wait_until(lambda ev: any(e.data[0] == STOP for e in ev), timeout=10)
    output = daemon.output
    frames = int(re.search(r"stopped: (\d+) frames", output).group(1))
    assert frames == 64  # 4 s of sixteenths at 240 bpm
    kinds = [e.data[0] for e in events]
    clocks = kinds.count(CLOCK)
    assert clocks == 6 * frames - 5  # 24 a beat; the take ends on the last frame's tick
    assert kinds.count(START) == 1 and kinds.count(STOP) == 1
    start, stop = kinds.index(START), kinds.index(STOP)
    ons = [i for i, e in enumerate(events) if e in note_ons(events)]
    offs = [i for i, e in enumerate(events) if e.data[0] & 0xF0 == 0x80 or (e.data[0] & 0xF0 == 0x90 and e.data[2] == 0)]
    assert ons and start < kinds.index(CLOCK) <= min(ons)
    assert stop > max(offs) and hanging([e for e in events if len(e.data) == 3]) == set()
    assert kinds[start + 1] == CLOCK

    nominal, period = 60 / (BPM * 24), jack_server.period_s
    frame_times = np.array([e.time for e in events if e.data[0] == CLOCK])
    real = stamps.clock_times()
    stamps.close()
    assert len(real) > clocks / 2
    for what, times in (("real time at the JACK cycle", real), ("JACK frame time (the DAW's timeline)", frame_times)):
        distance = np.abs(grid_distance(times, nominal)) * 1000
        print(f"clock ticks in {what}: spacing median {1000 * np.median(np.diff(times)):.3f} ms "
              f"(nominal {1000 * nominal:.3f}), distance from the grid p50 {np.percentile(distance, 50):.3f} ms, "
              f"p99 {np.percentile(distance, 99):.3f} ms, max {distance.max():.3f} ms")
    print(f"JACK period {1000 * period:.2f} ms; " + " | ".join(output.splitlines()[-3:-1]))
    assert abs(np.median(np.diff(real)) - nominal) <= period
    assert np.percentile(np.abs(grid_distance(real, nominal)), 50) <= period
    assert "MIDI clock out: 379 ticks" in output

    kept = {m.type for m in mido.MidiFile(take).tracks[0] if not m.is_meta}
    assert "note_on" in kept and not kept & {"clock", "start", "stop"}
