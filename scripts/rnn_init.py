#!/usr/bin/env python3
"""Does a trained VRAE make a good start for a supervised RNN? (Fabius & van Amersfoort 2014, issue 19)

    python scripts/rnn_init.py              # the whole study: about 30 min on 2 shared CPU cores
    python scripts/rnn_init.py --quick      # a minute: tiny sizes, proves the pipeline only

1. exports Bach, Palestrina, Monteverdi and Trecento from music21's corpus with
   scripts/export_corpus.py into WORK/songs (skipped with --songs FOLDER, whose top folders are the classes);
2. splits the pieces per composer between training and test, pretrains one VRAE per seed on the
   training windows, and trains the composer classifier and the next-frame predictor from a random
   start and from the VRAE, on 1 %, 10 % and 100 % of the labelled windows
   (``vrae_live.experiments.rnn_init``);
3. writes the results (JSON, with every learning curve), the learning-curve plots, and the
   section of docs/paper-reproduction.md between ``<!-- rnn_init:begin -->`` and ``:end -->``.

Needs the ``dev`` extra (music21 to export the corpus, matplotlib for the plots).
"""

from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
import time
from dataclasses import replace
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))  # this checkout's vrae_live

import numpy as np  # noqa: E402
import torch  # noqa: E402

from vrae_live.data.corpus import load_songs  # noqa: E402
from vrae_live.experiments.rnn_init import StudySettings, run_study  # noqa: E402
from vrae_live.experiments.rnn_init_results import plot_learning_curves  # noqa: E402
from vrae_live.machine import machine_line  # noqa: E402

COMPOSERS = ("bach", "monteverdi", "palestrina", "trecento")
BEGIN, END = "<!-- rnn_init:begin -->", "<!-- rnn_init:end -->"
QUICK = {"limit": 3, "settings": dict(hidden=16, latent=4, window=16, hop=8, max_windows_per_song=8,
                                      vrae_steps=20, steps=10, eval_every=5, long_steps=20, batch=8, vrae_batch=16,
                                      fractions=(0.1, 1.0), seeds=(0, 1))}


def parse_args(argv: list[str]) -> argparse.Namespace:
    defaults = StudySettings()
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="Tiny sizes and a few pieces: tests the pipeline.")
    parser.add_argument("--songs", type=Path, help="Use this folder of .mid files (top folder: the class) "
                                                   "instead of exporting music21's corpus.")
    parser.add_argument("--limit", type=int, default=40, help="Pieces per composer to export (Monteverdi has "
                                                              "two corpus files per madrigal: about half).")
    parser.add_argument("--work", type=Path, default=Path.home() / ".cache" / "vrae-live" / "rnn-init",
                        help="Corpus, roll cache and VRAE runs; outside the repository.")
    parser.add_argument("--seeds", type=int, help=f"Seeds per setting, 0, 1, ... [default: {len(defaults.seeds)}].")
    parser.add_argument("--steps", type=int, help=f"Supervised steps per run [default: {defaults.steps}].")
    parser.add_argument("--vrae-steps", type=int, help=f"VRAE pretraining steps [default: {defaults.vrae_steps}].")
    parser.add_argument("--hidden", type=int, help=f"Hidden units [default: {defaults.hidden}].")
    parser.add_argument("--threads", type=int, default=1, help="torch threads (a shared 2-core machine: 1).")
    parser.add_argument("--results", type=Path, default=ROOT / "docs" / "figures" / "rnn-init.json")
    parser.add_argument("--redraw", action="store_true", help="Train nothing: draw the plots and write the section "
                                                             "again from the results --results holds.")
    parser.add_argument("--figures", type=Path, default=ROOT / "docs" / "figures")
    parser.add_argument("--docs", type=Path, default=ROOT / "docs" / "paper-reproduction.md",
                        help="The page whose rnn_init section is rewritten ('-' for none).")
    return parser.parse_args(argv)


def settings_from(args: argparse.Namespace) -> StudySettings:
    settings = StudySettings(**QUICK["settings"]) if args.quick else StudySettings()
    changes = {name: value for name, value in
               (("steps", args.steps), ("vrae_steps", args.vrae_steps), ("hidden", args.hidden)) if value is not None}
    if args.seeds is not None:
        changes["seeds"] = tuple(range(args.seeds))
    return replace(settings, **changes)


def export_corpus(songs: Path, limit: int) -> str:
    command = [sys.executable, str(ROOT / "scripts" / "export_corpus.py"), "--out", str(songs), "--limit", str(limit)]
    for composer in COMPOSERS:
        command += ["--composer", composer]
    subprocess.run(command, check=True, cwd=ROOT)
    return " ".join(command[1:]).replace(f"{ROOT}/", "")


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    args = parse_args(argv)
    if args.redraw:
        results = json.loads(args.results.read_text())
        report(results, args)
        return 0
    torch.set_num_threads(args.threads)
    started = time.time()
    settings = settings_from(args)
    work = args.work.resolve() / ("quick" if args.quick else "")  # a quick corpus is not mixed into the full one
    if args.songs is not None:
        songs_dir, exported = args.songs, None
    else:
        songs_dir = work / "songs"
        exported = export_corpus(songs_dir, QUICK["limit"] if args.quick else args.limit)
    songs = load_songs(songs_dir, settings.data.timing, cache_dir=work / "rolls")
    results = run_study(songs, settings, work / "runs", echo=lambda line: print(line, flush=True))
    elapsed = time.time() - started
    results["command"] = "python scripts/rnn_init.py" + (" " + " ".join(argv) if argv else "")
    results["export"] = exported
    results["minutes"] = round(elapsed / 60, 1)
    results["machine"] = machine_line(torch.device("cpu"))
    args.results.parent.mkdir(parents=True, exist_ok=True)
    args.results.write_text(json.dumps(results, indent=1) + "\n")
    report(results, args)
    print(f"wrote {rel(args.results)} ({elapsed / 60:.1f} min)")
    return 0


def report(results: dict, args: argparse.Namespace) -> None:
    """The plots, and the page's section, from the results."""
    figures = draw(results, args.figures)
    print(f"wrote {', '.join(rel(f) for f in figures)}")
    if str(args.docs) != "-":
        write_section(args.docs, results, figures, args.results)
        print(f"wrote the rnn_init section of {rel(args.docs)}")


def draw(results: dict, folder: Path) -> list[Path]:
    data = results["data"]
    return [
        plot_learning_curves(results, "classify", "accuracy", folder / "rnn-init-classify.png",
                             "composer accuracy on the test songs",
                             (data["chance_accuracy"], "most common class")),
        plot_learning_curves(results, "predict", "nll", folder / "rnn-init-predict.png",
                             "held-out NLL per frame (nats)",
                             (data["marginal_nll"], "pitch frequencies alone"), ylim=(0, 1.5 * data["marginal_nll"])),
    ] + ([plot_learning_curves(results, "predict_long", "nll", folder / "rnn-init-predict-long.png",
                               "held-out NLL per frame (nats)", (data["marginal_nll"], "pitch frequencies alone"),
                               ylim=(0, 1.5 * data["marginal_nll"]))] if results["settings"]["long_steps"] else [])


def rel(path: Path) -> str:
    try:
        return str(Path(path).resolve().relative_to(ROOT))
    except ValueError:
        return str(path)


# -- the page ------------------------------------------------------------------------


def _pm(stats: dict, scale: float = 1.0, digits: int = 1) -> str:
    return (f"{stats['mean'] * scale:.{digits}f} ± {stats['std'] * scale:.{digits}f} "
            f"[{stats['min'] * scale:.{digits}f}, {stats['max'] * scale:.{digits}f}]")


def paired(results: dict, task: str, fraction: float, metric: str, point: str) -> dict:
    """VRAE minus random per seed (the two share the labelled windows, the head and the batches)."""
    final = {(r["init"], r["seed"]): r[point][metric] for r in results["runs"]
             if r["task"] == task and r["fraction"] == fraction}
    seeds = sorted({seed for _, seed in final})
    diffs = np.array([final[("vrae", s)] - final[("random", s)] for s in seeds])
    return {"mean": float(diffs.mean()), "std": float(diffs.std(ddof=1)) if len(diffs) > 1 else 0.0,
            "min": float(diffs.min()), "max": float(diffs.max()), "diffs": diffs}


def results_table(results: dict, point: str) -> list[str]:
    """The table of the figures at each run's ``point`` (``final`` or ``early_stopped``)."""
    summary = results["summary"][point]
    rows = {(r["task"], r["fraction"], r["init"]): r for r in summary}
    fractions = sorted({r["fraction"] for r in summary})
    stopped = point == "early_stopped"
    lines = ["| task | labels (windows) | random init | VRAE init | VRAE − random, per seed | VRAE better |"
             + (" step kept, random / VRAE |" if stopped else ""),
             "|---|---|---|---|---|---|" + ("---|" if stopped else "")]
    for task, metric, scale, unit, better in (("classify", "accuracy", 100, " %", 1),
                                              ("classify", "balanced_accuracy", 100, " %", 1),
                                              ("predict", "nll", 1, "", -1), ("predict_long", "nll", 1, "", -1)):
        name = {"accuracy": "composer accuracy (%)", "balanced_accuracy": "balanced accuracy (%)",
                "nll": "next-frame NLL (nats/frame)"}[metric]
        if task == "predict_long":
            name = f"next-frame NLL, {results['settings']['long_steps']} steps"
        digits = 1 if scale == 100 else 3
        for fraction in fractions:
            if (task, fraction, "random") not in rows:
                continue
            random_row, vrae_row = rows[(task, fraction, "random")], rows[(task, fraction, "vrae")]
            d = paired(results, task, fraction, metric, point)
            wins = int((better * d["diffs"] > 0).sum())
            lines.append(f"| {name} | {fraction:.0%} ({random_row['labelled_windows']}) | "
                         f"{_pm(random_row[metric], scale, digits)} | {_pm(vrae_row[metric], scale, digits)} | "
                         f"{d['mean'] * scale:+.{digits}f} ± {d['std'] * scale:.{digits}f} | "
                         f"{wins} of {len(d['diffs'])} seeds |"
                         + (f" {random_row['step']['mean']:.0f} / {vrae_row['step']['mean']:.0f} |" if stopped else ""))
    return lines


def section(results: dict, figures: list[Path], page: Path, results_path: Path) -> list[str]:
    s, data = results["settings"], results["data"]
    def fig(p):
        return os.path.relpath(p, page.parent)

    lines = [
        "## Does a VRAE initialise a supervised RNN? (the paper's claim, measured)", "",
        f"Made by `{results['command']}` in {results['minutes']:.1f} min ({results['machine']}; "
        "the machine shared with other jobs). Results, with every learning curve: "
        f"[{results_path.name}]({fig(results_path)}).", "",
        "The paper names as a contribution that a VRAE trained on unlabelled data \"can facilitate supervised "
        "training of RNNs by initialising the weights and network state\", with no figure. The closest measurement "
        "is Dai and Le (2015): pretraining an LSTM as a sequence autoencoder took IMDB test error from 13.5 % to "
        "7.24 %, while some variants did not help.", "",
        "**Setup.** "
        f"Windows of {s['window']} frames ({s['window'] / s['fs']:g} s at {s['fs']:g} Hz), hop {s['hop']}, the first "
        f"{s['max_windows_per_song']} of each piece. Pieces, never windows, are split between training, validation "
        f"and test: {s['test_fraction']:.0%} of each composer's pieces for test, {s['val_fraction']:.0%} for "
        "validation (versions of one piece, e.g. music21's `_old` edition of a madrigal, on the same side). "
        "The validation pieces are trained on by nothing: they only choose where early stopping would have kept "
        f"each run. A VRAE (the `paper-20d` recipe at latent {s['latent']}, hidden "
        f"{s['hidden']}, tanh RNN) is pretrained per seed for {s['vrae_steps']} steps on the training windows only, "
        "without labels. Two supervised tasks, each the same RNN from two starts with the same budget "
        f"({s['steps']} Adam steps, batches of {s['batch']}, lr {s['lr']:g}, the same labelled windows, head and "
        "batch order for a seed):", "",
        "- *composer classification*: an RNN reads the window (backwards, as the VRAE's encoder does), a linear "
        "layer maps its last state to 4 logits. VRAE start: the encoder's W_in, W_enc, b_enc (the head is new);",
        "- *next-frame prediction*: the VRAE's decoder without z (`models/rnn.py`), teacher-forced; scored by the "
        "negative log-likelihood per frame on the test pieces. VRAE start: the decoder's W_x, W_dec, b_dec, W_out, "
        "b_out and the network state h_0 = tanh(W_z z̄ + b_z), z̄ the mean code of the training windows (a random "
        "start has h_0 = 0).", "",
        f"Labels: {', '.join(f'{p:.0%}' for p in s['fractions'])} of the training windows, drawn per composer by "
        f"the seed; {len(s['seeds'])} seeds per setting. Figures are on the test pieces, at the step early stopping "
        "keeps (the best validation accuracy, or validation NLL, along the curve) and at the last step; nothing "
        "is chosen on the test pieces.", "",
        "| composer | pieces: training / validation / test | windows: training / validation / test | training prior |",
        "|---|---|---|---|",
    ]
    for c in data["classes"]:
        lines.append(f"| {c} | {data['train_songs'][c]} / {data['val_songs'][c]} / {data['test_songs'][c]} | "
                     f"{data['train_windows'][c]} / {data['val_windows'][c]} / {data['test_windows'][c]} | "
                     f"{data['train_prior'][c]:.0%} |")
    lines += ["", f"Chance: {data['chance_accuracy']:.1%} accuracy by always naming the most common training class, "
              f"{data['chance_balanced']:.0%} balanced accuracy (mean recall over composers) for any constant guess. "
              f"Each pitch sounded independently at its training frequency scores {data['marginal_nll']:.3f} nats "
              "per frame on the test windows.", ""]
    lines += ["The VRAEs: " + "; ".join(
        f"seed {v['seed']}: test bound {v['test_bound']:.3f} nats/step, {v['active_units']}/{v['latent']} active "
        f"units, {v['seconds'] / 60:.1f} min" for v in results["vrae"]) + ".", ""]
    lines += ["Mean ± sample standard deviation [min, max] over seeds; the difference is paired by seed. Higher "
              "accuracy is better, lower NLL is better.", "", "**With early stopping on the validation pieces:**", ""]
    lines += results_table(results, "early_stopped")
    lines += ["", f"**At the last step ({s['steps']}):**", ""]
    lines += results_table(results, "final")
    lines += ["", f"![composer accuracy against steps, random and VRAE start, per label share]({fig(figures[0])})",
              "", f"![held-out NLL per frame against steps, random and VRAE start, per label share]({fig(figures[1])})",
              "", "Lines: the mean over seeds; bands: min to max. The NLL axis stops at 1.5 times the pitch-frequency "
              "baseline: a random start begins far above it.", ""]
    if len(figures) > 2:
        lines += [f"Next-frame prediction on all the labels with {s['long_steps']} steps ({s['long_steps'] // s['steps']}"
                  " times the budget): does a random start catch up?", "",
                  f"![held-out NLL per frame against steps, {s['long_steps']} steps]({fig(figures[2])})", ""]
    return lines


def write_section(page: Path, results: dict, figures: list[Path], results_path: Path) -> None:
    text = "\n".join(section(results, figures, page.resolve(), results_path.resolve()))
    content = page.read_text() if page.is_file() else ""
    if BEGIN not in content or END not in content:
        content = content.rstrip("\n") + f"\n\n{BEGIN}\n{END}\n"
    content = re.sub(re.escape(BEGIN) + ".*?" + re.escape(END), lambda _: f"{BEGIN}\n{text}\n{END}", content,
                     flags=re.S)
    page.write_text(content)


if __name__ == "__main__":
    sys.exit(main())
