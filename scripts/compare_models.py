#!/usr/bin/env python3
"""Train the VRAE, the VRNN and a plain RNN on the same songs and split; compare their bounds.

The three models (presets paper-2d, vrnn, and paper-2d with ``model = "rnn"``) share the data
settings of paper-2d (windows of 50 steps at 20 Hz, the first 520 of each song), the seed,
hence the split by song, and the hidden size. Each is trained with ``vrae_live.training.trainer.Trainer``
into OUT/<model>, and its best checkpoint is evaluated on the held-out songs exactly as

    vrae-live eval OUT/<model> SONGS --split validation --samples K --json

does: the lower bound (ELBO) and the importance-weighted bound with K samples, in nats per
time step (for the RNN both are its exact log-likelihood). The table goes into
docs/models.md between the markers ``<!-- compare_models:begin -->`` and ``:end -->``.

    python scripts/export_corpus.py --out songs/bach        # once: Bach's chorales as .mid
    python scripts/compare_models.py --songs songs/bach --epochs 30                 # the comparison in docs/models.md
    python scripts/compare_models.py --songs songs/bach --epochs 3 --hidden 64 --max-windows-per-song 8
    python scripts/compare_models.py --songs songs/bach --quick                     # checks the script runs

``--quick`` is 1 epoch, hidden and VRNN features 32, 2 windows per song, K = 4: minutes on a CPU, figures of no use.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
import time
from pathlib import Path

import numpy as np
import torch

from vrae_live.checkpoint import load_checkpoint
from vrae_live.config import Config, load_config, with_changes
from vrae_live.data.corpus import prepare_data
from vrae_live.device import resolve_device
from vrae_live.training.evaluation import active_units, encode_means, evaluate
from vrae_live.training.trainer import Trainer

ROOT = Path(__file__).resolve().parent.parent
DOC = ROOT / "docs" / "models.md"
BEGIN, END = "<!-- compare_models:begin -->", "<!-- compare_models:end -->"
MODELS = {  # name -> (preset, model overrides)
    "vrae": ("paper-2d", {}),
    "vrnn": ("vrnn", {}),
    "rnn": ("paper-2d", {"model": "rnn"}),
}
# Boulanger-Lewandowski, Bengio & Vincent (2012), Table 1, JSB Chorales: negative
# log-likelihood per time step, their encoding and split (a rough guide only).
PUBLISHED = [("RNN", 8.71), ("RNN-RBM", 6.27), ("RNN-NADE", 5.56)]


def configs(args: argparse.Namespace) -> dict[str, Config]:
    out = {}
    for name in args.models:
        preset, model = MODELS[name]
        config = load_config(preset)
        model = dict(model)
        if args.hidden:
            model["hidden"] = args.hidden
        if args.features:
            model["features"] = args.features
        train = {"device": args.device, "seed": args.seed}
        if args.epochs:
            train["epochs"] = args.epochs
        data = {"max_windows_per_song": args.max_windows_per_song} if args.max_windows_per_song else {}
        out[name] = with_changes(config, model=model, train=train, data=data)
    first = next(iter(out.values()))
    for name, config in out.items():  # the same songs, windows and split for every model
        assert config.data == first.data and config.train.seed == first.train.seed, name
        assert config.model.hidden == first.model.hidden, name
    return out


def run_one(name: str, config: Config, songs: Path, out: Path, samples: int) -> dict:
    device = resolve_device(config.train.device)
    data = prepare_data(songs, config.data, config.train.seed, config.train.batch_size)
    if data.val is None:
        raise SystemExit(f"{songs}: no validation songs to compare on")
    print(f"[{name}] {len(data.train.x)} training windows, {len(data.val.x)} validation windows "
          f"({len(data.val.song_names)} songs); {config.train.epochs} epochs", flush=True)
    trainer = Trainer(config, data, out / name, device, echo=lambda line: print(f"[{name}] {line}", flush=True))
    started = time.perf_counter()
    summary = trainer.fit()
    seconds = time.perf_counter() - started
    ckpt = load_checkpoint(out / name, device)
    x_val = torch.from_numpy(np.asarray(data.val.x)).to(device, torch.float32)
    figures = evaluate(ckpt.model, x_val, seed=config.train.seed, samples=samples)
    x_train = torch.from_numpy(np.asarray(data.train.x)).to(device, torch.float32)
    units = active_units(encode_means(ckpt.model, x_train)) if name != "rnn" else 0
    return {
        "model": name,
        "cell": config.model.cell,
        "hidden": config.model.hidden,
        "latent": config.model.latent if name != "rnn" else 0,
        "parameters": sum(p.numel() for p in ckpt.model.parameters()),
        "epochs": summary["epochs_done"],
        "best_epoch": summary["best_epoch"],
        "bound": figures["bound"],
        "iw_bound": figures["iw_bound"],
        "kl_per_step": figures["kl"] / figures["steps"],
        "active_units": units,
        "samples": samples,
        "val_windows": figures["windows"],
        "val_songs": len(data.val.song_names),
        "train_windows": len(data.train.x),
        "seconds": round(seconds, 1),
    }


def table(rows: list[dict], command: str) -> str:
    r0 = rows[0]
    lines = [
        f"Measured with `{command}`: {r0['epochs']} epoch(s) each, hidden {r0['hidden']}, "
        f"{r0['train_windows']} training windows; held out: {r0['val_windows']} windows of "
        f"{r0['val_songs']} songs; K = {r0['samples']} importance samples. Nats per time step on the "
        "held-out songs (higher is better; for the RNN both figures are its exact log-likelihood); "
        "seconds: training wall time, per-epoch validation included.",
        "",
        "| model | cell | latent | parameters | lower bound | IW bound | KL / step | active units | best epoch | seconds |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        lines.append(
            f"| {r['model']} | {r['cell']} | {r['latent']} | {r['parameters']:,} | {r['bound']:.4f} | "
            f"{r['iw_bound']:.4f} | {r['kl_per_step']:.4f} | {r['active_units']}/{r['latent']} | "
            f"{r['best_epoch']} | {r['seconds']:.0f} |"
        )
    lines += [
        "",
        "For context, Boulanger-Lewandowski et al. (2012), Table 1, JSB Chorales, log-likelihood per time step "
        "(their piano-roll encoding, quantisation and split differ from these, so a rough guide only): "
        + ", ".join(f"{name} {-nll:.2f}" for name, nll in PUBLISHED) + ".",
    ]
    return "\n".join(lines)


def write_doc(text: str, doc: Path) -> None:
    content = doc.read_text() if doc.is_file() else f"{BEGIN}\n{END}\n"
    if BEGIN not in content or END not in content:
        content = content.rstrip("\n") + f"\n\n{BEGIN}\n{END}\n"
    content = re.sub(re.escape(BEGIN) + ".*?" + re.escape(END), lambda _: f"{BEGIN}\n{text}\n{END}", content, flags=re.S)
    doc.write_text(content)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--songs", type=Path, default=Path("songs/bach"), help="folder of .mid files [songs/bach]")
    parser.add_argument("--out", type=Path, default=Path("checkpoints/compare"), help="run directories go here")
    parser.add_argument("--epochs", type=int, help="epochs per model [fitted to the presets' step budgets]")
    parser.add_argument("--hidden", type=int, help="hidden units of every model [the presets' 500]")
    parser.add_argument("--features", type=int, help="the VRNN's feature width [the preset's]")
    parser.add_argument("--max-windows-per-song", type=int, help="first N windows of each song [the presets' 520]")
    parser.add_argument("--samples", type=int, default=100, help="K for the importance-weighted bound [100]")
    parser.add_argument("--models", nargs="+", choices=list(MODELS), default=list(MODELS))
    parser.add_argument("--device", default="auto", help="auto | cpu | cuda [auto]")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, help="torch CPU threads")
    parser.add_argument("--quick", action="store_true", help="1 epoch, hidden and features 32, 2 windows per song, K = 4")
    parser.add_argument("--doc", type=Path, default=DOC, help="the markdown file the table goes into")
    parser.add_argument("--no-doc", action="store_true", help="print the table only")
    args = parser.parse_args(argv)
    if args.quick:
        args.epochs = args.epochs or 1
        args.hidden = args.hidden or 32
        args.features = args.features or 32
        args.max_windows_per_song = args.max_windows_per_song or 2
        args.samples = 4
    if args.threads:
        torch.set_num_threads(args.threads)
    if not args.songs.is_dir():
        raise SystemExit(f"{args.songs}: no such folder; export Bach's chorales with "
                         f"python scripts/export_corpus.py --out {args.songs}")
    command = "python scripts/compare_models.py " + " ".join(argv if argv is not None else sys.argv[1:])
    rows = []
    for name, config in configs(args).items():
        rows.append(run_one(name, config, args.songs, args.out, args.samples))
        print(json.dumps(rows[-1]), flush=True)
    (args.out / "comparison.json").write_text(json.dumps(rows, indent=2) + "\n")
    text = table(rows, command.strip())
    print(text)
    if not args.no_doc:
        write_doc(text, args.doc)
        print(f"table written to {args.doc}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
