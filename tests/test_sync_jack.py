"""`serve --sync midi-clock` end to end on a real JACK server: Debian's `jack_midi_clock` (or the
harness's `jittered_clock`, which can leave ticks out) sends MIDI beat clock from the JACK transport
to serve's clock input, `jack_transport` starts and stops it, and one `jack_midi_dump` records the
clock and serve's notes in the same JACK frame time."""

from __future__ import annotations

import os
import re
import shutil

import numpy as np
import pytest

from tests.jack import require_jack_tools, skip_unless_ci
from vrae_live.testing.jack import JackServer
from vrae_live.testing.midi_clock import SAMPLE_RATE, lost_ticks_take, measure_take, onsets_on_grid, tick_frames
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
    # On the clock's sixteenths: a note a tick early or late (25 ms at 100 bpm), or a take played a
    # tick off (this test caught one: signed median -24 ms), fails the signed median; notes that
    # wander off their sixteenth fail the share on it. How precisely they land is the benchmark's
    # to measure (`scripts/bench_live.py --parts clock`: p99 1.33 ms on a quiet machine), not a
    # test's: JACK's dummy driver keeps no hardware clock, and on a shared VM whose host takes its
    # CPUs now and then (7-16 % steal measured over a take) its cycles stall and its frames part
    # from wall time by up to tens of ms, so one sixteenth in five can land several ms off for
    # reasons outside serve.
    tick_s = tick_frames(bpm) / SAMPLE_RATE
    on_its_sixteenth = np.mean(worst <= tick_s / 3)
    assert sixteenths.min() == 0, f"the first note-on is on sixteenth {sixteenths.min()}, not on the bar Start began"
    if not (abs(np.median(errors)) <= tick_s / 4 and on_its_sixteenth >= 0.75):
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


@pytest.mark.jack
@pytest.mark.slow
def test_serve_counts_in_ticks_the_clock_lost_and_stays_on_the_transports_sixteenths(beat_checkpoint):
    require_midi_clock_tools()
    bpm, drop = 100, (100, 211, 463)
    with JackServer(period_frames=64, name="vrae-test-midi-clock", realtime=True) as server:
        events, stopped, output = measure_take(beat_checkpoint, server, seconds=12.0, bpm=bpm, drop=drop)
    take = lost_ticks_take(events, stopped, bpm)
    gaps, lost, errors = take["gaps"], take["lost"], take["errors"]
    # The source left out its three; the dummy driver may drop a cycle, and its tick, of its own.
    assert take["ticks"] > max(drop) and sum(n for _, n in gaps) >= len(drop), gaps
    assert len(errors) >= 30, output
    tick_s = tick_frames(bpm) / SAMPLE_RATE
    # Within a third of a tick, as the test above and for its reasons: how precisely the notes land is
    # the benchmark's to measure. 3 ms (what this test asked of a quiet machine) measured the dummy
    # driver, not the lost ticks: on a quiet 2-core VM a clean take of jack_midi_clock at 100 bpm, no
    # tick lost, put 83 % of its note-ons within 3 ms, p99 6.00 ms (`scripts/bench_live.py --parts
    # clock`), and this take put 74-86 % there in six runs, before the levelled pad as after it.
    # Before the fix every note after a gap was a whole tick (25 ms) off: a third of a tick fails it.
    within = tick_s / 3
    share = np.mean(np.abs(errors) <= within)
    print(f"{lost} ticks missing at frames {gaps}; {100 * share:.1f} % of {len(errors)} note-ons within "
          f"{1000 * within:.1f} ms of the transport's sixteenths (load average {os.getloadavg()[0]:.1f})")
    if share < 0.95:
        pytest.fail(f"onset errors (ms, in order): {np.round(1000 * errors, 2).tolist()}\nserve said:\n{output}",
                    pytrace=False)
    # A beat after each gap, no note a whole tick off (before the fix, every later one was).
    tick_off = (np.abs(errors) > tick_s / 2) & take["settled"]
    assert not np.any(tick_off), f"note-ons a tick off a beat after a gap (ms): {np.round(1000 * errors[tick_off], 2)}"
    # serve counted every tick the recording shows missing (before the Stop and after the Continue) and said so.
    said = re.search(r"(\d+) clock ticks? lost, recovered", output)
    assert said and int(said.group(1)) == lost, output
