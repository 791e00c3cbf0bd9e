"""Commands for playing: serve, ports."""

from __future__ import annotations

import re
from pathlib import Path

import click

from ..play.key import DEFAULT_KEY_STRENGTH
from .options import FiniteRange, OutputFile, live_options, note_settings

MIDI_APIS = click.Choice(["auto", "alsa", "jack", "coremidi", "winmm"])
SYNC_SOURCES = click.Choice(["internal", "midi-clock", "link"])


def _host_port(ctx, param, value):
    if value is None:
        return None
    host, _, port = value.rpartition(":")
    if not host or not port.isdigit():
        raise click.BadParameter("expected HOST:PORT, e.g. 192.168.1.20:9001")
    if not 1 <= int(port) <= 65535:
        raise click.BadParameter(f"port {port} is not in the range 1<=x<=65535.")
    return host, int(port)


def _networks(ctx, param, values):
    from ..live.osc.server import parse_allow

    try:
        return tuple(parse_allow(value) for value in values)
    except ValueError as err:
        raise click.BadParameter(str(err)) from err


def _token(ctx, param, value):
    if value is not None and not re.fullmatch(r"[A-Za-z0-9_-]{8,64}", value):
        raise click.BadParameter("8 to 64 letters, digits, - or _ (it goes in a URL).")
    return value


@click.command()
@click.option("--checkpoint", "checkpoint_dir", type=click.Path(path_type=Path),
              help="A trained model (a run directory of `vrae-live train`) [default: the shipped checkpoints/default].")
@click.option("--host", default="0.0.0.0", show_default=True, help="Address to listen on for OSC.")
@click.option("--port", type=click.IntRange(0, 65535), default=9000, show_default=True,
              help="UDP port to listen on for OSC (0: any free port).")
@click.option("--allow", multiple=True, callback=_networks, metavar="NETWORK",
              help="Obey OSC only from this network or address, e.g. 192.168.1.0/24 (repeatable) [default: any sender].")
@click.option("--controller", default=None, help="Controller dialect: touchosc, open-stage-control, lemur, or a .toml file.")
@click.option("--feedback", callback=_host_port, help="Send position and status back to HOST:PORT.")
@click.option("--midi-port", help="Connect to this existing MIDI port instead of opening a virtual 'vrae-live' port.")
@click.option("--midi-api", type=MIDI_APIS, default="auto", show_default=True)
@click.option("--record", type=OutputFile(), help="Also write the performance to this .mid file.")
@click.option("--sync", type=SYNC_SOURCES, default="internal", show_default=True,
              help="internal: play at --bpm on our own clock. midi-clock: follow a DAW's MIDI clock sent to the "
                   "virtual input 'vrae-live clock' (or --clock-port): its tempo, Start (on the bar), Stop, "
                   "Continue and song position. A model whose frames are seconds (the paper presets) follows "
                   "only Start/Stop/Continue, at its own rate. link: follow Ableton Link's session tempo, beat "
                   "and start/stop (beat-based models; needs the optional aalink package, GPL: "
                   "pip install 'vrae-live[link]').")
@click.option("--clock-port", metavar="NAME",
              help="With --sync midi-clock: listen to this existing MIDI output port (a unique part of its name) "
                   "instead of opening the virtual input 'vrae-live clock'.")
@click.option("--web-port", type=click.IntRange(0, 65535), default=8000, show_default=True,
              help="Serve the pad as a web page on this port, for a phone's browser (0: no page).")
@click.option("--web-host", default="0.0.0.0", show_default=True, help="Address the web page listens on.")
@click.option("--web-token", callback=_token, metavar="TOKEN",
              help="The page's password, in the URL serve prints [default: a new random one each start].")
@live_options
@click.option("--demo", is_flag=True, help="Tour the pad on its own until the controller sends a position.")
@click.option("--duration", type=FiniteRange(min=0, min_open=True),
              help="Stop after this many seconds [default: play until Ctrl-C].")
@click.option("--no-midi", is_flag=True, help="Open no MIDI port (with --record: render to the file only).")
@click.option("--quantum", type=FiniteRange(min=0, min_open=True), default=4.0, show_default=True,
              help="With --sync link: beats in Link's cycle (4: a bar); the stream starts on the next one.")
@click.option("--send-clock", is_flag=True,
              help="Be the master: send MIDI clock (24 per beat) with Start and Stop on the MIDI port, locked to "
                   "the frames, at --bpm (at Link's tempo with --sync link). A model in frames per second has no "
                   "beat: its clock runs at --bpm from the first frame.")
@click.option("--voices", type=click.IntRange(1, 16), default=1, show_default=True,
              help="Streams played at once, one per finger of a multi-touch pad: voice K follows "
                   "/vrae/voice/K/xy and starts and stops on /vrae/voice/K/on; voice 1 is /vrae/xy.")
@click.option("--channel", type=click.IntRange(1, 16), default=1, show_default=True,
              help="MIDI channel of voice 1 (also /vrae/channel); voice K plays on the K-1th channel after it.")
@click.option("--voice-ports", is_flag=True,
              help="With --voices: each voice on a virtual port of its own, 'vrae-live voice K', all on --channel.")
@click.option("--key-cut", is_flag=True,
              help="A new key or chord ends the notes sounding outside it at once [default: they end as they would].")
@click.option("--follow", is_flag=True,
              help="Lean on the chord held on the virtual MIDI input 'vrae-live follow' (a keyboard's left hand, a "
                   "chord track): its notes first, then the --key's scale.")
@click.option("--follow-port", metavar="NAME",
              help="Take the chords from this existing MIDI output port (a unique part of its name) instead of "
                   "opening 'vrae-live follow'; implies --follow.")
@click.option("--realtime/--no-realtime", default=True, show_default=True,
              help="Keep the clock at realtime priority where the system permits (Linux: root or the audio group).")
def serve(checkpoint_dir: Path, host: str, port: int, controller: str | None, feedback, midi_port: str | None,
          midi_api: str, record: Path | None, device: str, hop: int | None, glide: float, bpm: float,
          on_threshold: float, off_threshold: float, polyphony: int, min_len: int, max_len: int | None,
          seed: int, demo: bool, duration: float | None, no_midi: bool, realtime: bool, allow: tuple,
          sync: str, clock_port: str | None, quantum: float, send_clock: bool, web_port: int, web_host: str,
          web_token: str | None, voices: int = 1, channel: int = 1, voice_ports: bool = False,
          key: int | None = None, scale: str = "major", key_strength: float = DEFAULT_KEY_STRENGTH,
          key_cut: bool = False, follow: bool = False, follow_port: str | None = None) -> None:
    """Play a model live: OSC (or the web page) in, MIDI out. Stop with Ctrl-C."""
    from ..live.serve import PerformanceSettings, ServeOptions, serve as run

    notes = note_settings(on_threshold, off_threshold, polyphony, min_len, max_len)
    if clock_port is not None and sync != "midi-clock":
        raise click.BadParameter("needs --sync midi-clock.", param_hint="'--clock-port'")
    if voice_ports and voices == 1:
        raise click.BadParameter("needs --voices 2 or more.", param_hint="'--voice-ports'")
    performance = PerformanceSettings(hop=hop, glide_s=glide, bpm=bpm, notes=notes, seed=seed, demo=demo,
                                      voices=voices, key_cut=key_cut)
    run(ServeOptions(checkpoint=checkpoint_dir, host=host, port=port, controller=controller, feedback=feedback,
                     midi_port=midi_port, midi_api=midi_api, record=record, device=device, performance=performance,
                     duration_s=duration, no_midi=no_midi, realtime=realtime, allow=allow,
                     sync=sync, clock_port=clock_port, quantum=quantum, send_clock=send_clock,
                     channel=channel, voice_ports=voice_ports,
                     web_port=web_port, web_host=web_host, web_token=web_token, key=key, scale=scale,
                     key_strength=key_strength, follow=follow, follow_port=follow_port))


@click.command()
@click.option("--midi-api", type=MIDI_APIS, default="auto", show_default=True)
def ports(midi_api: str) -> None:
    """List the MIDI ports --midi-port can send to, and --clock-port and --follow-port take from."""
    from ..live.midi.rtmidi_port import list_ports

    for direction, title in (("output", "send notes to (--midi-port)"),
                             ("input", "take MIDI clock or chords from (--clock-port, --follow-port)")):
        names = list_ports(midi_api, direction)
        click.echo(f"MIDI ports to {title}:")
        click.echo("\n".join(f"  {name}" for name in names) if names else "  none")
