"""Commands for models: train, info, eval."""

from __future__ import annotations

import json
import logging
import shutil
from pathlib import Path
from typing import Any

import click

from ..errors import VraeLiveError
from ..measure.quality import TAKES as QUALITY_TAKES
from ..play.key import DEFAULT_KEY_STRENGTH, key_name
from .options import FiniteRange, device_option, key_options, seed_option, workers_option

log = logging.getLogger("vrae_live")


POSITIVE = FiniteRange(min=0, min_open=True)
SHARE = FiniteRange(0, 1, max_open=True)  # a share of something that must keep some of it


def _pitch_range(ctx, param, value):
    if value is None:
        return None
    from ..config import parse_pitch_range

    try:
        return parse_pitch_range(value)
    except VraeLiveError as err:
        raise click.BadParameter(str(err)) from None


@click.command()
@click.argument("songs_dir", type=click.Path(exists=True, file_okay=False, path_type=Path))
@click.option("--out", "out_dir", type=click.Path(file_okay=False, path_type=Path),
              help="Run directory [default: checkpoints/<SONGS_DIR name>].")
@click.option("--preset", help="Model preset: a name in presets/ (live-2d, paper-2d, ...) or a .toml file "
              "[default: live-2d].")
@click.option("--resume", is_flag=True, help="Continue the interrupted run in --out (settings come from it).")
@click.option("--overwrite", is_flag=True, help="Replace a finished run in --out.")
@click.option("--epochs", type=click.IntRange(min=1), help="Train this many epochs at most [default: fitted to --max-steps].")
@click.option("--max-steps", type=click.IntRange(min=1), help="The step budget, a ceiling under the plateau schedule.")
@click.option("--schedule", type=click.Choice(["plateau", "exponential"]),
              help="plateau: lr held while the validation bound improves, then lowered, and the run stops when it "
                   "no longer improves; exponential: lr falls to --lr-final over the whole run [default: plateau].")
@click.option("--patience", type=click.IntRange(min=1),
              help="Plateau: steps without a better validation bound before lr drops, or the run stops.")
@click.option("--batch-size", type=click.IntRange(min=1))
@click.option("--lr", type=POSITIVE, help="Initial learning rate.")
@click.option("--lr-final", type=POSITIVE, help="Lowest learning rate (plateau), or the last step's (exponential).")
@click.option("--cell", type=click.Choice(["rnn", "gru", "lstm"]), help="Recurrent cell; rnn is the paper's.")
@click.option("--model", type=click.Choice(["vrae", "vrnn", "rnn"]),
              help="vrae (Fabius 2014), vrnn (Chung 2015) or rnn (no latent).")
@click.option("--hidden", type=click.IntRange(min=1), help="Hidden units of encoder and decoder.")
@click.option("--latent", type=click.IntRange(min=1), help="Latent dimensions (2 plays an XY pad directly).")
@click.option("--window", type=click.IntRange(min=2), help="Time steps per training sequence.")
@click.option("--hop", type=click.IntRange(min=1), help="Steps between window starts.")
@click.option("--fs", type=POSITIVE, help="Frames per second (the paper used 20).")
@click.option("--steps-per-beat", type=click.IntRange(min=1), help="A grid that follows the tempo map, e.g. 4 (sixteenths).")
@click.option("--pitch-range", callback=_pitch_range, help="Keep pitches LO-HI, e.g. 36-84 [default: those the songs use].")
@click.option("--max-windows-per-song", type=click.IntRange(min=1), help="Take the first N windows of each song.")
@click.option("--onsets/--no-onsets", default=None,
              help="Frames also say where notes start, so a note struck again is told from one held "
                   "(--no-onsets: the paper's binary roll).")
@click.option("--meter/--no-meter", default=None,
              help="With --steps-per-beat: the model is told where each step falls in the beat and the bar (the "
                   "songs' time signatures; live, the clock's).")
@click.option("--components", type=click.IntRange(min=1),
              help="The notes of a frame are drawn together, from one of this many frames the decoder offers "
                   "(1: each pitch on its own, the paper).")
@click.option("--mixture-rank", type=click.IntRange(min=0),
              help="With --components > 1: the frames' chances are read from this many numbers of the decoder's "
                   "state, a cheaper output layer (0: from the whole state).")
@click.option("--key-input/--no-key-input", default=None,
              help="The decoder is told each window's key beside its code, and live the key to play in (--key, or the "
                   "key most of the songs are in), so the same point of the pad plays in one key.")
@click.option("--hold-gate/--no-hold-gate", default=None,
              help="Each pitch's column of the frame before moves its own chance by a gate the decoder's state sets, "
                   "the same for every pitch, so holding a note is learnt once for all pitches.")
@click.option("--z-skip/--no-z-skip", default=None,
              help="The decoder's output reads z beside its state at every step (a generative skip), so what "
                   "plays follows the pad directly, not only through the recurrence.")
@click.option("--reverse-input/--no-reverse-input", default=None, help="The encoder reads each window backwards.")
@click.option("--z-every-step/--no-z-every-step", default=None,
              help="Feed z to the decoder at every step, not only its first state.")
@click.option("--mu-batchnorm", type=FiniteRange(min=0), help="Batch-normalise mu to this scale in training (0: off).")
@click.option("--mu-whiten/--no-mu-whiten", default=None,
              help="With --mu-batchnorm: whiten mu, decorrelating the latent units too (both ways of the pad).")
@click.option("--kl-anneal-steps", type=click.IntRange(min=0), help="First steps over which the KL weight rises from 0 to 1.")
@click.option("--kl-cycles", type=click.IntRange(min=0),
              help="Cyclical KL annealing (Fu et al. 2019): the anneal steps in this many cycles (0: one rise).")
@click.option("--free-bits", type=FiniteRange(min=0), help="Nats per latent unit below which KL is not pushed down.")
@click.option("--encoder-steps", type=click.IntRange(min=0),
              help="Steps of the encoder alone before each step, in the first quarter of the run "
                   "(He et al. 2019; 0: off).")
@click.option("--bag-of-notes", type=FiniteRange(min=0),
              help="Weight of a loss that predicts each window's notes from z alone (Zhao et al. 2017; 0: off).")
@click.option("--pad-axes", metavar="X,Y|songs",
              help="What the pad's x and y follow, two of: onsets, register, range, polyphony, syncopation, "
                   "pitch-classes [default: the preset's; live-2d: onsets,register]; 'songs': the songs' main directions.")
@click.option("--axes-weight", type=FiniteRange(min=0), help="Weight of the pad axes' loss (AR-VAE's gamma).")
@click.option("--axes-decoder", type=FiniteRange(min=0),
              help="Weight of the decoder's term: what it plays must follow each axis, the other attribute still.")
@click.option("--input-dropout", type=SHARE, help="Share of decoder inputs blanked in training (makes z matter).")
@click.option("--own-frames", type=SHARE,
              help="Share of the frames fed back in training drawn by the decoder itself, as live (a VRAE only).")
@click.option("--transpose", type=click.IntRange(0, 12),
              help="Move each training window by up to this many semitones either way, where its notes stay on the "
                   "model's pitches (0: off).")
@click.option("--weight-decay", type=FiniteRange(min=0), help="Decoupled weight decay (AdamW; 0: off).")
@click.option("--val-fraction", type=SHARE, help="Share of songs held out for validation.")
@device_option(None)
@click.option("--precision", type=click.Choice(["fp32", "bf16"]),
              help="Arithmetic of the training step: bf16 (autocast) where the GPU or CPU has it [default: fp32].")
@seed_option(None, help="Seeds the init, the shuffles and the noise [default: the preset's].")
@click.option("--cache-dir", type=click.Path(file_okay=False, path_type=Path),
              help="Where parsed songs and roll stores are cached [default: $VRAE_LIVE_CACHE, else "
                   "~/.cache/vrae-live/rolls].")
@workers_option
@click.option("-q", "--quiet", is_flag=True, help="No progress bar.")
def train(songs_dir: Path, out_dir: Path | None, preset: str | None, resume: bool, overwrite: bool,
          cache_dir: Path | None, workers: int | None, quiet: bool, **settings: Any) -> None:
    """Train a VRAE on the MIDI files in SONGS_DIR (searched recursively).

    Under torchrun (torchrun --nproc-per-node N -m vrae_live train ...) the processes share each
    batch and rank 0 writes the run; docs/scale.md.
    """
    from ..checkpoint import read_config
    from ..config import DEFAULT_PRESET, build_config, load_config, with_changes
    from ..errors import ConfigError
    from ..training.distributed import join_world, leave_world
    from ..training.run import METRICS_FILE, RESUME_DIR

    out_dir = out_dir or Path("checkpoints") / songs_dir.resolve().name
    clear_out_dir = False
    changeable = ("epochs", "device", "precision")  # what a resumed run may change
    if resume:
        given = sorted(k for k, v in settings.items() if v is not None and k not in changeable)
        if preset or given:
            raise ConfigError(f"--resume continues with the run's own settings; drop {['--preset'] if preset else given}")
        saved = read_config(out_dir / RESUME_DIR)
        config = build_config({k: saved[k] for k in ("data", "model", "train")})
        config = with_changes(config, train={k: settings[k] for k in changeable if settings[k] is not None})
    else:
        if (out_dir / METRICS_FILE).exists() or (out_dir / RESUME_DIR).exists():
            if not overwrite:
                raise ConfigError(f"{out_dir} already holds a run: --resume it, --overwrite it, or choose another --out")
            clear_out_dir = True
        config = load_config(preset or DEFAULT_PRESET, settings)
        if settings.get("meter") and not config.data.fed_meter:
            raise ConfigError("--meter needs a beat grid (--steps-per-beat): frames in seconds have no beat")
        if config.train.own_frames and config.model.model != "vrae":
            raise ConfigError(f"--own-frames is for the vrae's decoder; not the {config.model.model}")

    world = join_world(config.train.device)  # under torchrun: this process's rank, device and group
    try:
        _train(songs_dir, out_dir, resume, clear_out_dir, cache_dir, workers, quiet, settings, config, world)
    finally:
        leave_world()


def _train(songs_dir: Path, out_dir: Path, resume: bool, clear_out_dir: bool, cache_dir: Path | None,
           workers: int | None, quiet: bool,
           settings: dict[str, Any], config, world) -> None:
    """``train`` in each process, once the settings are known and the process has joined its world."""
    from ..data.corpus import prepare_data
    from ..training.length import fit_to_corpus
    from ..training.precision import check_precision
    from ..training.trainer import Trainer

    if not world.is_main:
        log.setLevel(logging.ERROR)  # rank 0 prints for every process
    device = world.device
    check_precision(config.train.precision, device)
    explicit = {k for k in ("epochs", "batch_size") if settings[k] is not None}
    # Without --batch-size, a corpus smaller than one batch trains in one batch of all its windows.
    batch_floor = config.train.batch_size if resume or "batch_size" in explicit else 1
    with world.main_first():  # rank 0 clears the run directory and fills the cache; the others read it
        if clear_out_dir and world.is_main:
            shutil.rmtree(out_dir)
        data = prepare_data(songs_dir, config.data, config.train.seed, batch_floor, cache_dir=cache_dir, workers=workers)
    if not resume:  # a resumed run keeps the length it was fitted to
        config, fitted = fit_to_corpus(config, len(data.train.x), explicit)
        for line in fitted:
            log.info(f"fitted to the corpus: {line}")
    m, d = config.model, config.data
    val_text = f"{len(data.val.x)} windows from {len(data.val.song_names)} songs" if data.val is not None else "none"
    log.info(
        f"{data.songs_used} of {data.songs_found} songs usable; training on {len(data.train.x)} windows of "
        f"{d.window} steps ({d.timing.describe()}) from {len(data.train.song_names)} songs, validation on {val_text}; "
        f"{len(data.pitches)} pitches ({data.pitches[0]}-{data.pitches[-1]})"
    )
    processes = f" x {world.size} processes (batches of {config.train.batch_size} shared)" if world.distributed else ""
    log.info(f"model: {m.model} {m.cell} hidden {m.hidden} latent {m.latent}; {config.train.epochs} epochs on "
             f"{device}{processes}, {config.train.precision}")
    pad_check = None
    if m.model != "rnn":  # a model without a latent has no pad to steer
        from ..measure.pad_check import quick_pad_check as pad_check
    trainer = Trainer(config, data, out_dir, show_progress=not quiet and world.is_main, echo=log.info,
                      pad_check=pad_check, world=world)
    if resume:
        trainer.resume()
        log.info(f"resuming at epoch {trainer.progress.epoch + 1}, step {trainer.progress.step_in_epoch}")
    summary = trainer.fit()
    if not world.is_main:
        return
    if summary["interrupted"]:
        launcher = "torchrun [the same options] -m vrae_live" if world.distributed else "vrae-live"
        log.info(f"stopped; resume with: {launcher} train {songs_dir} --out {out_dir} --resume")
    elif summary["best_epoch"] > 0:
        ended = (f"converged after {summary['steps']} steps" if summary["converged"]
                 else f"the budget of {summary['steps']} steps spent")
        log.info(
            f"{ended}; best {summary['bound_on']} bound {summary['best_bound']:.4f} nats/step at epoch "
            f"{summary['best_epoch']}; checkpoint: {out_dir}"
        )
        from ..checkpoint import load_checkpoint
        from ..training.run import read_metrics

        _say_whether_it_beats_copying(summary, config.data.onsets, read_metrics(out_dir))
        if pad_check is not None:
            from ..measure.axes import level_lean

            levelling = trainer.level_pad(level_lean)
            if levelling is not None:
                log.info(f"pad axes: {levelling.line()}")
        kept = load_checkpoint(out_dir)
        _say_how_it_plays(kept, songs_dir, cache_dir)
        if pad_check is not None:
            _say_whether_the_pad_steers(kept, songs_dir, cache_dir)


OVERFIT_NATS = 1.0  # the kept epoch's training bound this much above its validation bound: it overfits


def _say_whether_it_beats_copying(summary: dict[str, Any], onsets: bool, rows: list[dict[str, Any]]) -> None:
    """The kept epoch's bound beside copying the last frame's, on the same windows: a model that
    does not beat it has not learnt when a note ends, or has learnt its training songs too well
    (``rows``, the run's metrics, say which)."""
    model, copying = summary["best_bound"], summary["copy_bound"]
    line = f"{summary['bound_on']}: the model {model:.3f} nats/step, copying the last frame {copying:.3f}"
    if onsets:
        line += " (a step: each pitch's sounding and its onset; not comparable with a model of the binary roll)"
    if model > copying:
        log.info(f"{line}: {model - copying:.2f} better")
        return
    kept = next((r for r in rows if r["epoch"] == summary["best_epoch"]), {})
    train, val = kept.get("train_bound"), kept.get("val_bound")
    if train is not None and val is not None and train - val > OVERFIT_NATS:
        log.warning(f"{line}: the model does not beat copying on the songs it holds out, and scores "
                    f"{train:.3f} on its {len(summary['train_songs'])} training songs: it learnt them, not "
                    f"their style. More songs would help most; --transpose moves the ones you have")
    else:
        log.warning(f"{line}: the model does not beat copying; train longer (a larger --max-steps or "
                    f"--patience), or with a lower --lr if the bound wandered")


def _song_rolls(ckpt, songs_dir: Path, cache_dir: Path | None = None, workers: int | None = 1,
                names: list[str] | None = None) -> list:
    """The rolls of the songs in ``songs_dir`` (only ``names``, if given) on the checkpoint's pitches and
    grid, as the quality measure compares them (``quality.song_marks``: with their onsets for a model of them)."""
    from ..data.corpus import load_songs
    from ..measure.quality import song_marks

    return song_marks(load_songs(songs_dir, ckpt.timing, cache_dir, workers=workers, names=names), ckpt)


def _say_how_it_plays(ckpt, songs_dir: Path, cache_dir: Path | None) -> None:
    """The quality of the kept checkpoint's takes (``info --quality``) against the validation songs
    (the training songs without a validation set)."""
    from ..measure.quality import measure_quality

    which = "validation" if ckpt.song_names("validation") else "training"
    names = ckpt.song_names(which)
    rolls = _song_rolls(ckpt, songs_dir, cache_dir, names=names)
    try:
        report = measure_quality(ckpt, rolls)
    except ValueError as err:  # songs too short for a segment of 8 beats
        log.info(f"quality: not measured on the {which} songs: {err}")
        return
    log.info(f"{report.line()}; on the {len(rolls)} {which} songs")
    (log.info if report.plays_like_the_songs else log.warning)(report.verdict())


def _say_whether_the_pad_steers(ckpt, songs_dir: Path, cache_dir: Path | None) -> None:
    """The verdict on the kept checkpoint, measured as `info --steering` does, and how much its
    training songs differ among themselves (what a faithful pad can steer)."""
    from ..data.corpus import load_songs
    from ..measure.axes import measure_axes
    from ..measure.contrast import measure_contrast
    from ..measure.steering import measure_steering

    report = measure_steering(ckpt)
    log.info(f"steering: {report.line()}")
    axes = measure_axes(ckpt)  # a pad of named axes: does each do what it says?
    for line in axes.lines() if axes is not None else []:
        log.info(f"pad axes: {line}")
    songs = load_songs(songs_dir, ckpt.timing, cache_dir, workers=1, names=ckpt.song_names("training"))
    contrast = measure_contrast([s.roll for s in songs], ckpt.pitches)
    if contrast is not None:
        log.info(f"songs: {contrast.line()}")
    if axes is not None:  # a named pad is judged by its names; the songs' plane's advice does not apply
        (log.info if axes.follows else log.warning)(axes.verdict(report.weaker))
        return
    (log.info if report.steers else log.warning)(report.verdict(pad_preset=ckpt.config.model.z_every_step))
    if not report.steers and contrast is not None and contrast.caveat():
        log.warning(contrast.caveat())


# -- info -----------------------------------------------------------------------


@click.command()
@click.argument("checkpoint", type=click.Path(path_type=Path))
@click.option("--json", "as_json", is_flag=True, help="Print config.json as it is.")
@click.option("--steering", is_flag=True, help="Also measure how much the pad's corners change the music.")
@click.option("--seams", is_flag=True, help="Also measure whether notes start more often at window joins.")
@click.option("--faithfulness", "songs_dir", type=click.Path(exists=True, file_okay=False, path_type=Path),
              metavar="SONGS_DIR", help="Also measure whether each region of the pad plays music like the windows "
              "of SONGS_DIR the map places there, and how much those songs differ among themselves.")
@click.option("--quality", "quality_dir", type=click.Path(exists=True, file_okay=False, path_type=Path),
              metavar="SONGS_DIR", help="Also measure how much takes at random points of the pad play like the "
              "songs of SONGS_DIR (MGEval), against the songs' own halves and random notes.")
@click.option("--takes", type=click.IntRange(min=1), default=QUALITY_TAKES, show_default=True,
              help="Takes of 32 beats for --quality.")
@click.option("--density", type=FiniteRange(0, 1), default=0.5, show_default=True,
              help="The takes' density for --quality; 0.5 plays the model as it is.")
@click.option("--temperature", type=FiniteRange(min=0), default=1.0, show_default=True,
              help="The takes' temperature for --quality: 0 thresholds the probabilities; 1 samples them.")
@key_options
@seed_option(0, help="Seeds --quality's pad points, takes and split of the songs.")
@workers_option
def info(checkpoint: Path, as_json: bool, steering: bool, seams: bool, songs_dir: Path | None,
         quality_dir: Path | None, takes: int, density: float, temperature: float, seed: int,
         workers: int | None, key: int | None = None, scale: str = "major",
         key_strength: float = DEFAULT_KEY_STRENGTH) -> None:
    """Say what a checkpoint is: model, data settings, pitches, timing, training."""
    from ..checkpoint import load_checkpoint

    ckpt = load_checkpoint(checkpoint)  # loads the weights too, so a damaged file shows here
    if as_json:
        from ..checkpoint import read_config

        click.echo(json.dumps(read_config(checkpoint), indent=2))
        return
    c = ckpt.config
    n_params = sum(p.numel() for p in ckpt.model.parameters())
    d = c.data
    lines = [
        f"checkpoint   {checkpoint}",
        f"model        {c.model.model} ({c.model.cell}), hidden {c.model.hidden}, latent {c.model.latent}, "
        f"{n_params:,} parameters" + (", reversed input" if c.model.reverse_input and c.model.model == "vrae" else "")
        + (", z at every step" if c.model.z_every_step and c.model.model == "vrae" else ""),
        f"frame timing {d.timing.describe()}",
        f"windows      {d.window} steps, hop {d.hop}"
        + (f", first {d.max_windows_per_song} per song" if d.max_windows_per_song else ""),
        f"pitches      {len(ckpt.pitches)}: {_pitch_list(ckpt.pitches)}",
        "frames       " + ("each pitch sounding or not, and where its notes start (onsets)" if d.onsets
                           else "each pitch sounding or not (the paper's binary roll; a repeated note is one long note)")
        + ("; fed with the meter (the step's place in the beat and the bar)" if d.fed_meter else "")
        + (f"; a frame's notes drawn together, from one of {c.model.components} frames the decoder offers"
           if c.model.components > 1 else "")
        + (f"; the decoder is told the key, live {key_name(ckpt.songs_key, 'major')}'s signature unless --key says "
           "another (most of its songs' windows are in it)" if c.model.key_input else ""),
    ]
    t = ckpt.training
    if t:
        best = f"{t['best_bound']:.4f}" if t.get("best_bound") is not None else "-"
        lines += [
            f"training     {t['epochs_done']}/{t['epochs']} epochs, {t['seconds']:.0f} s on {t['device']}; "
            f"best {t['bound_on']} bound {best} nats/step at epoch {t['best_epoch']}",
            f"songs        {len(t['train_songs'])} training ({t['train_windows']} windows), "
            f"{len(t['val_songs'])} validation ({t['val_windows']} windows)"
            + (f"; up to {t['polyphony']} notes at once in 9 of 10 of their sounding steps (the live polyphony)"
               if t.get("polyphony") else ""),
        ]
    if ckpt.plane is not None:
        plane = ckpt.latent_plane()
        rest = plane.latent_size - len(plane.lo)
        held = f"; its other {rest} latent dimension{'s' if rest > 1 else ''} held at the windows' mean code" if rest else ""
        lean = float(plane.axes[0, 1]) if len(plane.attributes) == 2 else 0.0
        levelled = (f"; x leans {lean:+.3f} of y's unit, so that {plane.attributes[1]} stays level along it"
                    if lean else "")
        lines.append(f"xy pad       {_pad_axes(plane.attributes)}{levelled}; spans {len(ckpt.plane.songs)} training "
                     f"songs{held}")
    v = ckpt.versions
    lines.append(f"versions     vrae-live {v.get('vrae_live')}, torch {v.get('torch')}")
    if steering:
        from ..measure.axes import measure_axes
        from ..measure.steering import measure_steering

        report = measure_steering(ckpt)
        lines += [f"steering     {report.line()}", f"             {report.parts_line()}"]
        axes = measure_axes(ckpt)
        if axes is not None:
            lines += [f"axes         {line}" for line in axes.lines()]
    if seams:
        from ..measure.seams import measure_seams

        lines.append(f"seams        {measure_seams(ckpt).line()}")
    if songs_dir is not None:
        from ..data.corpus import load_songs
        from ..measure.contrast import measure_contrast
        from ..measure.faithfulness import measure_faithfulness

        songs = load_songs(songs_dir, ckpt.timing, workers=workers)
        lines.append(f"faithfulness {measure_faithfulness(ckpt, songs).line()}")
        contrast = measure_contrast([s.roll for s in songs], ckpt.pitches)
        if contrast is not None:
            lines.append(f"songs        {contrast.line()}")
    if quality_dir is not None:
        lines += ["", _quality(ckpt, quality_dir, takes, density, temperature, seed, workers,
                               dict(key=key, scale=scale, key_strength=key_strength))]
    click.echo("\n".join(lines))


def _quality(ckpt, songs_dir: Path, takes: int, density: float, temperature: float, seed: int,
             workers: int | None, in_key: dict) -> str:
    """``info --quality``: the MGEval table of the model against the songs of ``songs_dir``, and the verdict;
    ``in_key``: the takes' key, scale and key strength (``play/key.py``)."""
    from ..errors import DataError
    from ..measure.quality import measure_quality

    rolls = _song_rolls(ckpt, songs_dir, workers=workers)
    try:
        report = measure_quality(ckpt, rolls, takes=takes, seed=seed, density=density, temperature=temperature,
                                 **in_key)
    except ValueError as err:
        raise DataError(f"{songs_dir}: {err}") from None
    return f"quality      MGEval overlap with the songs of {songs_dir}\n{report.table()}\n{report.verdict()}"


def _pad_axes(attributes: tuple[str, ...]) -> str:
    """What the pad's x and y play: "x: sparser → busier (onsets); y: lower → higher (register)"."""
    if not attributes:
        return "x and y: the directions along which the training songs differ most"
    from ..data.attributes import axis_title

    return "; ".join(f"{axis}: {axis_title(name)}" for axis, name in zip("xy", attributes))


def _pitch_list(pitches: list[int]) -> str:
    if pitches == list(range(pitches[0], pitches[-1] + 1)):
        return f"{pitches[0]}-{pitches[-1]} (contiguous)"
    return " ".join(str(p) for p in pitches)


# -- eval -----------------------------------------------------------------------


@click.command("eval")
@click.argument("checkpoint", type=click.Path(path_type=Path))
@click.argument("songs_dir", type=click.Path(exists=True, file_okay=False, path_type=Path))
@click.option("--samples", type=click.IntRange(min=0), default=0, show_default=True,
              help="K > 0 adds the importance-weighted bound.")
@click.option("--split", type=click.Choice(["all", "validation", "training"]), default="all", show_default=True,
              help="Only the songs the checkpoint trained or validated on (matched by path in SONGS_DIR).")
@device_option("auto")
@click.option("--json", "as_json", is_flag=True, help="Print the figures as JSON.")
@click.option("--cache-dir", type=click.Path(file_okay=False, path_type=Path), help="Where parsed songs are cached.")
@workers_option
def evaluate_command(checkpoint: Path, songs_dir: Path, samples: int, split: str, device: str,
                     as_json: bool, cache_dir: Path | None, workers: int | None) -> None:
    """Lower bound per time step (nats) of a checkpoint on the songs in SONGS_DIR."""
    import torch

    from ..checkpoint import load_checkpoint
    from ..data.corpus import load_songs, windows_for
    from ..device import resolve_device
    from ..errors import DataError
    from ..training.evaluation import evaluate

    dev = resolve_device(device)
    ckpt = load_checkpoint(checkpoint, dev)
    songs = load_songs(songs_dir, ckpt.timing, cache_dir=cache_dir, workers=workers)
    if split != "all":
        wanted = set(ckpt.song_names(split))
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
