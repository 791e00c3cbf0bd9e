"""`serve --sync midi-clock` end to end on a real JACK server: Debian's `jack_midi_clock` sends
MIDI beat clock from the JACK transport to serve's clock input, `jack_transport` starts and stops
it, and one `jack_midi_dump` records the clock and serve's notes in the same JACK frame time."""

from __future__ import annotations

import shutil

import numpy as np
import pytest

from tests.jack import require_jack_tools, skip_unless_ci
from vrae_live.testing.jack import JackServer
from vrae_live.testing.midi_clock import measure_take, onsets_on_grid, tick_frames
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
    sixteenths, errors = onsets_on_grid(first, start)
    assert len(errors) >= 10, output
    # The note-ons of one sixteenth (a chord) share their error: the figures count sixteenths,
    # each by its worst note-on.
    worst = np.array([np.abs(errors[sixteenths == s]).max() for s in np.unique(sixteenths)])
    p50, p80, p90 = np.percentile(worst, [50, 80, 90])
    off = int(np.sum(worst > 0.005))
    print(f"onset error against the clock's sixteenths: p50 {1000 * p50:.2f} ms, p80 {1000 * p80:.2f} ms, "
          f"p90 {1000 * p90:.2f} ms, max {1000 * worst.max():.2f} ms, signed median {1000 * np.median(errors):+.2f} ms; "
          f"{len(worst)} sixteenths ({len(errors)} note-ons), {off} over 5 ms off")
    # JACK hands MIDI on at period boundaries (1.3 ms) on the way in and on the way out: most
    # note-ons land 0.7-1.3 ms after their tick. The dummy driver on a shared 2-core VM stalls now
    # and then (a 34 ms cycle; once in a while over 75 ms, which serve takes for a lost clock); its
    # frames then part from wall time, and the sixteenths after a stall land up to 13 ms off in
    # JACK's frames (in CI about one in ten). Hence: the signed median and p50 tight (a note a tick
    # early or late, or a constant latency, fails them), p80 within JACK's two periods and the
    # source's jitter (Start plays on the first tick's arrival, and the loop narrows over the two
    # beats after it), and at most one sixteenth in ten over 5 ms.
    if not (abs(np.median(errors)) <= 0.0015 and p50 <= 0.0015 and p80 <= 0.00201 + jitter_ms / 1000
            and off <= len(worst) / 10):
        pytest.fail(f"onset errors (ms, in order): {np.round(1000 * errors, 2).tolist()}\nserve said:\n{output}",
                    pytrace=False)
    # Stop: the clock's Stop, then within a tick every note off and All Notes Off, and no note-on after it
    stop_frame = next(e.frame for e in first if e.data == b"\xfc")
    silenced = [e for e in first if e.frame >= stop_frame and e.data[0] & 0xF0 in (0x80, 0x90, 0xB0)]
    assert silenced and max(e.frame for e in silenced) - stop_frame <= tick_frames(bpm), silenced
    # ... apart from the note-ons of a sixteenth whose tick was due as the Stop reached serve: they
    # can follow it by a JACK cycle or two (midi_clock.py's docstring), and are silenced with the rest.
    in_flight = 2 * server.period_frames
    late = note_ons([e for e in first if e.frame > stop_frame + in_flight])
    assert not late, f"note-ons after the Stop at frame {stop_frame}: {[(e.frame, e.data.hex()) for e in late]}"
    assert hanging(channel_messages(first)) == set()
    # Continue: notes again, on the grid of the ticks after it; nothing hangs at the end
    assert note_ons(events[stopped:])
    assert hanging(channel_messages(events)) == set()
