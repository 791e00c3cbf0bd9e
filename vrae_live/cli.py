"""The ``vrae-live`` command. Thin: heavy imports happen inside the commands."""

from __future__ import annotations

import json
import logging
import shutil
from pathlib import Path
from typing import Any

import click

from .errors import VraeLiveError

log = logging.getLogger("vrae_live")


class _EchoHandler(logging.Handler):
    """Log lines through click, to whatever stderr is now: plain for info, prefixed otherwise."""

    def emit(self, record: logging.LogRecord) -> None:
        message = record.getMessage()
        if record.levelno != logging.INFO:
            message = f"{record.levelname.lower()}: {message}"
        click.echo(message, err=True)


def _setup_logging(verbose: bool) -> None:
    if not any(isinstance(h, _EchoHandler) for h in log.handlers):
        log.addHandler(_EchoHandler())
    log.setLevel(logging.DEBUG if verbose else logging.INFO)


class _Group(click.Group):
    """Turns the project's errors into one line on stderr and exit status 1."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except VraeLiveError as err:
            click.echo(f"error: {err}", err=True)
            ctx.exit(1)


@click.group(cls=_Group, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="vrae-live")
@click.option("-v", "--verbose", is_flag=True, help="Show debug messages.")
def main(verbose: bool) -> None:
    """Train a VRAE on your MIDI songs, then play its latent space live."""
    _setup_logging(verbose)


# -- train ----------------------------------------------------------------------


def _pitch_range(ctx, param, value):
    if value is None:
        return None
    from .config import parse_pitch_range

    try:
        return parse_pitch_range(value)
    except VraeLiveError as err:
        raise click.BadParameter(str(err)) from None


@main.command()
@click.argument("songs_dir", type=click.Path(path_type=Path))
@click.option("--out", "out_dir", type=click.Path(path_type=Path), help="Run directory [default: checkpoints/<SONGS_DIR name>].")
@click.option("--preset", help="Model preset: a name in presets/ (live-2d, paper-2d, ...) or a .toml file "
              "[default: live-2d].")
@click.option("--resume", is_flag=True, help="Continue the interrupted run in --out (settings come from it).")
@click.option("--overwrite", is_flag=True, help="Replace a finished run in --out.")
@click.option("--epochs", type=int)
@click.option("--batch-size", type=int)
@click.option("--lr", type=float, help="Initial learning rate.")
@click.option("--lr-final", type=float, help="Learning rate at the last step (exponential decay).")
@click.option("--cell", type=click.Choice(["rnn", "gru", "lstm"]), help="Recurrent cell; rnn is the paper's.")
@click.option("--model", type=click.Choice(["vrae", "vrnn", "rnn"]), help="vrae (Fabius 2014), vrnn (Chung 2015) or rnn (no latent).")
@click.option("--hidden", type=int, help="Hidden units of encoder and decoder.")
@click.option("--latent", type=int, help="Latent dimensions (2 plays an XY pad directly).")
@click.option("--window", type=int, help="Time steps per training sequence.")
@click.option("--hop", type=int, help="Steps between window starts.")
@click.option("--fs", type=float, help="Frames per second (the paper used 20).")
@click.option("--steps-per-beat", type=int, help="A grid that follows the tempo map, e.g. 4 (sixteenths).")
@click.option("--pitch-range", callback=_pitch_range, help="Keep pitches LO-HI, e.g. 36-84 [default: those the songs use].")
@click.option("--max-windows-per-song", type=int, help="Take the first N windows of each song.")
@click.option("--reverse-input/--no-reverse-input", default=None, help="The encoder reads each window backwards.")
@click.option("--z-every-step/--no-z-every-step", default=None,
              help="Feed z to the decoder at every step, not only its first state.")
@click.option("--mu-batchnorm", type=float, help="Batch-normalise mu to this scale in training (0: off).")
@click.option("--kl-warmup-epochs", type=float, help="Epochs over which the KL weight rises from 0 to 1.")
@click.option("--free-bits", type=float, help="Nats per latent unit below which KL is not pushed down.")
@click.option("--input-dropout", type=float, help="Share of decoder inputs blanked in training (makes z matter).")
@click.option("--val-fraction", type=float, help="Share of songs held out for validation.")
@click.option("--device", type=click.Choice(["auto", "cpu", "cuda"]), help="auto takes CUDA when present.")
@click.option("--seed", type=int)
@click.option("--cache-dir", type=click.Path(path_type=Path), help="Where parsed songs are cached.")
@click.option("-q", "--quiet", is_flag=True, help="No progress bar.")
def train(songs_dir: Path, out_dir: Path | None, preset: str | None, resume: bool, overwrite: bool,
          cache_dir: Path | None, quiet: bool, **settings: Any) -> None:
    """Train a VRAE on the MIDI files in SONGS_DIR (searched recursively)."""
    from .checkpoint import read_config
    from .config import DEFAULT_PRESET, build_config, load_config, with_changes
    from .data.corpus import prepare_data
    from .errors import ConfigError
    from .train import METRICS_FILE, RESUME_DIR, Trainer, resolve_device

    out_dir = out_dir or Path("checkpoints") / songs_dir.resolve().name
    if resume:
        given = sorted(k for k, v in settings.items() if v is not None and k not in ("epochs", "device"))
        if preset or given:
            raise ConfigError(f"--resume continues with the run's own settings; drop {['--preset'] if preset else given}")
        saved = read_config(out_dir / RESUME_DIR)
        config = build_config({k: saved[k] for k in ("data", "model", "train")})
        config = with_changes(config, train={k: settings[k] for k in ("epochs", "device") if settings[k] is not None})
    else:
        if (out_dir / METRICS_FILE).exists() or (out_dir / RESUME_DIR).exists():
            if not overwrite:
                raise ConfigError(f"{out_dir} already holds a run: --resume it, --overwrite it, or choose another --out")
            shutil.rmtree(out_dir)
        config = load_config(preset or DEFAULT_PRESET, settings)

    device = resolve_device(config.train.device)
    data = prepare_data(songs_dir, config.data, config.train.seed, config.train.batch_size, cache_dir=cache_dir)
    m, d = config.model, config.data
    val_text = f"{len(data.val.x)} windows from {len(data.val.song_names)} songs" if data.val is not None else "none"
    log.info(
        f"{data.songs_used} of {data.songs_found} songs usable; training on {len(data.train.x)} windows of "
        f"{d.window} steps ({d.timing.describe()}) from {len(data.train.song_names)} songs, validation on {val_text}; "
        f"{len(data.pitches)} pitches ({data.pitches[0]}-{data.pitches[-1]})"
    )
    log.info(f"model: {m.model} {m.cell} hidden {m.hidden} latent {m.latent}; {config.train.epochs} epochs on {device}")
    trainer = Trainer(config, data, out_dir, device, show_progress=not quiet, echo=log.info)
    if resume:
        trainer.resume()
        log.info(f"resuming at epoch {trainer.progress.epoch + 1}, step {trainer.progress.step_in_epoch}")
    summary = trainer.fit()
    if summary["interrupted"]:
        log.info(f"stopped; resume with: vrae-live train {songs_dir} --out {out_dir} --resume")
    elif summary["best_epoch"] > 0:
        log.info(
            f"best {summary['bound_on']} bound {summary['best_bound']:.4f} nats/step at epoch "
            f"{summary['best_epoch']}; checkpoint: {out_dir}"
        )


# -- info -----------------------------------------------------------------------


@main.command()
@click.argument("checkpoint", type=click.Path(path_type=Path))
@click.option("--json", "as_json", is_flag=True, help="Print config.json as it is.")
@click.option("--steering", is_flag=True, help="Also measure how much the pad's corners change the music.")
@click.option("--seams", is_flag=True, help="Also measure whether notes start more often at window joins.")
def info(checkpoint: Path, as_json: bool, steering: bool, seams: bool) -> None:
    """Say what a checkpoint is: model, data settings, pitches, timing, training."""
    from .checkpoint import load_checkpoint

    ckpt = load_checkpoint(checkpoint)  # loads the weights too, so a damaged file shows here
    if as_json:
        from .checkpoint import read_config

        click.echo(json.dumps(read_config(checkpoint), indent=2))
        return
    c, meta = ckpt.config, ckpt.meta
    n_params = sum(p.numel() for p in ckpt.model.parameters())
    d = c.data
    lines = [
        f"checkpoint   {checkpoint}",
        f"model        {c.model.model} ({c.model.cell}), hidden {c.model.hidden}, latent {c.model.latent}, "
        f"{n_params:,} parameters" + (", reversed input" if c.model.reverse_input and c.model.model == "vrae" else "")
        + (", z at every step" if c.model.z_every_step and c.model.model == "vrae" else ""),
        f"frame timing {d.timing.describe()}",
        f"windows      {d.window} steps, hop {d.hop}" + (f", first {d.max_windows_per_song} per song" if d.max_windows_per_song else ""),
        f"pitches      {len(ckpt.pitches)}: {_pitch_list(ckpt.pitches)}",
    ]
    t = meta.get("training")
    if t:
        best = f"{t['best_bound']:.4f}" if t.get("best_bound") is not None else "-"
        lines += [
            f"training     {t['epochs_done']}/{t['epochs']} epochs, {t['seconds']:.0f} s on {t['device']}; "
            f"best {t['bound_on']} bound {best} nats/step at epoch {t['best_epoch']}",
            f"songs        {len(t['train_songs'])} training ({t['train_windows']} windows), "
            f"{len(t['val_songs'])} validation ({t['val_windows']} windows)",
        ]
    if "latent_plane" in meta:
        lines.append(f"xy pad       spans {len(meta['latent_plane']['songs'])} training songs")
    v = meta.get("versions", {})
    lines.append(f"versions     vrae-live {v.get('vrae_live')}, torch {v.get('torch')}")
    if steering:
        from .steering import measure_steering

        lines.append(f"steering     {measure_steering(ckpt).line()}")
    if seams:
        from .seams import measure_seams

        lines.append(f"seams        {measure_seams(ckpt).line()}")
    click.echo("\n".join(lines))


def _pitch_list(pitches: list[int]) -> str:
    if pitches == list(range(pitches[0], pitches[-1] + 1)):
        return f"{pitches[0]}-{pitches[-1]} (contiguous)"
    return " ".join(str(p) for p in pitches)


# -- eval -----------------------------------------------------------------------


@main.command("eval")
@click.argument("checkpoint", type=click.Path(path_type=Path))
@click.argument("songs_dir", type=click.Path(path_type=Path))
@click.option("--samples", type=int, default=0, show_default=True, help="K > 0 adds the importance-weighted bound.")
@click.option("--split", type=click.Choice(["all", "validation", "training"]), default="all", show_default=True,
              help="Only the songs the checkpoint trained or validated on (matched by path in SONGS_DIR).")
@click.option("--device", type=click.Choice(["auto", "cpu", "cuda"]), default="auto", show_default=True)
@click.option("--json", "as_json", is_flag=True, help="Print the figures as JSON.")
@click.option("--cache-dir", type=click.Path(path_type=Path))
def evaluate_command(checkpoint: Path, songs_dir: Path, samples: int, split: str, device: str,
                     as_json: bool, cache_dir: Path | None) -> None:
    """Lower bound per time step (nats) of a checkpoint on the songs in SONGS_DIR."""
    import torch

    from .checkpoint import load_checkpoint
    from .data.corpus import load_songs, windows_for
    from .errors import DataError
    from .train import evaluate, resolve_device

    if samples < 0:
        raise click.BadParameter("must be 0 or more", param_hint="--samples")
    dev = resolve_device(device)
    ckpt = load_checkpoint(checkpoint, dev)
    songs = load_songs(songs_dir, ckpt.timing, cache_dir=cache_dir)
    if split != "all":
        wanted = set(ckpt.meta.get("training", {}).get("val_songs" if split == "validation" else "train_songs", []))
        songs = [s for s in songs if s.name in wanted]
    windows = windows_for(songs, ckpt.pitches, ckpt.config.data)
    if len(windows.x) == 0:
        raise DataError(f"{songs_dir}: no window of {ckpt.config.data.window} steps in {len(songs)} usable songs")
    x = torch.from_numpy(windows.x).to(dev, torch.float32)
    result = evaluate(ckpt.model, x, seed=ckpt.config.train.seed, samples=samples)
    result.update(songs=len(songs), dropped_notes=windows.dropped_notes, checkpoint=str(checkpoint))
    if as_json:
        click.echo(json.dumps(result, indent=2))
        return
    click.echo(f"{len(songs)} songs, {result['windows']} windows of {result['steps']} steps")
    if windows.dropped_notes:
        click.echo(f"{windows.dropped_notes} notes outside the model's {len(ckpt.pitches)} pitches were dropped")
    click.echo(f"lower bound {result['bound']:.4f} nats per time step (reconstruction {result['rec']:.2f}, "
               f"KL {result['kl']:.2f} nats per sequence)")
    if samples:
        click.echo(f"importance-weighted bound (K={samples}) {result['iw_bound']:.4f} nats per time step")


# -- serve ----------------------------------------------------------------------


def _host_port(ctx, param, value):
    if value is None:
        return None
    host, _, port = value.rpartition(":")
    if not host or not port.isdigit():
        raise click.BadParameter("expected HOST:PORT, e.g. 192.168.1.20:9001")
    return host, int(port)


@main.command()
@click.option("--checkpoint", "checkpoint_dir", type=click.Path(path_type=Path),
              help="A trained model (a run directory of `vrae-live train`) [default: the shipped checkpoints/default].")
@click.option("--host", default="0.0.0.0", show_default=True, help="Address to listen on for OSC.")
@click.option("--port", default=9000, show_default=True, help="UDP port to listen on for OSC.")
@click.option("--controller", default=None, help="Controller dialect: touchosc, open-stage-control, lemur, or a .toml file.")
@click.option("--feedback", callback=_host_port, help="Send position and status back to HOST:PORT.")
@click.option("--midi-port", help="Connect to this existing MIDI port instead of opening a virtual 'vrae-live' port.")
@click.option("--midi-api", type=click.Choice(["auto", "alsa", "jack", "coremidi", "winmm"]), default="auto", show_default=True)
@click.option("--record", type=click.Path(path_type=Path), help="Also write the performance to this .mid file.")
@click.option("--device", type=click.Choice(["auto", "cpu", "cuda"]), default="auto", show_default=True)
@click.option("--hop", type=int, help="Frames per decoded hop [default: the model's, or half a window].")
@click.option("--glide", type=float, default=0.25, show_default=True, help="Seconds for a pad jump to be 63 % done.")
@click.option("--bpm", type=float, default=120.0, show_default=True, help="Tempo for a beat-based model.")
@click.option("--on-threshold", type=float, default=0.5, show_default=True)
@click.option("--off-threshold", type=float, default=0.35, show_default=True)
@click.option("--polyphony", type=int, default=8, show_default=True)
@click.option("--min-len", type=int, default=1, show_default=True, help="Frames a note sounds at least.")
@click.option("--max-len", type=int, help="Frames after which a note is released.")
@click.option("--seed", type=int, default=0, show_default=True)
@click.option("--demo", is_flag=True, help="Tour the pad on its own until the controller sends a position.")
@click.option("--duration", type=float, help="Stop after this many seconds [default: play until Ctrl-C].")
@click.option("--no-midi", is_flag=True, help="Open no MIDI port (with --record: render to the file only).")
@click.option("--realtime/--no-realtime", default=True, show_default=True,
              help="Keep the clock at realtime priority where the system permits (Linux: root or the audio group).")
def serve(checkpoint_dir: Path, host: str, port: int, controller: str | None, feedback, midi_port: str | None,
          midi_api: str, record: Path | None, device: str, hop: int | None, glide: float, bpm: float,
          on_threshold: float, off_threshold: float, polyphony: int, min_len: int, max_len: int | None,
          seed: int, demo: bool, duration: float | None, no_midi: bool, realtime: bool) -> None:
    """Play a model live: OSC in, MIDI out. Stop with Ctrl-C."""
    import signal

    from .checkpoint import load_checkpoint
    from .config import default_checkpoint
    from .errors import ConfigError
    from .live.controls import CANONICAL, Controls, load_controller
    from .live.daemon import PerformanceSettings, Performer
    from .live.midi import MidiFileRecorder, RtMidiSink, TeeSink
    from .live.notes import NoteSettings
    from .live.osc import FeedbackSender, OscServer, listen_addresses
    from .live.realtime import PRIORITY, make_realtime
    from .train import resolve_device

    checkpoint_dir = checkpoint_dir or default_checkpoint()
    ckpt = load_checkpoint(checkpoint_dir, resolve_device(device))
    notes = NoteSettings(on_threshold=on_threshold, off_threshold=off_threshold, min_len=min_len,
                         max_len=max_len, polyphony=polyphony)
    settings = PerformanceSettings(hop=hop, glide_s=glide, bpm=bpm, notes=notes, seed=seed, demo=demo)
    dialect = load_controller(controller) if controller else CANONICAL
    controls = Controls(dialect, latent_size=ckpt.config.model.latent)
    if no_midi and record is None:
        raise ConfigError("--no-midi plays to nowhere: add --record take.mid")
    midi_out = None if no_midi else RtMidiSink(midi_port, api=midi_api)
    try:
        recorder = MidiFileRecorder(record, bpm=bpm) if record is not None else None
    except OSError as err:
        raise ConfigError(f"cannot write the --record file {record}: {err.strerror or err}") from err
    sink = TeeSink(midi_out, recorder) if midi_out and recorder else midi_out or recorder
    performer = Performer(ckpt, controls, sink, settings)
    sender = FeedbackSender(*feedback, dialect) if feedback else None

    def on_frame(index, state):
        sender.send(state, f"frame {index}")

    performer.on_frame = on_frame if sender is not None else None
    stop = lambda signum, frame: performer.stop()
    signal.signal(signal.SIGINT, stop)
    signal.signal(signal.SIGTERM, stop)
    with OscServer(controls, host, port) as server:
        bound_host, bound_port = server.address
        log.info(f"model {checkpoint_dir}: {ckpt.config.model.model} latent {ckpt.config.model.latent}, "
                 f"{ckpt.timing.describe()}, hop {performer.hop} frames, on {next(ckpt.model.parameters()).device}")
        if midi_out is not None:
            log.info(f"MIDI out: {midi_out.port_name} ({midi_out.api})")
        addresses = listen_addresses(bound_host, bound_port) or [f"{bound_host}:{bound_port}"]
        log.info("OSC in: send to " + ", ".join(addresses))
        for line in dialect.describe():
            log.info(f"  {line}")
        if demo:
            log.info("demo: touring the pad until the controller sends a position")
        if realtime:  # this thread runs the performer; the OSC thread, started before, stays ordinary
            problem = make_realtime()
            log.info(f"clock: realtime priority (SCHED_FIFO {PRIORITY})" if problem is None
                     else f"clock: normal priority; {problem}")
        log.info("ready")
        try:
            stats = performer.run(None if duration is None else max(1, round(duration / performer.period_s)))
        finally:
            if sender is not None:
                sender.close()
    osc = controls.stats
    ignored = {k: v for k, v in osc.items() if k not in ("datagrams", "accepted")}
    log.info(f"stopped: {stats.line()}; OSC {osc.get('datagrams', 0)} datagrams, {osc.get('accepted', 0)} applied"
             + (f", ignored or clamped {dict(ignored)}" if ignored else ""))
    if record is not None:
        log.info(f"recorded {record}")


@main.command()
@click.option("--midi-api", type=click.Choice(["auto", "alsa", "jack", "coremidi", "winmm"]), default="auto", show_default=True)
def ports(midi_api: str) -> None:
    """List the MIDI output ports --midi-port can connect to."""
    from .live.midi import list_output_ports

    names = list_output_ports(midi_api)
    click.echo("\n".join(names) if names else "no MIDI output ports")


from .cli_paper import curve, generate, interpolate, map_command  # noqa: E402  (the paper's experiments)

main.add_command(generate)
main.add_command(interpolate)
main.add_command(map_command)
main.add_command(curve)


if __name__ == "__main__":
    main()
