#!/usr/bin/env python3
"""Reproduce the experiments of Fabius & van Amersfoort (2014) on a public-domain corpus, in one command.

    python scripts/reproduce_paper.py                 # the full run (hours on a CPU)
    python scripts/reproduce_paper.py --quick         # minutes: tiny models, a small corpus, to test the pipeline

Steps, each a command a user could run by hand:

1. export a multi-composer corpus from music21 (installs offline with pip) with
   scripts/export_corpus.py into WORK/songs (default ~/.cache/vrae-live/paper-reproduction,
   outside the repository);
2. train the paper's two models, ``vrae-live train --preset paper-2d`` and ``paper-20d``;
3. draw the training curves and latent maps (``vrae-live curve``, ``vrae-live map``) and
   render MIDI examples (``vrae-live generate``, ``vrae-live interpolate``) into docs/figures/;
4. measure the latent space and long generations (vrae_live.analysis) and write
   docs/paper-reproduction.md.

Needs the ``dev`` extra (music21, matplotlib, scikit-learn).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
# Chorales, madrigals, masses, 14th-century Italian songs. (Beethoven's quartets export with tick
# counts pretty_midi rejects as corrupt.) --limit counts corpus files, and monteverdi has two per
# madrigal (.mxl and .rntxt), exported once: about half as many madrigals.
COMPOSERS = ("bach", "monteverdi", "palestrina", "trecento")
FULL = {"limit": 100, "epochs": None, "hidden": None, "takes": 8, "steps": 1000}
QUICK = {"limit": 4, "epochs": 2, "hidden": 32, "takes": 2, "steps": 200}
PRESETS = ("paper-2d", "paper-20d")
RNN_INIT_SECTION = "<!-- rnn_init:begin -->"


def run(args: list[str], log: list[str]) -> str:
    """Run a command, echo it, keep it for the report; its stdout comes back."""
    shown = " ".join(str(a) for a in args).replace(sys.executable, "python").replace(f"{ROOT}/", "")
    print(f"$ {shown}", flush=True)
    log.append(shown)
    done = subprocess.run([str(a) for a in args], cwd=ROOT, stdout=subprocess.PIPE, text=True)
    print(done.stdout, end="", flush=True)
    if done.returncode != 0:
        raise SystemExit(f"failed ({done.returncode}): {shown}")
    return done.stdout


def vrae(*args) -> list[str]:
    return [sys.executable, "-m", "vrae_live", *args]


def rel(path: Path) -> str:
    try:
        return str(path.resolve().relative_to(ROOT))
    except ValueError:
        return str(path)


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv  # the report names the options it was made with
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="Tiny models on a small corpus: tests the pipeline.")
    parser.add_argument("--epochs", type=int, help="Epochs per model, at most [default: the presets' step budget, "
                        "6,000 steps, stopped sooner once the validation bound no longer improves; quick 2].")
    parser.add_argument("--limit", type=int, help="Pieces per composer [default: 100, quick 4].")
    parser.add_argument("--work", type=Path, default=Path.home() / ".cache" / "vrae-live" / "paper-reproduction",
                        help="Corpus, roll cache and runs; outside the repository, so no corpus MIDI is committed.")
    parser.add_argument("--docs", type=Path, default=ROOT / "docs" / "paper-reproduction.md")
    parser.add_argument("--figures", type=Path, default=ROOT / "docs" / "figures")
    parser.add_argument("--device", default="auto", choices=["auto", "cpu", "cuda"])
    args = parser.parse_args(argv)

    mode = dict(QUICK if args.quick else FULL)
    mode["epochs"] = args.epochs or mode["epochs"]
    mode["limit"] = args.limit or mode["limit"]
    work, figures = args.work.resolve(), args.figures.resolve()
    songs, rolls = work / "songs", work / "rolls"
    figures.mkdir(parents=True, exist_ok=True)
    commands: list[str] = []
    started = time.time()

    # 1. the corpus
    export = [sys.executable, ROOT / "scripts" / "export_corpus.py", "--out", songs, "--limit", mode["limit"]]
    for composer in COMPOSERS:
        export += ["--composer", composer]
    run(export, commands)

    # 2. the two models
    runs = {}
    for preset in PRESETS:
        out = work / "runs" / preset
        train = vrae("train", songs, "--preset", preset, "--out", out, "--overwrite",
                     "--cache-dir", rolls, "--device", args.device, "-q")
        if mode["epochs"]:
            train += ["--epochs", mode["epochs"]]
        if mode["hidden"]:
            train += ["--hidden", mode["hidden"]]
        run(train, commands)
        runs[preset] = out

    # 3. figures and MIDI examples, through the commands
    for preset, out in runs.items():
        run(vrae("curve", out, "--out", figures / f"{preset}-curve.png"), commands)
        run(vrae("map", out, songs, "--out", figures / f"{preset}-map.png", "--color-by", "folder",
                 "--cache-dir", rolls), commands)
    bach = sorted((songs / "bach").glob("*.mid"))
    other = sorted((songs / "monteverdi").glob("*.mid"))
    examples = {
        "generate-20d-random.mid": vrae("generate", runs["paper-20d"], "--steps", mode["steps"], "--seed", 1),
        "generate-20d-from-bach.mid": vrae("generate", runs["paper-20d"], "--steps", mode["steps"],
                                           "--from", bach[0], "--at", 0),
        "interpolate-2d-bach-to-monteverdi.mid": vrae("interpolate", runs["paper-2d"], bach[0], other[0],
                                                 "--steps", 200),
    }
    for name, command in examples.items():
        run(command + ["--out", figures / name], commands)

    # 4. measurements
    report = measure(runs, songs, rolls, mode)
    elapsed = time.time() - started
    write_docs(args.docs, figures, runs, report, mode, commands, elapsed, quick=args.quick, argv=argv)
    print(f"wrote {rel(args.docs)} ({elapsed / 60:.1f} min)")
    return 0


def measure(runs: dict[str, Path], songs: Path, rolls: Path, mode: dict) -> dict:
    from vrae_live.checkpoint import load_checkpoint
    from vrae_live.data.corpus import load_songs
    from vrae_live.measure.analysis import drift_report, fit_music_stats, free_run, measure_latent_space, song_rolls
    from vrae_live.offline.render import TakeSettings, fixed_path, random_z, render_take

    report: dict = {"latent": {}, "drift": None}
    for preset, out in runs.items():
        ckpt = load_checkpoint(out)
        corpus = load_songs(songs, ckpt.timing, cache_dir=rolls)
        report["latent"][preset] = measure_latent_space(ckpt, corpus)
        if preset == "paper-20d":
            train_names = set(ckpt.song_names("training"))
            training = [s for s in corpus if s.name in train_names]
            block = ckpt.config.data.hop  # 20 frames: 1 s at 20 Hz
            stats = fit_music_stats(song_rolls(training, ckpt.pitches), ckpt.pitches, block)
            zs = [random_z(ckpt.config.model.latent, seed) for seed in range(mode["takes"])]
            stream = [render_take(ckpt, fixed_path(z), mode["steps"], None, TakeSettings(seed=i)).frames
                      for i, z in enumerate(zs)]
            single = [free_run(ckpt, z, mode["steps"], seed=i) for i, z in enumerate(zs)]
            period = ckpt.timing.frame_seconds()
            report["drift"] = {
                "stats": stats,
                "reports": [drift_report("live stream (overlapping windows, as serve plays)", stream, ckpt.pitches,
                                         stats, period),
                            drift_report("one decoder run (the paper's generation)", single, ckpt.pitches,
                                         stats, period)],
            }
    return report


def _pct(x: float) -> str:
    return "-" if x != x else f"{100 * x:.0f} %"


def write_docs(path: Path, figures: Path, runs: dict[str, Path], report: dict, mode: dict, commands: list[str],
               elapsed: float, quick: bool, argv) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    def fig(name: str) -> str:  # links relative to the page
        return os.path.relpath(figures / name, path.parent)

    lines = ["# Reproducing Fabius & van Amersfoort (2014)", ""]
    if quick:
        lines += ["> **Quick run.** Tiny models (hidden 32), %d epochs, %d pieces per composer, %d-step takes: "
                  "this page proves the pipeline runs end to end; its figures say nothing about the paper's "
                  "claims. The full reproduction is `python scripts/reproduce_paper.py` (see below)."
                  % (mode["epochs"], mode["limit"], mode["steps"]), ""]
    lines += [
        "Made by `python scripts/reproduce_paper.py" + (" " + " ".join(argv) if argv else
                                                        (" --quick" if quick else "")) + f"` in {elapsed / 60:.1f} min.",
        "",
        "## Data",
        "",
        f"Public-domain pieces from music21's corpus, {mode['limit']} per composer at most: "
        + ", ".join(COMPOSERS) + " (chorales, madrigals, masses, 14th-century Italian songs), all instruments merged into one "
        "piano roll at 20 frames per second. The paper used 8 video-game songs; here the songs are many and the "
        "composers few, so maps are coloured by composer. Songs, not windows, are split between training and "
        "validation.",
        "",
        "## Settings",
        "",
        "| model | latent | hidden | window / hop | epochs | lr | training / validation windows | best bound (nats/step) |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for preset, out in runs.items():
        c = json.loads((out / "config.json").read_text())
        t = c["training"]
        lines.append(f"| {preset} | {c['model']['latent']} | {c['model']['hidden']} | {c['data']['window']} / "
                     f"{c['data']['hop']} | {t['epochs_done']} | {c['train']['lr']:g} → {c['train']['lr_final']:g} | "
                     f"{t['train_windows']} / {t['val_windows']} | {t['best_bound']:.4f} ({t['bound_on']}) |")
    lines += ["", "Both presets add what the paper did not have, against posterior collapse: reversed encoder "
              "input, batch-normalised mu, KL warm-up and free bits (see presets/*.toml).", ""]

    lines += ["## Training curves and latent maps (Figures 1 and 2)", ""]
    for preset in runs:
        lines += [f"### {preset}", "",
                  f"![{preset} lower bound per time step]({fig(f'{preset}-curve.png')})",
                  f"![{preset} latent map]({fig(f'{preset}-map.png')})", ""]
    lines += ["The 2-D model's map shows the means themselves; the 20-D model's is a t-SNE embedding of them, "
              "as in the paper's Figure 2.", ""]

    lines += ["## The latent space, measured", "",
              "k-nearest-neighbour classifiers (k = 5, Euclidean) on held-out windows. *Latent*: from the "
              "windows' posterior means; *PCA*: from a PCA of the raw windows (flattened frames x pitches, fitted "
              "on the training windows) to the same number of dimensions; *chance*: always the most common training label "
              "(0 % when the held-out songs are all of another composer). "
              "Active units: latent units whose mean varies across windows by more than 0.01 (Burda et al. 2016).",
              "",
              "| model | active units | task | classes | train / test windows | latent | PCA | chance |",
              "|---|---|---|---|---|---|---|---|"]
    for preset, r in report["latent"].items():
        for c in r.classifiers:
            lines.append(f"| {preset} | {r.active_units} / {r.latent} | {c.task} | {c.classes} | "
                         f"{c.train_windows} / {c.test_windows} | {_pct(c.latent)} | {_pct(c.pca)} | {_pct(c.chance)} |")
    lines.append("")

    drift = report["drift"]
    if drift is not None:
        s = drift["stats"]
        lines += ["## How long the 20-D model generates before it drifts", "",
                  f"Each take starts from a random z ~ N(0, I) and runs {mode['steps']} frames. Frames are cut into "
                  f"blocks of {s.block} frames ({s.block / 20:g} s); a block is summarised by note density (onsets "
                  "per frame), polyphony (sounding pitches per frame) and its 12-bin pitch-class histogram. Its "
                  "distance is the Euclidean distance of these 14 features from the training songs' mean, each "
                  f"feature divided by its standard deviation over the {s.blocks} training blocks. **Drift "
                  f"threshold**: the 95th percentile of the training blocks' own distances ({s.threshold:.2f}), so "
                  "5 % of real blocks lie beyond it. A take has **drifted** at the first of 3 consecutive blocks "
                  "beyond the threshold (3 in a row happen by chance in about 1 in 8000 places for independent "
                  "training blocks).",
                  "",
                  "| generation | takes | drifted at (s), per take | median (s) | blocks beyond threshold |",
                  "|---|---|---|---|---|"]
        for d in drift["reports"]:
            per_take = ", ".join("never" if f is None else f"{f * d.frame_seconds:.0f}" for f in d.drift_frames)
            median = d.median_drift_frame()
            never = all(f is None for f in d.drift_frames)
            median_text = f"> {d.steps * d.frame_seconds:.0f}" if never else f"{median * d.frame_seconds:.0f}"
            lines.append(f"| {d.method} | {len(d.drift_frames)} | {per_take} | {median_text} | "
                         f"{_pct(d.over_share)} |")
        lines += ["", "*never*: no 3 consecutive blocks beyond the threshold in the take. The live stream re-seeds "
                  "the decoder from z every hop and feeds back only the last window's frames, so it cannot wander "
                  "far from what z decodes to; one long decoder run (as the paper generated its 1000 steps) can.",
                  ""]

    lines += ["## MIDI examples", "",
              "Rendered through the same stream decoder and note logic as `vrae-live serve`:", ""]
    for name in ("generate-20d-random.mid", "generate-20d-from-bach.mid", "interpolate-2d-bach-to-monteverdi.mid"):
        lines.append(f"- [{name}]({fig(name)})")
    lines += ["", "## Commands", "", "```"] + commands + ["```", ""]
    lines += ["The full reproduction: `python scripts/reproduce_paper.py` (each model trained as its preset says: "
              "the rate held while the validation bound improves, then lowered, up to 6,000 steps; 100 pieces per "
              "composer, 8 takes of 1000 steps; add `--device cuda` on a GPU).", ""]
    # scripts/rnn_init.py writes its own section at the end of this page: a rerun keeps it, and what follows it.
    old = path.read_text() if path.is_file() else ""
    kept = old[old.index(RNN_INIT_SECTION):] if RNN_INIT_SECTION in old else ""
    path.write_text("\n".join(lines) + ("\n" + kept if kept else ""))


if __name__ == "__main__":
    sys.exit(main())
