"""Training on several processes: shards of a batch, one step's gradients against one process's,
and ``torchrun -m vrae_live train`` end to end on gloo (2 CPU processes): the bound, resume, stops."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as mp

from tests.conftest import write_motif_songs
from vrae_live.checkpoint import load_checkpoint
from vrae_live.config import load_config
from vrae_live.data.corpus import prepare_data
from vrae_live.models.vrae import VRAE
from vrae_live.training.distributed import World
from vrae_live.training.evaluation import evaluate
from vrae_live.training.run import read_metrics
from vrae_live.training.trainer import Trainer

ROOT = Path(__file__).resolve().parents[1]  # the checkout under test, whatever is installed


def test_the_shards_of_a_batch_are_disjoint_cover_it_and_differ_by_at_most_one():
    for size in (1, 2, 3, 4):
        for n in range(size, 23):
            batch = torch.randperm(n)
            shards = [World(rank=r, local_rank=r, size=size).shard(batch) for r in range(size)]
            assert torch.equal(torch.cat(shards), batch)
            assert max(map(len, shards)) - min(map(len, shards)) <= 1


# -- one step in two processes against one step in one -------------------------------

STEP_SETTINGS = dict(hidden=12, latent=2, window=16, hop=8, batch_size=7, fs=20, kl_anneal_steps=0, free_bits=0.05)
STEP_BATCH = [3, 14, 15, 9, 2, 6, 5]  # 7 windows: shares of 4 and 3


def _trainer(songs: Path, out: Path, whiten: bool, world: World | None = None) -> Trainer:
    config = load_config("live-2d", {**STEP_SETTINGS, "mu_whiten": whiten, "device": "cpu"})
    data = prepare_data(songs, config.data, config.train.seed, config.train.batch_size)
    return Trainer(config, data, out, world=world)


def _one_step(trainer: Trainer) -> dict[str, torch.Tensor]:
    """The gradients and buffers after one step on STEP_BATCH, with z = mu: no noise, so that one
    process and two draw nothing different and must agree to rounding."""
    batch = torch.tensor(STEP_BATCH)
    trainer._train_step(trainer.batches.draw(trainer.world.shard(batch)), len(batch))
    grads = {f"grad {name}": p.grad.clone() for name, p in trainer.model.named_parameters()}
    return {**grads, **{f"buffer {name}": b.clone() for name, b in trainer.model.named_buffers()}}


def _step_in_a_world_of_two(rank: int, store: str, songs: str, out: str, whiten: bool) -> None:
    VRAE.sample = staticmethod(lambda mu, logvar, generator=None: mu)
    dist.init_process_group("gloo", init_method=f"file://{store}", rank=rank, world_size=2)
    try:
        trainer = _trainer(Path(songs), Path(out), whiten, World(rank=rank, local_rank=rank, size=2))
        result = _one_step(trainer)
        if rank == 0:
            torch.save(result, Path(out) / "step.pt")
    finally:
        dist.destroy_process_group()


@pytest.mark.slow
@pytest.mark.parametrize("whiten", [False, True], ids=["batchnorm", "whitening"])
def test_a_step_shared_by_two_processes_has_the_gradient_of_the_whole_batch(tmp_path, monkeypatch, whiten):
    """Unequal shares (4 and 3 windows), batch statistics of mu over the global batch, free bits
    judged on it, DDP's average: the gradients and running statistics are one process's."""
    songs = write_motif_songs(tmp_path / "songs")
    monkeypatch.setattr(VRAE, "sample", staticmethod(lambda mu, logvar, generator=None: mu))
    alone = _one_step(_trainer(songs, tmp_path / "one", whiten))
    (tmp_path / "two").mkdir()
    monkeypatch.syspath_prepend(str(ROOT))  # the spawned processes import this checkout and this file
    mp.spawn(_step_in_a_world_of_two, args=(str(tmp_path / "store"), str(songs), str(tmp_path / "two"), whiten),
             nprocs=2)
    shared = torch.load(tmp_path / "two" / "step.pt")
    assert shared.keys() == alone.keys()
    assert any(g.abs().sum() > 0 for name, g in alone.items() if name.startswith("grad"))
    # atol 1e-5 against gradients up to 1: the pad axes' loss (live-2d's, over every pair of the global
    # batch) steepens the step, and the two ways round differ by up to 3.5e-6 in rounding.
    for name, value in alone.items():
        torch.testing.assert_close(shared[name], value, rtol=1e-4, atol=1e-5, msg=name)


# -- torchrun end to end -------------------------------------------------------------

# 115 training windows (6 songs, one held out) in batches of 5: 23 steps an epoch, shares of 3 and 2.
# One component: a mixture's first epochs on this tiny corpus are chaotic (2 epochs ended at -10.59 in two
# processes and -12.64 in one, where one component's ended 0.11 apart); that one step of a mixture in two
# processes is one process's step is tested above, with the default preset's 8 components.
# The tanh RNN the tolerance below was measured on (a GRU of 16 units ended its 2 epochs 0.24 apart in one
# process and two: its first steps on this corpus move faster, and so do its differences of noise).
TRAIN = ["--hidden", "16", "--window", "16", "--hop", "8", "--batch-size", "5", "--fs", "20", "--lr", "3e-3",
         "--components", "1", "--cell", "rnn", "--device", "cpu", "-q"]
# The bound of a 2-process run may differ from one process's by this much, in nats per step. Not
# bit-identical: each process draws the reparametrisation noise for its share from its own stream,
# and sums in another order. On this corpus and these settings, six single-process runs that
# differ only in their noise ended 2 epochs between -11.891 and -11.823 (a range of 0.069), and
# the 2-process run at -11.832; a run in batches of 3 (what each process's share would learn on
# its own, without DDP) ends near -11.12, 0.7 away. So 0.15: about twice what noise alone moves.
BOUND_TOLERANCE = 0.15


def _env() -> dict[str, str]:
    path = os.pathsep.join(p for p in (str(ROOT), os.environ.get("PYTHONPATH")) if p)
    return {**os.environ, "PYTHONPATH": path, "OMP_NUM_THREADS": "1"}


def _torchrun(*args: str) -> list[str]:
    return [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node", "2",
            "-m", "vrae_live", "train", *args]


def _run(command: list[str]) -> str:
    done = subprocess.run(command, env=_env(), capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stdout + done.stderr
    return done.stderr


@pytest.fixture(scope="module")
def songs(tmp_path_factory) -> Path:
    return write_motif_songs(tmp_path_factory.mktemp("songs"))


@pytest.mark.slow
def test_two_processes_train_a_checkpoint_one_process_loads_with_a_bound_close_to_one_process(songs, tmp_path):
    said = _run(_torchrun(str(songs), "--out", str(tmp_path / "two"), "--epochs", "2", *TRAIN))
    assert "training on 115 windows" in said and "x 2 processes" in said
    assert said.count("epoch   2/2") == 1  # rank 0 alone prints
    _run([sys.executable, "-m", "vrae_live", "train", str(songs), "--out", str(tmp_path / "one"), "--epochs", "2",
          *TRAIN])
    two, one = read_metrics(tmp_path / "two"), read_metrics(tmp_path / "one")
    assert [r["epoch"] for r in two] == [1, 2]  # one row an epoch: only rank 0 writes
    assert two[-1]["val_bound"] == pytest.approx(one[-1]["val_bound"], abs=BOUND_TOLERANCE)
    assert two[-1]["val_bound"] != one[-1]["val_bound"]  # not a single process in disguise

    ckpt = load_checkpoint(tmp_path / "two")
    assert ckpt.meta["training"]["processes"] == 2
    config = ckpt.config
    data = prepare_data(songs, config.data, config.train.seed, config.train.batch_size)
    x_val = torch.from_numpy(np.asarray(data.val.x)).float()
    best = max(two, key=lambda r: r["val_bound"])
    assert evaluate(ckpt.model, x_val, seed=config.train.seed)["bound"] == pytest.approx(best["val_bound"], abs=1e-4)


def _wait_for(process: subprocess.Popen, text: str) -> list[str]:
    """The lines of stderr up to the first that holds ``text`` (torchrun's and its workers')."""
    lines = []
    for line in process.stderr:
        lines.append(line)
        if text in line:
            return lines
    raise AssertionError(f"the run ended before saying {text!r}:\n" + "".join(lines))


def _interrupt(songs: Path, out: Path, epochs: int, send) -> str:
    """Start a 2-process run, wait for its first epoch's line, ``send`` the signal, and wait for the end."""
    process = subprocess.Popen(_torchrun(str(songs), "--out", str(out), "--epochs", str(epochs), *TRAIN),
                               env=_env(), stderr=subprocess.PIPE, stdout=subprocess.DEVNULL, text=True,
                               start_new_session=True)  # a process group of its own, as a terminal's job
    try:
        said = _wait_for(process, f"epoch   1/{epochs}")
        send(process)
        _, rest = process.communicate(timeout=120)  # no hung process: torchrun and both workers end
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGKILL)
    return "".join(said) + rest


@pytest.mark.slow
def test_ctrl_c_stops_both_processes_with_one_resumable_state_and_resume_ends_where_a_straight_run_does(songs, tmp_path):
    epochs = 6
    said = _interrupt(songs, tmp_path / "resumed", epochs, lambda p: os.killpg(p.pid, signal.SIGINT))
    assert said.count("SIGINT: all processes stop after this batch") == 1, said
    assert said.count("stopped; resume with") == 1, said  # rank 0 alone, once
    assert "Traceback" not in said.split("stopped; resume with")[0], said
    state = torch.load(tmp_path / "resumed" / "resume" / "optimizer.pt", weights_only=True)
    assert len(state["noise_ranks"]) == 2
    progress = state["progress"]
    assert 23 <= progress["global_step"] < epochs * 23
    assert json.loads((tmp_path / "resumed" / "resume" / "config.json").read_text())["training"]["interrupted"]

    again = _run(_torchrun(str(songs), "--out", str(tmp_path / "resumed"), "--resume"))
    assert f"resuming at epoch {progress['epoch'] + 1}, step {progress['step_in_epoch']}" in again
    _run(_torchrun(str(songs), "--out", str(tmp_path / "straight"), "--epochs", str(epochs), *TRAIN))

    resumed, straight = load_checkpoint(tmp_path / "resumed" / "resume"), load_checkpoint(tmp_path / "straight" / "resume")
    for name, weight in straight.model.state_dict().items():
        assert torch.equal(weight, resumed.model.state_dict()[name]), name
    def drop_time(rows):
        return [{k: v for k, v in r.items() if not k.endswith("seconds")} for r in rows]
    assert drop_time(read_metrics(tmp_path / "resumed")) == drop_time(read_metrics(tmp_path / "straight"))


@pytest.mark.slow
def test_sigterm_to_torchrun_stops_both_processes_with_a_resumable_state(songs, tmp_path):
    said = _interrupt(songs, tmp_path / "run", 6, lambda p: p.send_signal(signal.SIGTERM))
    assert said.count("SIGTERM: all processes stop after this batch") == 1, said
    assert said.count("stopped; resume with") == 1, said
    progress = torch.load(tmp_path / "run" / "resume" / "optimizer.pt", weights_only=True)["progress"]
    assert progress["global_step"] >= 23
    assert len(read_metrics(tmp_path / "run")) == progress["epoch"]


@pytest.mark.slow
def test_bench_ddp_prints_both_figures_and_the_speed_up():
    done = subprocess.run([sys.executable, str(ROOT / "scripts" / "bench_ddp.py"), "--quick"], env=_env(),
                          capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stdout + done.stderr
    number = r"-?\d+(\.\d+)?"
    for n in (1, 2):
        assert re.search(rf"^{n} process\(es\): {number} s/epoch +bound {number}", done.stdout, re.MULTILINE), done.stdout
    assert re.search(rf"^speed-up = {number}", done.stdout, re.MULTILINE) and "machine:" in done.stdout
