"""The paper's experiments as commands: generate, interpolate, map, curve.

Registered on the ``vrae-live`` group in ``cli/__init__.py``. Thin, like every command module:
torch, matplotlib and scikit-learn are imported inside the commands.
"""

from __future__ import annotations

import functools
import logging
from pathlib import Path

import click

from .options import FiniteRange, OutputFile, device_option, note_settings, seed_option, take_options, workers_option

log = logging.getLogger("vrae_live")


def _take_settings(seed, bpm, hop, density, temperature, on_threshold, off_threshold, polyphony, min_len, max_len,
                   key, scale, key_strength):
    from ..offline.render import TakeSettings

    notes = note_settings(on_threshold, off_threshold, polyphony, min_len, max_len)
    return TakeSettings(bpm=bpm, density=density, temperature=temperature, hop=hop, notes=notes, seed=seed,
                        key=key, scale=scale, key_strength=key_strength)


def _load(checkpoint: Path, device: str):
    from ..checkpoint import load_checkpoint
    from ..device import resolve_device

    return load_checkpoint(checkpoint, resolve_device(device))


def _describe(take, out: Path) -> str:
    return (f"wrote {out}: {len(take.frames)} frames ({take.seconds:.1f} s), {take.notes_on} notes, "
            f"hop {take.hop}")


def _with_take_settings(command):
    """Collect the take options into one ``settings`` argument (and load nothing yet)."""
    names = ("seed", "bpm", "hop", "density", "temperature", "on_threshold", "off_threshold", "polyphony",
             "min_len", "max_len", "key", "scale", "key_strength")

    @functools.wraps(command)
    def wrapper(**kwargs):
        settings = _take_settings(**{n: kwargs.pop(n) for n in names})
        return command(settings=settings, **kwargs)

    return wrapper


# The options generate and interpolate share: the take's file, where a passage starts, its length.
_take_out = click.option("--out", type=OutputFile(), required=True, help="The .mid file to write.")


def _passage_start(flag: str, help: str):
    return click.option(flag, type=FiniteRange(min=0), default=0.0, show_default=True, help=help)


def _take_frames(default: int, help: str):
    return click.option("--steps", type=click.IntRange(min=1), default=default, show_default=True, help=help)


@click.command()
@click.argument("checkpoint", type=click.Path(path_type=Path))
@_take_out
@click.option("--z", "z_text", help="The latent vector, comma-separated, e.g. 0.1,-0.3 [default: random from --seed].")
@click.option("--from", "from_song", type=click.Path(exists=True, dir_okay=False, path_type=Path),
              help="Play the code of a passage of this song.")
@_passage_start("--at", "Seconds into --from where the passage starts.")
@_take_frames(1000, "Frames to generate (the paper: 1000, about 50 s at 20 Hz).")
@take_options
@_with_take_settings
def generate(checkpoint: Path, out: Path, z_text: str | None, from_song: Path | None, at: float, steps: int,
             device: str, settings) -> None:
    """Generate a take from one latent vector, through the same stream and notes as serve."""
    from ..errors import ConfigError
    from ..offline.render import fixed_path, parse_z, passage_code, random_z, render_take

    if z_text is not None and from_song is not None:
        raise ConfigError("give --z or --from, not both")
    ckpt = _load(checkpoint, device)
    latent = ckpt.config.model.latent
    if z_text is not None:
        z, source = parse_z(z_text, latent), "given z"
    elif from_song is not None:
        z, source = passage_code(from_song, ckpt, at), f"code of {from_song} at {at:g} s"
    else:
        z, source = random_z(latent, settings.seed), f"random z (seed {settings.seed})"
    take = render_take(ckpt, fixed_path(z), steps, out, settings)
    shown = ", ".join(f"{v:.3f}" for v in z[:4]) + (", ..." if len(z) > 4 else "")
    click.echo(f"{source}: z = [{shown}]")
    click.echo(_describe(take, out))


@click.command()
@click.argument("checkpoint", type=click.Path(path_type=Path))
@click.argument("song_a", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.argument("song_b", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@_take_out
@_passage_start("--at-a", "Seconds into SONG_A of its passage.")
@_passage_start("--at-b", "Seconds into SONG_B of its passage.")
@_take_frames(200, "Frames of the whole morph.")
@take_options
@_with_take_settings
def interpolate(checkpoint: Path, song_a: Path, song_b: Path, out: Path, at_a: float, at_b: float, steps: int,
                device: str, settings) -> None:
    """A passage of SONG_A morphing into a passage of SONG_B (paper section 3.3).

    Each passage (one training window long) is encoded to its mean; z glides in equal
    steps from A's code at the first hop to B's at the last.
    """
    from ..offline.render import glide_path, passage_code, render_take
    from ..play.stream import live_hop

    ckpt = _load(checkpoint, device)
    z_a, z_b = passage_code(song_a, ckpt, at_a), passage_code(song_b, ckpt, at_b)
    path = glide_path(z_a, z_b, steps, live_hop(ckpt, settings.hop))
    take = render_take(ckpt, path, steps, out, settings)
    import numpy as np

    click.echo(f"z glides {np.linalg.norm(z_b - z_a):.3f} from {song_a} at {at_a:g} s to {song_b} at {at_b:g} s")
    click.echo(_describe(take, out))


@click.command("map")
@click.argument("checkpoint", type=click.Path(path_type=Path))
@click.argument("songs_dir", type=click.Path(exists=True, file_okay=False, path_type=Path), required=False,
                metavar="SONGS_DIR")
@click.option("--out", type=OutputFile(), help="The image to write (.png, .pdf, .svg).")
@click.option("--store", is_flag=True,
              help="Store SONGS_DIR's windows on the pad in CHECKPOINT, as `train` does: the map serve's web page "
                   "shows (for a checkpoint trained before it was stored).")
@click.option("--color-by", type=click.Choice(["song", "folder", "register", "density", "major"]), default="song",
              show_default=True, help="One colour per song or top folder (e.g. composer), or by a feature "
                                      "(the stored map only).")
@click.option("--method", type=click.Choice(["auto", "tsne", "pca"]), default="auto", show_default=True,
              help="With SONGS_DIR, for more than 2 latent dims: t-SNE (needs scikit-learn) or PCA; auto falls back "
                   "to PCA.")
@click.option("--max-points", type=click.IntRange(min=1), default=3000, show_default=True,
              help="Draw (or store) at most this many windows (an even subsample): t-SNE is slow beyond.")
@seed_option(help="Seeds t-SNE.")
@device_option("cpu")
@click.option("--cache-dir", type=click.Path(file_okay=False, path_type=Path), help="Where parsed songs are cached.")
@workers_option
def map_command(checkpoint: Path, songs_dir: Path | None, out: Path | None, store: bool, color_by: str, method: str,
                max_points: int, seed: int, device: str, cache_dir: Path | None, workers: int | None) -> None:
    """The songs' windows drawn at their codes (paper Figures 1-2, right).

    Without SONGS_DIR: the map stored in CHECKPOINT at training time, on the pad's plane,
    as serve's web page draws it. With SONGS_DIR: its windows encoded now, drawn at their
    means (t-SNE or PCA beyond 2 dims); with --store, kept in CHECKPOINT for the page.
    """
    from ..errors import ConfigError

    if out is None and not store:
        raise ConfigError("nothing to do: give --out map.png to draw, or --store with SONGS_DIR")
    if songs_dir is None:
        if store:
            raise ConfigError("--store needs SONGS_DIR: the songs the model was trained on")
        _draw_stored_map(checkpoint, out, color_by)
        return
    if color_by not in ("song", "folder"):
        raise ConfigError(f"--color-by {color_by} draws the stored map: leave out SONGS_DIR")
    _map_songs(checkpoint, songs_dir, out, store, color_by, method, max_points, seed, device, cache_dir, workers)


def _draw_stored_map(checkpoint: Path, out: Path, color_by: str) -> None:
    from ..errors import ConfigError
    from ..measure.plots import plot_window_map

    ckpt = _load(checkpoint, "cpu")
    window_map = ckpt.window_map()
    if not window_map:
        raise ConfigError(f"{checkpoint} stores no map of its songs (trained before it was stored); "
                          f"store it once: vrae-live map {checkpoint} SONGS_DIR --store")
    plot_window_map(window_map, color_by, out, f"{checkpoint.name}: {len(window_map['u'])} windows on the pad",
                    _axis_names(ckpt))
    click.echo(f"wrote {out}: {len(window_map['u'])} windows of {len(window_map['songs'])} songs on the pad, "
               f"by {color_by}")


def _map_songs(checkpoint, songs_dir, out, store, color_by, method, max_points, seed, device, cache_dir,
               workers=None) -> None:
    import torch

    from ..checkpoint import store_meta
    from ..data.corpus import load_songs, windows_for
    from ..errors import DataError
    from ..measure.analysis import group_of
    from ..measure.plots import embed_2d, plot_map, require_matplotlib
    from ..songmap import map_of_windows, subsample
    from ..training.evaluation import encode_means

    if out is not None:
        require_matplotlib()  # a missing matplotlib is reported before any encoding
    ckpt = _load(checkpoint, device)
    songs = load_songs(songs_dir, ckpt.timing, cache_dir=cache_dir, workers=workers)
    windows = windows_for(songs, ckpt.pitches, ckpt.config.data)
    if len(windows.x) == 0:
        raise DataError(f"{songs_dir}: no window of {ckpt.config.data.window} steps in {len(songs)} usable songs")

    def encode(x):
        x = torch.from_numpy(x).to(next(ckpt.model.parameters()).device, torch.float32)
        return encode_means(ckpt.model, x).double().numpy()  # (N, L)

    keep = subsample(len(windows.x), max_points)
    means = encode(windows.x[keep])  # the subsample that map_of_windows takes too, and the picture shows
    if store:
        plane = ckpt.plane.model_dump() if ckpt.plane is not None else _plane_dict(ckpt.latent_plane())
        stored = map_of_windows(lambda kept: means, windows.x, windows.song, windows.song_names, ckpt.pitches,
                                plane, ckpt.config.data, max_points)
        store_meta(checkpoint, "window_map", stored)
        click.echo(f"stored in {checkpoint}: {len(stored['u'])} windows of {len(stored['songs'])} songs on the pad")
    if out is None:
        return
    embedding = embed_2d(means, method, seed)
    if embedding.note:
        log.warning(embedding.note)
    labels = [group_of(windows.song_names[s], color_by) for s in windows.song[keep]]
    title = f"{checkpoint.name}: {len(means)} windows of {len(songs)} songs, latent {means.shape[1]} ({embedding.method})"
    plot_map(embedding, labels, out, title, _axis_names(ckpt))  # named only where drawn on the units themselves
    click.echo(f"wrote {out}: {len(means)} windows, {len(set(labels))} {color_by}s, {embedding.method}")


def _plane_dict(plane) -> dict:
    return {"origin": plane.origin.tolist(), "axes": plane.axes.tolist(), "lo": plane.lo.tolist(),
            "hi": plane.hi.tolist(), "songs": []}


@click.command()
@click.argument("run_dir", type=click.Path(exists=True, file_okay=False, path_type=Path))
@click.option("--out", type=OutputFile(), required=True, help="The image to write.")
@click.option("--skip", type=click.IntRange(min=0), default=0, show_default=True,
              help="Leave out the first N epochs (the paper cut 10, for scale).")
def curve(run_dir: Path, out: Path, skip: int) -> None:
    """The training curve of a run: lower bound per time step, training and validation."""
    from ..errors import ConfigError
    from ..measure.plots import plot_curve
    from ..training.run import METRICS_FILE, read_metrics

    rows = read_metrics(run_dir)
    if not rows:
        raise ConfigError(f"{run_dir}: no {METRICS_FILE}; give the --out directory of `vrae-live train`")
    plot_curve(rows, out, skip=skip, title=f"{run_dir.name}: lower bound per datapoint per time step")
    last = rows[-1]
    val = f", validation {last['val_bound']:.4f}" if last.get("val_bound") is not None else ""
    click.echo(f"wrote {out}: {len(rows)} epochs; last training {last['train_bound']:.4f}{val} nats/step")


def _axis_names(ckpt) -> tuple[str, ...]:
    """What the pad's x and y play, for a map's axes: "sparser → busier (onsets)"; () for the songs' plane."""
    from ..data.attributes import axis_title

    return tuple(axis_title(name) for name in ckpt.latent_plane().attributes)
