"""`serve --sync midi-clock` end to end on a real JACK server: Debian's `jack_midi_clock` sends
MIDI beat clock from the JACK transport to serve's clock input, `jack_transport` starts and stops
it, and one `jack_midi_dump` records the clock and serve's notes in the same JACK frame time."""

from __future__ import annotations

import shutil

import numpy as np
import pytest

from tests.jack import require_jack_tools, skip_unless_ci
from vrae_live.testing.jack import JackServer
from vrae_live.testing.midi_clock import measure_take, onset_errors_s, tick_frames
from vrae_live.testing.serve import channel_messages, hanging, note_ons


def require_midi_clock_tools():
    require_jack_tools()
    if shutil.which("jack_midi_clock") is None or shutil.which("jack_transport") is None:
        skip_unless_ci("jack_midi_clock not found (Debian: apt install jack-midi-clock)")


@pytest.mark.jack
@pytest.mark.slow
@pytest.mark.parametrize("bpm,jitter_ms", [(100, 0.0), (140, 0.0), (100, 1.5)],
                         ids=["jack_midi_clock-100", "jack_midi_clock-140", "jittered-100"])
def test_serve_plays_on_the_clocks_sixteenths_starts_on_the_bar_and_stops_within_a_tick(beat_checkpoint, bpm, jitter_ms):
    require_midi_clock_tools()
    # A fixed name: a SIGKILLed server leaks its slot in JACK's registry; the next run reclaims it.
    # Realtime (-R) where permitted: without it the dummy driver's cycles wander off wall time by
    # milliseconds, and the clock's ticks with them.
    with JackServer(period_frames=64, name="vrae-test-midi-clock", realtime=True) as server:
        events, stopped, output = measure_take(beat_checkpoint, server, bpm=bpm, jitter_ms=jitter_ms)
    assert "MIDI clock in: send the DAW's clock to vrae-live clock (jack)" in output, output
    first = [e for e in events[:stopped]]
    start = next(i for i, e in enumerate(first) if e.data == b"\xfa")
    errors = onset_errors_s(first, start)
    assert len(errors) >= 10, output
    p50, p90, p99 = np.percentile(np.abs(errors), [50, 90, 99])
    print(f"onset error against the clock's sixteenths: p50 {1000 * p50:.2f} ms, p90 {1000 * p90:.2f} ms, "
          f"p99 {1000 * p99:.2f} ms, signed median {1000 * np.median(errors):+.2f} ms, {len(errors)} note-ons")
    # JACK hands MIDI on at period boundaries (1.3 ms) on the way in and on the way out: most
    # note-ons land 0.7-1.3 ms after their tick. The dummy driver on a shared 2-core VM stalls now
    # and then (a 34 ms cycle; once in a while over 75 ms, which serve takes for a lost clock), and
    # the ticks after a stall come late in wall time: a few notes 2-4 ms early. Hence p90, not p99.
    if not (p50 <= 0.0015 and p90 <= 0.002 and p99 <= 0.005):
        pytest.fail(f"onset errors (ms, in order): {np.round(1000 * errors, 2).tolist()}\nserve said:\n{output}",
                    pytrace=False)
    # Stop: the clock's Stop, then within a tick every note off and All Notes Off, and nothing after it
    stop_frame = next(e.frame for e in first if e.data == b"\xfc")
    silenced = [e for e in first if e.frame >= stop_frame and e.data[0] & 0xF0 in (0x80, 0x90, 0xB0)]
    assert silenced and max(e.frame for e in silenced) - stop_frame <= tick_frames(bpm), silenced
    assert not note_ons([e for e in first if e.frame > stop_frame])
    assert hanging(channel_messages(first)) == set()
    # Continue: notes again, on the grid of the ticks after it; nothing hangs at the end
    assert note_ons(events[stopped:])
    assert hanging(channel_messages(events)) == set()
