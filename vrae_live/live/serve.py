"""``vrae-live serve`` assembled: the checkpoint, the controls and their OSC server, the
performer, the MIDI port and the recording, the signals that stop it, and what it prints.

The command line (``cli/live.py``) only turns options into :class:`ServeOptions`.
"""

from __future__ import annotations

import contextlib
import logging
import signal
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

from ..checkpoint import load_checkpoint
from ..config import default_checkpoint
from ..device import resolve_device
from ..errors import ConfigError, MidiPortError
from ..play.clock import Clock, FrameClock
from ..play.key import DEFAULT_KEY_STRENGTH, key_name
from ..play.notes import SONGS
from ..play.performer import PerformanceSettings, PerformanceStats, Performer
from ..play.sink import MidiSink, TeeSink
from ..play.smf import MidiFileRecorder
from ..play.state import ControlState
from ..play.stream import live_hop
from .controllers import CANONICAL, load_controller
from .controls import Controls
from .midi.follow import ChordFollower
from .midi.rtmidi_port import DEFAULT_FOLLOW_PORT_NAME, RtMidiInput, RtMidiSink
from .osc.feedback import FeedbackSender
from .osc.server import OscServer, listen_addresses
from .realtime import PRIORITY, make_realtime
from .sync.clock_out import ClockSender, frames_per_tick
from .sync.link import LinkClock, LinkSession, describe as describe_link
from .sync.midi_clock import MidiClockFollower

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
    sync: str = "internal"  # internal: our own clock at --bpm; midi-clock: follow a DAW's MIDI clock; link: Ableton Link
    clock_port: str | None = None  # midi-clock: an existing output port to listen to; None: a virtual input
    quantum: float = 4.0  # beats (--sync link): the stream starts on the next multiple
    send_clock: bool = False  # MIDI clock, Start and Stop on the MIDI port (vrae-live as the master)
    channel: int = 1  # MIDI channel of voice 1 (1..16); voice k plays on channel + k - 1
    voice_ports: bool = False  # each voice on a virtual port of its own ("vrae-live voice K"), all on `channel`
    web_port: int = 0  # the web page's port; 0: no page (the command line's default is 8000)
    web_host: str = "0.0.0.0"
    web_token: str | None = None  # None: a new random token each start
    key: int | None = None  # the key's pitch class 0..11 at the start (play/key.py); None: as the model plays
    scale: str = "major"
    key_strength: float = DEFAULT_KEY_STRENGTH
    follow: bool = False  # lean on the chord held on a MIDI input (virtual 'vrae-live follow', or follow_port)
    follow_port: str | None = None  # an existing output port to take the chords from


STOP_SIGNALS = {signal.SIGINT: "Ctrl-C", signal.SIGTERM: "SIGTERM", signal.SIGHUP: "the terminal closed (SIGHUP)"}


def serve(options: ServeOptions, echo: Callable[[str], None] = log.info) -> PerformanceStats:
    """Play until Ctrl-C, SIGTERM, SIGHUP, ``duration_s`` or a lost MIDI port; every note is
    switched off however it ends, and the ``stopped:`` line (and ``recorded``) always printed.

    Everything that can fail on the user's input (the checkpoint, the controller preset, the
    hop, the OSC port, the --record file) is checked or opened before the MIDI port, so a mistake never leaves a
    port behind that a DAW has already seen; the performer is built last, with its ports, clock and sinks.
    """
    if options.no_midi and options.record is None:
        raise ConfigError("--no-midi plays to nowhere: add --record take.mid")
    if options.no_midi and options.send_clock:
        raise ConfigError("--send-clock sends on the MIDI port: not with --no-midi")
    voices = options.performance.voices
    if options.voice_ports and (voices == 1 or options.midi_port or options.no_midi or options.record):
        raise ConfigError("--voice-ports opens a virtual port per voice: it needs --voices 2 or more, and "
                          "neither --midi-port, --no-midi nor --record (record the ports in the DAW)")
    checkpoint_dir = options.checkpoint or default_checkpoint()
    ckpt = load_checkpoint(checkpoint_dir, resolve_device(options.device))
    live_hop(ckpt, options.performance.hop)  # refuses a --hop that does not fit the model
    dialect = load_controller(options.controller) if options.controller else CANONICAL
    controls = Controls(dialect, latent_size=ckpt.config.model.latent, voices=voices,
                        initial=ControlState(channel=options.channel, key=options.key, scale=options.scale,
                                             key_strength=options.key_strength))
    period_s = ckpt.timing.frame_seconds(options.performance.bpm)
    follower = None
    if options.sync == "midi-clock":  # refuses a grid that does not fit 24 ppqn before anything opens
        follower = MidiClockFollower(ckpt.timing.steps_per_beat, period_s)
    elif options.sync not in ("internal", "link"):
        raise ConfigError(f"unknown --sync {options.sync!r}; known: internal, midi-clock, link")
    with contextlib.ExitStack() as opened:
        clock: Clock = _follow_link(options, ckpt, opened, echo) if options.sync == "link" else follower or FrameClock(period_s)
        server = opened.enter_context(OscServer(controls, options.host, options.port, allow=options.allow))
        web = _open_web(options, ckpt, checkpoint_dir, controls, opened)
        recorder = None
        if options.record is not None:
            try:
                recorder = MidiFileRecorder(options.record, bpm=options.performance.bpm)
            except OSError as err:
                raise ConfigError(f"cannot write the --record file {options.record}: {err.strerror or err}") from err
            opened.callback(recorder.close)
        on_frame = None
        if options.feedback:
            sender = FeedbackSender(*options.feedback, dialect)
            opened.callback(sender.close)

            def on_frame(index: int, state: ControlState) -> None:
                sender.send(state, f"frame {index}")
        clock_in = chords = follow_in = None
        if follower is not None:
            clock_in = RtMidiInput(options.clock_port, follower.receive, api=options.midi_api)
            opened.callback(clock_in.close)
        if options.follow or options.follow_port:
            chords = ChordFollower(controls)
            follow_in = RtMidiInput(options.follow_port, chords.receive, api=options.midi_api,
                                    name=DEFAULT_FOLLOW_PORT_NAME, timing=False, option="--follow-port")
            opened.callback(follow_in.close)
        ports = _open_ports(options, voices, opened)  # the last to open: a port per voice, one port, or none
        midi_out = ports[0] if ports else None
        clock_out = None
        if midi_out is not None and options.send_clock:  # to the port only: a recording has no place for clock
            clock_out = ClockSender(midi_out, clock, frames_per_tick(
                options.performance.bpm, ckpt.timing.steps_per_beat, ckpt.timing.fs))
        sink: MidiSink | list[RtMidiSink] = ports  # with --voice-ports: each voice on its own
        if not options.voice_ports:
            sink = TeeSink(midi_out, recorder) if midi_out and recorder else midi_out or recorder
        performer = Performer(ckpt, controls, sink, options.performance, clock, on_frame, clock_out=clock_out)
        for port in ports:
            port.on_lost(lambda reason: performer.stop(reason, MidiPortError(reason)))
        if web is not None:
            from .web.status import LiveStatus

            web.status = LiveStatus(performer, options.sync, options.performance.bpm)  # the page was up before
        for signum, reason in STOP_SIGNALS.items():
            signal.signal(signum, lambda signum, frame, reason=reason: performer.stop(reason))
        _say_what_plays(echo, options, checkpoint_dir, ckpt, performer, ports, server, dialect, clock_in, web,
                        follow_in)
        duration = options.duration_s
        try:
            performer.run(None if duration is None else max(1, round(duration / performer.period_s)))
        finally:
            _say_how_it_ended(echo, options, performer, controls, web, chords)
    return performer.stats


def _open_ports(options, voices, opened) -> list[RtMidiSink]:
    """With --voice-ports a virtual port per voice, ``vrae-live voice K``, each its own client; else the
    one MIDI port (``--midi-port`` or the virtual ``vrae-live``), or none with --no-midi."""
    ports = []
    if options.voice_ports:
        for k in range(1, voices + 1):
            name = f"vrae-live voice {k}"
            ports.append(RtMidiSink(None, api=options.midi_api, virtual_name=name, client_name=name))
            opened.callback(ports[-1].close)
    elif not options.no_midi:
        ports.append(RtMidiSink(options.midi_port, api=options.midi_api))
        opened.callback(ports[-1].close)
    return ports


def _follow_link(options, ckpt, opened, echo) -> LinkClock:
    """A clock on the Link session's beat; the tempo and peers said now and when they change."""
    steps_per_beat = ckpt.timing.steps_per_beat
    if steps_per_beat is None:
        raise ConfigError(f"--sync link needs a beat-based model; this one plays {ckpt.timing.describe()}")
    said = []

    def say(tempo: float, peers: int) -> None:
        line = describe_link(tempo, peers)
        if not said or said[-1] != line:
            said.append(line)
            echo(line)

    session = LinkSession(options.performance.bpm, options.quantum, on_change=say)
    opened.callback(session.close)
    say(session.tempo, session.num_peers)
    return LinkClock(session, steps_per_beat, options.quantum)  # the performer wires its on_stop


def _open_web(options, ckpt, checkpoint_dir, controls, opened):
    """The web page (``live/web``) on its own thread, or None with ``web_port`` 0. It shows the
    performance once the performer is built and its ``status`` set."""
    if not options.web_port:
        return None
    from ..data.attributes import pad_labels
    from .web.server import WebServer

    model = f"{Path(checkpoint_dir).name}: {ckpt.config.model.model} latent {ckpt.config.model.latent}"
    web = WebServer(controls, options.web_host, options.web_port, token=options.web_token, allow=options.allow,
                    model=model, window_map=ckpt.window_map(), axes=pad_labels(ckpt.latent_plane().attributes))
    return opened.enter_context(web)


def _say_what_plays(echo, options, checkpoint_dir, ckpt, performer, ports, server, dialect, clock_in=None,
                    web=None, follow_in=None) -> None:
    echo(f"model {checkpoint_dir}: {ckpt.config.model.model} latent {ckpt.config.model.latent}, "
         f"{ckpt.timing.describe()}, hop {performer.hop} frames, on {next(ckpt.model.parameters()).device}, "
         f"up to {performer.bank.stream.settings.voice_limit} notes at once"
         + (" (as its songs)" if options.performance.notes.polyphony == SONGS else "")
         + (f", told the key: {key_name(ckpt.songs_key, 'major')}'s signature unless --key says another"
            if performer.bank.stream.keyed else ""))
    if options.voice_ports:
        echo(f"MIDI out: {len(ports)} voices on ports " + ", ".join(p.port_name for p in ports)
             + f" ({ports[0].api}), channel {options.channel}")
    elif ports:
        echo(f"MIDI out: {ports[0].port_name} ({ports[0].api})")
    voices = options.performance.voices
    if voices > 1:
        where = "" if options.voice_ports else \
            f" on channels {', '.join(str((options.channel - 1 + k) % 16 + 1) for k in range(voices))}"
        echo(f"voices: {voices}{where}; voice 1 plays until /vrae/voice/1/on 0, the others start on "
             f"/vrae/voice/K/on 1 (a touch) and fade within a beat on /vrae/voice/K/on 0")
    if clock_in is not None:
        follows = ("plays on its sixteenths" if ckpt.timing.steps_per_beat == 4 else
                   f"plays a frame every {performer.clock.ticks_per_frame} ticks") if ckpt.timing.beat_based else \
            "follows Start/Stop/Continue only and plays at the model's own rate (its frames are seconds, not beats)"
        where = "listening to" if not clock_in.virtual else "send the DAW's clock to"
        echo(f"MIDI clock in: {where} {clock_in.port_name} ({clock_in.api}); {follows}; waiting for Start")
    bound_host, bound_port = server.address
    addresses = listen_addresses(bound_host, bound_port) or [f"{bound_host}:{bound_port}"]
    echo("OSC in: send to " + ", ".join(addresses))
    for line in dialect.describe():
        echo(f"  {line}")
    for line in server.describe():
        echo(line)
    if web is not None:
        from .web.qr import terminal_qr

        urls = web.urls()
        for url in urls:
            echo(f"web: open {url}")
        for line in terminal_qr(urls[0]):
            echo(line)
        if ckpt.map is None:
            echo("web: this checkpoint has no map of its songs; the page shows the pad without dots "
                 "(add one: vrae-live map CHECKPOINT SONGS_DIR --store)")
    if follow_in is not None:
        where = "send the chords to" if follow_in.virtual else "taking the chords from"
        echo(f"follow: {where} {follow_in.port_name} ({follow_in.api}); the notes held there lean the voices "
             f"to their pitch classes (key strength {options.key_strength:g})")
    if options.key is not None:
        echo(f"key: {key_name(options.key, options.scale)}, strength {options.key_strength:g}"
             + (", a new key or chord ends the notes outside it" if options.performance.key_cut else ""))
    if options.performance.demo:
        echo("demo: touring the pad until the controller sends a position")
    if options.realtime:  # this thread runs the performer; the OSC thread, started before, stays ordinary
        problem = make_realtime()
        echo(f"clock: realtime priority (SCHED_FIFO {PRIORITY})" if problem is None
             else f"clock: normal priority; {problem}")
    echo("ready")


def _say_how_it_ended(echo, options, performer, controls, web=None, chords=None) -> None:
    """The stop line and the recording's line, whatever ended the take; a closed terminal
    (SIGHUP) cannot take them, and that must not hide how the take ended."""
    osc = controls.stats
    ignored = {k: v for k, v in osc.items() if k not in ("datagrams", "accepted")}
    lines = []
    if performer.stop_reason is not None:
        lines.append(f"stopping: {performer.stop_reason}")
    lines.append(f"stopped: {performer.stats.line()}; OSC {osc.get('datagrams', 0)} datagrams, "
                 f"{osc.get('accepted', 0)} applied" + (f", ignored or clamped {dict(ignored)}" if ignored else ""))
    if web is not None:
        lines.append(web.line())
    if performer.clock_out is not None:
        lines.append(performer.clock_out.line())
    if chords is not None:
        lines.append(chords.line())
    if options.record is not None:
        lines.append(f"recorded {options.record}")
    for line in lines:
        try:
            echo(line)
        except OSError:
            pass
