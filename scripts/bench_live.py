"""Live-path speed: decode time per hop, MIDI timing through JACK, and pad-to-sound delay.

Three measurements, each against the goal it serves:

decode
    ``Stream.next_frame`` (one voice), one call per frame as ``serve`` makes them, for the
    paper-2d and paper-20d presets with random weights (timing does not depend on what the
    weights learnt) and the shipped model (``checkpoints/default``). The pad jumps at every
    hop boundary and again mid-hop, so the frames that begin a window (the teacher-forced
    pass over the context, plus the look-past for the cross-fade) are timed as well as the
    plain steps, and a paper preset (z only in h_0) re-anchors once a hop. p50, p99 and the
    worst frame, against one frame period (the daemon decodes in the clock's own thread
    right after a tick, so a frame decoding longer than a period makes the next tick late)
    and the goal "p99 under a quarter of a frame period". The live-2d preset too, with random
    weights: as it was, a tanh RNN of 384 units, and as it is, a GRU of 224 with onsets, the meter
    and a frame's notes drawn together (a mixture of 8); its frames as the binary roll, and with
    onsets and the meter, each pitch drawn on its own; and with the decoder told the key too
    (``--key-input``); and the median frame of each against the tanh RNN's.
jitter
    ``vrae-live serve --midi-api jack`` as a subprocess, on a private JACK server (dummy
    driver, 48 kHz, 64-frame periods, so the floor is 1.3 ms), received by
    ``jack_midi_dump`` in a separate JACK client. Every note-on is due on the frame grid
    ``offset + k * period``; the period comes from the checkpoint's timing (and --bpm), the
    offset is the median residual. p50 and p99 of |note-on - grid time|, idle and while
    another thread floods the daemon with /vrae/xy over UDP.
pad delay
    In process (``Performer``, ``MemorySink``, a fake clock): a /vrae/xy jump arrives
    after frame N; the delay is the number of frames until the first frame whose
    probabilities differ from a run without the jump (same seed), for every phase N of a
    hop, for the two presets and the shipped model. Goal: "within 2 frames" (the frame
    decoded next, or the one after when the move arrives just after a tick's decode).

    python3 scripts/bench_live.py                    # all three on the CPU
    python3 scripts/bench_live.py --device cuda      # decode on the GPU (on a machine with one)
    python3 scripts/bench_live.py --parts decode,pad # without a JACK server
    python3 scripts/bench_live.py --quick            # tiny sizes: checks the script runs
clock
    ``serve --sync midi-clock``. The delay-locked loop on synthetic clocks (no real time): the
    error of each predicted sixteenth against the clean grid, p50 and p99, with a clean clock and
    with +-1.5 ms (3 ms) of uniform jitter, and the ticks to lock (every later prediction within
    1 ms) after a jump from 120 to 90 bpm; the follower's frames on fake time against the grid
    with ticks 100, 211 and 463 dropped beside a clean clock. Then end to end on a private JACK
    server: ``jack_midi_clock`` at 100 and at 140 bpm, ``vrae_live.testing.jittered_clock`` (each
    tick moved by up to 1.5 ms either way; ``jack_midi_clock -J`` makes the tempo wander instead),
    and ``jittered_clock`` leaving out ticks 100, 211 and 463 at 100 bpm (at least 12 s a take),
    started by ``jack_transport``, serve's note-ons against the sixteenths of the straight line
    through the clock's ticks, both recorded by one ``jack_midi_dump`` (``--seconds`` each); and
    Start to the first note (ms). Goals: p99 <= 2 ms clean, <= 3 ms with jitter; locked within a
    beat (24 ticks).

    python3 scripts/bench_live.py --parts clock
voices
    ``serve --voices N``: decode time per frame for 1, 2, 4, 8 and 16 voices, each at its own
    z, decoded together by one ``Stream`` (one batched model call per step), against N
    separate one-voice ``Stream``s in the same run (the sum of their ``next_frame`` calls
    for the frame), for a paper preset (z only in h_0) and the shipped model; every voice
    starts on frame 0, so windows begin on the same frames for both. The voice counts are
    measured in turn within each frame (the 1-voice reference is the same code, the same
    frames, the same moments of the machine's load). Per count: the median frame, and the
    median over hops of a hop's mean frame (its window start included: the cost of a frame
    over a hop, one load spike spoiling only its hop), each as a ratio to one voice; means and
    the worst frame. Goal: 8 voices cost at most twice one voice; and no frame as long as a
    frame period (a late tick). Then the whole play loop beside it, 1 and 8 voices, every voice
    touched at its own spot: what ``Performer.run`` does between two ticks (the frame's notes of
    every voice to MIDI messages, each encoded as the port's sink does, then the next frame's
    controls, z and decode), the clock left out, the two counts in turn each frame; the same
    figures and ratios, and the MIDI messages a frame; and both again in key (D minor at the
    default key strength, a chord held: ``play/key.py``), with the ratio to the loop out of key.

    python3 scripts/bench_live.py --parts voices [--device cuda]

Each part is a module of ``scripts/live_bench/``; this file reads the command line and runs them.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
from pathlib import Path

import torch

from vrae_live.machine import machine_line
from vrae_live.testing.jack import missing_jack_tools

sys.path.insert(0, str(Path(__file__).resolve().parent))  # the parts: live_bench/, beside this script

from live_bench import clock, clock_out, decode, jitter, pad, voices
from live_bench.common import PRESETS, SHIPPED, make_checkpoint


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--device", default="cpu", help="cpu or cuda, for the decode timing (default cpu)")
    parser.add_argument("--threads", type=int, default=None, help="torch intra-op threads (default: torch's choice)")
    parser.add_argument("--hops", type=int, default=200, help="timed hops per model (default 200)")
    parser.add_argument("--seconds", type=float, default=20.0, help="seconds of MIDI per jitter phase (default 20)")
    parser.add_argument("--rate", type=float, default=2000.0, help="OSC messages per second in the flood (default 2000)")
    parser.add_argument("--bpm", type=float, default=120.0)
    parser.add_argument("--jitter-preset", default="paper-2d", choices=PRESETS, help="model the daemon plays")
    parser.add_argument("--parts", default="decode,pad,jitter", help="which measurements, comma-separated "
                        "(default decode,pad,jitter)")
    parser.add_argument("--jack-period", type=int, default=64,
                        help="JACK frames per period (default 64 = 1.33 ms at 48 kHz; MIDI moves on period boundaries)")
    parser.add_argument("--load", type=int, default=max(1, (os.cpu_count() or 2) - 1),
                        help="busy processes in the 'loaded' jitter phase (default: one per core but one; 0 skips "
                             "the phase). More than that measures how the machine shares out its cores, not vrae-live")
    parser.add_argument("--daemon", choices=("both", "realtime", "normal"), default="both",
                        help="the daemon's clock priority in the jitter runs: serve --realtime, --no-realtime, "
                             "or both, the normal run as the reference (default both; realtime only where permitted)")
    parser.add_argument("--require-jack", action="store_true", help="fail, not skip, when the JACK tools are missing")
    parser.add_argument("--voice-frames", type=int, default=192, help="timed frames per voice count (default 192)")
    parser.add_argument("--quick", action="store_true", help="tiny sizes (hidden 32, few hops, 1 s of MIDI)")
    args = parser.parse_args(argv)
    parts = set(args.parts.split(","))
    known = {"decode", "pad", "jitter", "clock", "clock-out", "voices"}
    if parts - known:
        parser.error(f"unknown --parts {sorted(parts - known)}; known: {', '.join(sorted(known))}")
    if args.threads:
        torch.set_num_threads(args.threads)
    hidden = 32 if args.quick else None
    if args.quick:
        args.hops, args.seconds, args.rate, args.load = 5, 1.0, 500.0, min(args.load, 1)
        args.voice_frames = 16

    devices = [torch.device("cpu")]
    if args.device.startswith("cuda"):
        if torch.cuda.is_available():
            devices.append(torch.device(args.device))
        else:
            print(f"note: --device {args.device} asked for, but torch sees no CUDA GPU here; CPU figures only")
    print(machine_line(devices[-1]) + ("; --quick: hidden 32, figures mean nothing" if args.quick else ""))

    with tempfile.TemporaryDirectory(prefix="bench-live-") as tmp:
        ckpts = {preset: make_checkpoint(preset, Path(tmp) / preset, hidden) for preset in PRESETS}
        if not args.quick and (SHIPPED / "config.json").exists():
            ckpts["shipped"] = SHIPPED
        if "decode" in parts:  # and the live preset as it was, a tanh RNN of 384 units, against the preset as it
            # is (a GRU of 224, its notes drawn together from a mixture), its frames as the binary roll, with onsets and
            # the meter with each pitch drawn on its own, and told the key
            frames = {"live-2d before, tanh RNN 384": make_checkpoint("live-2d", Path(tmp) / "rnn", hidden or 384, cell="rnn"),
                      "live-2d, GRU 224": make_checkpoint("live-2d", Path(tmp) / "gru", hidden),
                      "live-2d, binary roll": make_checkpoint("live-2d", Path(tmp) / "roll", hidden, onsets=False,
                                                              meter=False, components=1),
                      "live-2d, onsets and meter": make_checkpoint("live-2d", Path(tmp) / "onsets", hidden,
                                                                   components=1),
                      "live-2d, told the key": make_checkpoint("live-2d", Path(tmp) / "keyed", hidden, key_input=True)}
            decode.run({**ckpts, **frames}, devices, args.hops, compare=tuple(frames))
        if "voices" in parts:
            voices.run(ckpts, devices, args.voice_frames)
        if "pad" in parts:
            pad.run(ckpts, phases=3 if args.quick else None)
        missing = missing_jack_tools()
        if "clock" in parts:
            clock.run(Path(tmp), args.seconds, missing)
        if "clock-out" in parts and not missing:
            clock_out.run(Path(tmp), args.seconds, args.bpm, args.jack_period)
        if "jitter" in parts:
            return jitter.run(ckpts[args.jitter_preset], args, missing)
    return 0


if __name__ == "__main__":
    sys.exit(main())
