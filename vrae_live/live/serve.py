"""``vrae-live serve`` assembled: the checkpoint, the controls and their OSC server, the
performer, the MIDI port and the recording, the signals that stop it, and what it prints.

The command line (``cli/live.py``) only turns options into :class:`ServeOptions`.
"""

from __future__ import annotations

import logging
import signal
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

from ..checkpoint import load_checkpoint
from ..config import default_checkpoint
from ..device import resolve_device
from ..errors import ConfigError
from .controllers import CANONICAL, load_controller
from .controls import Controls
from .midi.rtmidi_port import RtMidiSink
from .midi.sink import TeeSink
from .midi.smf import MidiFileRecorder
from .osc.feedback import FeedbackSender
from .osc.server import OscServer, listen_addresses
from .performer import PerformanceSettings, PerformanceStats, Performer
from .realtime import PRIORITY, make_realtime

log = logging.getLogger("vrae_live")


@dataclass(frozen=True)
class ServeOptions:
    checkpoint: Path | None = None  # None: the shipped model
    host: str = "0.0.0.0"
    port: int = 9000
    controller: str | None = None  # a controller preset's name or .toml path; None: canonical /vrae/... only
    feedback: tuple[str, int] | None = None  # (host, port) to send position and status back to
    midi_port: str | None = None  # an existing port to connect to; None: a virtual port
    midi_api: str = "auto"
    record: Path | None = None
    device: str = "auto"
    performance: PerformanceSettings = field(default_factory=PerformanceSettings)
    duration_s: float | None = None  # None: until stopped
    no_midi: bool = False
    realtime: bool = True
    allow: tuple = ()  # ip_network values whose senders are obeyed; empty: any sender


def serve(options: ServeOptions, echo: Callable[[str], None] = log.info) -> PerformanceStats:
    """Play until Ctrl-C, SIGTERM or ``duration_s``; every note is switched off however it ends."""
    checkpoint_dir = options.checkpoint or default_checkpoint()
    ckpt = load_checkpoint(checkpoint_dir, resolve_device(options.device))
    dialect = load_controller(options.controller) if options.controller else CANONICAL
    controls = Controls(dialect, latent_size=ckpt.config.model.latent)
    if options.no_midi and options.record is None:
        raise ConfigError("--no-midi plays to nowhere: add --record take.mid")
    midi_out = None if options.no_midi else RtMidiSink(options.midi_port, api=options.midi_api)
    try:
        recorder = MidiFileRecorder(options.record, bpm=options.performance.bpm) if options.record else None
    except OSError as err:
        raise ConfigError(f"cannot write the --record file {options.record}: {err.strerror or err}") from err
    sink = TeeSink(midi_out, recorder) if midi_out and recorder else midi_out or recorder
    performer = Performer(ckpt, controls, sink, options.performance)
    sender = FeedbackSender(*options.feedback, dialect) if options.feedback else None
    if sender is not None:
        performer.on_frame = lambda index, state: sender.send(state, f"frame {index}")
    stop = lambda signum, frame: performer.stop()
    signal.signal(signal.SIGINT, stop)
    signal.signal(signal.SIGTERM, stop)
    with OscServer(controls, options.host, options.port, allow=options.allow) as server:
        bound_host, bound_port = server.address
        echo(f"model {checkpoint_dir}: {ckpt.config.model.model} latent {ckpt.config.model.latent}, "
             f"{ckpt.timing.describe()}, hop {performer.hop} frames, on {next(ckpt.model.parameters()).device}")
        if midi_out is not None:
            echo(f"MIDI out: {midi_out.port_name} ({midi_out.api})")
        addresses = listen_addresses(bound_host, bound_port) or [f"{bound_host}:{bound_port}"]
        echo("OSC in: send to " + ", ".join(addresses))
        for line in dialect.describe():
            echo(f"  {line}")
        for line in server.describe():
            echo(line)
        if options.performance.demo:
            echo("demo: touring the pad until the controller sends a position")
        if options.realtime:  # this thread runs the performer; the OSC thread, started before, stays ordinary
            problem = make_realtime()
            echo(f"clock: realtime priority (SCHED_FIFO {PRIORITY})" if problem is None
                 else f"clock: normal priority; {problem}")
        echo("ready")
        duration = options.duration_s
        try:
            stats = performer.run(None if duration is None else max(1, round(duration / performer.period_s)))
        finally:
            if sender is not None:
                sender.close()
    osc = controls.stats
    ignored = {k: v for k, v in osc.items() if k not in ("datagrams", "accepted")}
    echo(f"stopped: {stats.line()}; OSC {osc.get('datagrams', 0)} datagrams, {osc.get('accepted', 0)} applied"
         + (f", ignored or clamped {dict(ignored)}" if ignored else ""))
    if options.record is not None:
        echo(f"recorded {options.record}")
    return stats
