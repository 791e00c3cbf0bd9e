"""--precision: bf16 under autocast where the device has it, a clear error where it does not."""

from __future__ import annotations

import importlib.util
import re
from pathlib import Path

import pytest
import torch
from click.testing import CliRunner

from vrae_live.checkpoint import load_checkpoint
from vrae_live.cli import main
from vrae_live.config import load_config
from vrae_live.data.corpus import prepare_data
from vrae_live.errors import ConfigError
from vrae_live.training.precision import bf16_is_native, check_precision
from vrae_live.training.run import read_metrics
from vrae_live.training.trainer import Trainer

CPU = torch.device("cpu")
SETTINGS = dict(hidden=16, latent=2, window=16, hop=8, batch_size=16, epochs=2, fs=20, device="cpu", onsets=False)


def test_fp32_runs_anywhere_and_an_unknown_precision_is_named():
    check_precision("fp32", CPU)
    with pytest.raises(ConfigError, match="--precision fp16: unknown; known: fp32, bf16"):
        check_precision("fp16", CPU)


def test_bf16_on_a_cpu_without_bf16_arithmetic_is_refused_with_the_reason():
    if bf16_is_native(CPU):
        check_precision("bf16", CPU)
        return
    with pytest.raises(ConfigError, match=r"--precision bf16: this CPU \(it lacks AVX512-BF16 and AMX\) has no bf16 "
                                          r"arithmetic.*use --precision fp32"):
        check_precision("bf16", CPU)


@pytest.mark.slow
def test_train_says_so_in_one_line(songs_dir, tmp_path):
    result = CliRunner().invoke(main, ["train", str(songs_dir), "--out", str(tmp_path / "run"), "--precision", "bf16",
                                       "--device", "cpu", "--epochs", "1", "--hidden", "16"])
    if bf16_is_native(CPU):  # nothing to refuse: it trains in bf16
        assert result.exit_code == 0, result.output
        assert read_metrics(tmp_path / "run")[0]["epoch"] == 1
        assert load_checkpoint(tmp_path / "run").config.train.precision == "bf16"
        return
    assert result.exit_code == 1
    assert result.output.startswith("error: --precision bf16: this CPU") and "Traceback" not in result.output
    assert not (tmp_path / "run" / "metrics.jsonl").exists()


@pytest.mark.parametrize("whiten", [False, True], ids=["batchnorm", "whitening"])
def test_a_bf16_run_trains_fp32_weights_to_about_the_bound_of_fp32(songs_dir, tmp_path, whiten):
    """Emulated on a CPU without bf16 (the command line refuses that; the Trainer runs it): the
    arithmetic, not the speed, is what this checks."""
    bounds = {}
    for precision in ("fp32", "bf16"):
        config = load_config("live-2d", {**SETTINGS, "mu_whiten": whiten, "precision": precision})
        data = prepare_data(songs_dir, config.data, config.train.seed, config.train.batch_size)
        trainer = Trainer(config, data, tmp_path / precision)
        summary = trainer.fit()
        assert summary["precision"] == precision
        assert all(w.dtype == torch.float32 for w in trainer.model.state_dict().values() if w.is_floating_point())
        bounds[precision] = read_metrics(tmp_path / precision)[-1]["val_bound"]
    assert bounds["bf16"] != bounds["fp32"]  # the forward pass did run in bf16
    assert bounds["bf16"] == pytest.approx(bounds["fp32"], abs=0.1)


def test_bench_precision_prints_both_figures_and_the_ratio(capsys):
    path = Path(__file__).resolve().parent.parent / "scripts" / "bench_precision.py"
    spec = importlib.util.spec_from_file_location("bench_precision", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    assert module.main(["--quick"]) == 0
    out = capsys.readouterr().out
    number = r"-?\d+(\.\d+)?"
    for precision in ("fp32", "bf16"):
        assert re.search(rf"^{precision}: {number} s/epoch +{number} seq/s +bound {number}", out, re.MULTILINE), out
    assert re.search(rf"^ratio = {number}", out, re.MULTILINE) and "machine:" in out and "bf16 on cpu:" in out
    assert re.search(rf"^bound difference = [+-]{number} nats/step", out, re.MULTILINE), out
