"""A MIDI beat clock with bounded jitter, driven by the JACK transport: the jittered clock source
of the end-to-end benchmark, and, leaving out chosen ticks, a clock that lost them.

Debian's ``jack_midi_clock -J`` does not jitter ticks around a steady grid: it jitters each
interval, so the ticks drift like a random walk (measured: +-12 % of a 25 ms tick left the ticks
27 ms off a straight line after 400 of them), which is a wandering tempo, not the jitter of a
USB MIDI interface or a busy DAW. This client sends tick k at ``k * tick + j_k`` transport frames,
``j_k`` uniform in +-``jitter_ms`` and independent of the others, so the grid the ticks jitter
around stays known: a straight line through them. ``--drop 100,211,463`` leaves those ticks out
(counted from the transport's frame 0, tick 0 there), as a driver that dropped the cycles they
were due in would, the later ticks staying on the transport's grid.

Like ``jack_midi_clock``: Start when the transport rolls from frame 0, Song Position Pointer and
Continue when it rolls from elsewhere, Stop when it stops. Run it in a process of its own
(``python -m vrae_live.testing.jittered_clock --bpm 100 --jitter-ms 1.5``): its process callback
is Python, and a Python callback in a process that also runs rtmidi can deadlock a synchronous
JACK server.
"""

from __future__ import annotations

import argparse
import math
import signal
import threading

import numpy as np

CLIENT = "vrae-jittered-clock"
PORT = f"{CLIENT}:out"
START, CONTINUE, STOP, TICK, SONG_POSITION = 0xFA, 0xFB, 0xFC, 0xF8, 0xF2


class JitteredTicks:
    """Which clock messages fall in a JACK cycle, from the transport's state and frame: the pure
    logic of the client, testable without JACK."""

    def __init__(self, tick_frames: float, jitter_frames: float, seed: int = 0, drop=()) -> None:
        self.tick_frames, self.jitter_frames = tick_frames, jitter_frames
        self.drop = frozenset(drop)  # ticks (numbered from the transport's frame 0) never sent
        self.rng = np.random.default_rng(seed)
        self.rolling = False
        self.next_tick = 0
        self.next_jitter = 0.0

    def _draw(self) -> float:
        return float(self.rng.uniform(-self.jitter_frames, self.jitter_frames))

    def cycle(self, rolling: bool, frame: int, nframes: int) -> list[tuple[int, bytes]]:
        """The (offset, message) pairs for a cycle of ``nframes`` starting at transport ``frame``."""
        out: list[tuple[int, bytes]] = []
        if rolling and not self.rolling:
            self.rolling = True
            self.next_tick = math.ceil(frame / self.tick_frames)
            self.next_jitter = max(0.0, self._draw()) if self.next_tick * self.tick_frames == frame else self._draw()
            if frame == 0:
                out.append((0, bytes([START])))
            else:
                sixteenth = -(-self.next_tick // 6)
                self.next_tick = sixteenth * 6  # a song position counts sixteenths: resume on the next one
                out += [(0, bytes([SONG_POSITION, sixteenth & 0x7F, sixteenth >> 7])), (0, bytes([CONTINUE]))]
        elif not rolling and self.rolling:
            self.rolling = False
            out.append((0, bytes([STOP])))
        while self.rolling:
            at = self.next_tick * self.tick_frames + self.next_jitter
            if at >= frame + nframes:
                break
            if self.next_tick not in self.drop:
                out.append((min(max(int(round(at)) - frame, 0), nframes - 1), bytes([TICK])))
            self.next_tick += 1
            self.next_jitter = self._draw()
        return out


def run(bpm: float, jitter_ms: float, sample_rate_hint: int | None = None, seed: int = 0, drop=()) -> None:
    import jack

    client = jack.Client(CLIENT, no_start_server=True)
    port = client.midi_outports.register("out")
    rate = sample_rate_hint or client.samplerate
    ticks = JitteredTicks(rate * 60.0 / (bpm * 24), rate * jitter_ms / 1000.0, seed, drop)

    @client.set_process_callback
    def process(nframes):
        port.clear_buffer()
        state, position = client.transport_query()
        for offset, message in ticks.cycle(state == jack.ROLLING, position["frame"], nframes):
            port.write_midi_event(offset, message)

    done = threading.Event()
    client.set_shutdown_callback(lambda status, reason: done.set())
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: done.set())
    with client:
        done.wait()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--bpm", type=float, default=100.0)
    parser.add_argument("--jitter-ms", type=float, default=1.5, help="each tick moved by up to this, either way")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--drop", default="", help="ticks to leave out, comma-separated (tick 0 at frame 0)")
    args = parser.parse_args()
    run(args.bpm, args.jitter_ms, seed=args.seed, drop=[int(k) for k in args.drop.split(",") if k])


if __name__ == "__main__":
    main()
