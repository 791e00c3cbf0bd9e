#!/usr/bin/env python3
"""How much does a VRAE's decoder listen to its code? Nats a step, on its own training windows.

Each training window is read teacher-forced twice: given its own code (the encoder's mean) and
given the code of another training window (a fixed random pairing). The difference of the two
negative log-likelihoods, in nats a step, is what the code is worth to the decoder: near 0, the
decoder plays from the past frames alone and the pad cannot steer it; the larger, the more
what it plays follows the code. For a decoder of tanh units it also prints the share of its
states past 0.99 (saturated: a unit there passes almost no gradient and barely moves with its
input).

    python3 scripts/code_worth.py RUN SONGS [RUN SONGS ...]
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))  # this checkout's vrae_live

from vrae_live.checkpoint import load_checkpoint  # noqa: E402
from vrae_live.data.corpus import load_songs, windows_for  # noqa: E402
from vrae_live.training.evaluation import encode_means  # noqa: E402

SATURATED = 0.99


@torch.no_grad()
def code_worth(run: Path, songs: Path, seed: int = 0) -> str:
    """One line: the run's training windows, their NLL a step under their own codes and under others'."""
    checkpoint = load_checkpoint(run)
    model = checkpoint.model.eval()
    if checkpoint.config.model.model != "vrae":
        raise SystemExit(f"{run}: a VRAE's code is measured here, not a {checkpoint.config.model.model}'s")
    training = load_songs(songs, checkpoint.timing, names=checkpoint.song_names("training"))
    x = torch.from_numpy(windows_for(training, checkpoint.pitches, checkpoint.config.data).x).float()
    z = encode_means(model, x)
    others = torch.randperm(len(x), generator=torch.Generator().manual_seed(seed))
    own, other = (model.reconstruction_nll(codes, x).mean().item() / x.shape[1] for codes in (z, z[others]))
    line = (f"{run}: {len(x)} training windows; -log p a step {own:.3f} under their own codes, {other:.3f} under "
            f"another window's: the code is worth {other - own:.3f} nats a step")
    if checkpoint.config.model.cell == "rnn":
        states = model.decode_states(z, x)
        line += f"; tanh states past {SATURATED}: {(states.abs() > SATURATED).float().mean().item():.0%}"
    return line


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("runs", nargs="+", help="pairs: a checkpoint folder, then the folder of songs it trained on")
    args = parser.parse_args(argv)
    if len(args.runs) % 2:
        parser.error("give each checkpoint folder with the folder of its songs")
    for run, songs in zip(args.runs[::2], args.runs[1::2]):
        print(code_worth(Path(run), Path(songs)), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
