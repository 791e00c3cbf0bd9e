"""Every command-line value is checked before anything opens: one error line naming the option, exit status 2.

Each case fails while click parses the command line (exit status 2, click's usage error), so no
checkpoint is loaded, no file written and no port opened: the checkpoint given is one that does
not exist, and ``serve``'s daemon is replaced by one that fails the test if it is ever reached.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

from vrae_live.cli import main

MISSING = "missing/dir/out"  # an output whose folder does not exist

CASES = [
    # train
    (["train", "{songs}", "--epochs", "0"], "--epochs"),
    (["train", "{songs}", "--batch-size", "0"], "--batch-size"),
    (["train", "{songs}", "--lr", "0"], "--lr"),
    (["train", "{songs}", "--lr", "nan"], "--lr"),
    (["train", "{songs}", "--lr-final", "-1e-4"], "--lr-final"),
    (["train", "{songs}", "--hidden", "0"], "--hidden"),
    (["train", "{songs}", "--latent", "0"], "--latent"),
    (["train", "{songs}", "--window", "1"], "--window"),
    (["train", "{songs}", "--hop", "0"], "--hop"),
    (["train", "{songs}", "--fs", "0"], "--fs"),
    (["train", "{songs}", "--steps-per-beat", "0"], "--steps-per-beat"),
    (["train", "{songs}", "--max-windows-per-song", "0"], "--max-windows-per-song"),
    (["train", "{songs}", "--val-fraction", "1"], "--val-fraction"),
    (["train", "{songs}", "--val-fraction", "-0.1"], "--val-fraction"),
    (["train", "{songs}", "--free-bits", "-1"], "--free-bits"),
    (["train", "{songs}", "--input-dropout", "1"], "--input-dropout"),
    (["train", "{songs}", "--kl-anneal-steps", "-1"], "--kl-anneal-steps"),
    (["train", "{songs}", "--mu-batchnorm", "-0.5"], "--mu-batchnorm"),
    (["train", "{songs}", "--encoder-steps", "-1"], "--encoder-steps"),
    (["train", "{songs}", "--bag-of-notes", "-1"], "--bag-of-notes"),
    (["train", "{songs}", "--seed", "-1"], "--seed"),
    (["train", "{songs}", "--pitch-range", "90-30"], "--pitch-range"),
    (["train", "{songs}", "--out", "{file}"], "--out"),
    (["train", "{songs}/nothing"], "SONGS_DIR"),
    # eval
    (["eval", "nothing", "{songs}", "--samples", "-1"], "--samples"),
    (["eval", "nothing", "{songs}/nothing"], "SONGS_DIR"),
    # map, curve
    (["map", "nothing", "{songs}", "--out", "x.png", "--max-points", "0"], "--max-points"),
    (["map", "nothing", "{songs}", "--out", MISSING + ".png"], "--out"),
    (["map", "nothing", "{songs}/nothing", "--out", "x.png"], "SONGS_DIR"),
    (["curve", "{songs}", "--out", "x.png", "--skip", "-1"], "--skip"),
    (["curve", "{songs}", "--out", MISSING + ".png"], "--out"),
    (["curve", "{songs}/nothing", "--out", "x.png"], "RUN_DIR"),
    # generate: its own options and the performance options it shares with serve
    (["generate", "nothing", "--out", MISSING + ".mid"], "--out"),
    (["generate", "nothing", "--out", "x.mid", "--steps", "0"], "--steps"),
    (["generate", "nothing", "--out", "x.mid", "--at", "-1"], "--at"),
    (["generate", "nothing", "--out", "x.mid", "--from", "{songs}/nothing.mid"], "--from"),
    (["generate", "nothing", "--out", "x.mid", "--density", "2"], "--density"),
    (["generate", "nothing", "--out", "x.mid", "--temperature", "-1"], "--temperature"),
    (["generate", "nothing", "--out", "x.mid", "--bpm", "0"], "--bpm"),
    (["generate", "nothing", "--out", "x.mid", "--bpm", "1000"], "--bpm"),
    (["generate", "nothing", "--out", "x.mid", "--hop", "0"], "--hop"),
    (["generate", "nothing", "--out", "x.mid", "--polyphony", "0"], "--polyphony"),
    (["generate", "nothing", "--out", "x.mid", "--on-threshold", "0"], "--on-threshold"),
    (["generate", "nothing", "--out", "x.mid", "--off-threshold", "0.9"], "--off-threshold"),
    (["generate", "nothing", "--out", "x.mid", "--min-len", "0"], "--min-len"),
    (["generate", "nothing", "--out", "x.mid", "--min-len", "3", "--max-len", "2"], "--max-len"),
    (["generate", "nothing", "--out", "x.mid", "--seed", "-1"], "--seed"),
    # interpolate
    (["interpolate", "nothing", "{file}", "{file}", "--out", MISSING + ".mid"], "--out"),
    (["interpolate", "nothing", "{file}", "{file}", "--out", "x.mid", "--at-a", "-1"], "--at-a"),
    (["interpolate", "nothing", "{file}", "{file}", "--out", "x.mid", "--at-b", "-1"], "--at-b"),
    (["interpolate", "nothing", "{file}", "{file}", "--out", "x.mid", "--steps", "0"], "--steps"),
    (["interpolate", "nothing", "{file}", "{file}", "--out", "x.mid", "--bpm", "0"], "--bpm"),
    (["interpolate", "nothing", "{songs}/a.mid", "{file}", "--out", "x.mid"], "SONG_A"),
    # serve
    (["serve", "--port", "70000"], "--port"),
    (["serve", "--port", "-1"], "--port"),
    (["serve", "--bpm", "0"], "--bpm"),
    (["serve", "--bpm", "500"], "--bpm"),
    (["serve", "--bpm", "nan"], "--bpm"),
    (["serve", "--glide", "-1"], "--glide"),
    (["serve", "--glide", "inf"], "--glide"),
    (["serve", "--duration", "-1"], "--duration"),
    (["serve", "--duration", "0"], "--duration"),
    (["serve", "--record", MISSING + ".mid"], "--record"),
    (["serve", "--record", "{songs}"], "--record"),
    (["serve", "--hop", "0"], "--hop"),
    (["serve", "--polyphony", "0"], "--polyphony"),
    (["serve", "--polyphony", "129"], "--polyphony"),
    (["serve", "--on-threshold", "1.5"], "--on-threshold"),
    (["serve", "--off-threshold", "-0.1"], "--off-threshold"),
    (["serve", "--off-threshold", "0.6"], "--off-threshold"),
    (["serve", "--on-threshold", "0.3", "--off-threshold", "0.3"], "--off-threshold"),
    (["serve", "--min-len", "0"], "--min-len"),
    (["serve", "--max-len", "0"], "--max-len"),
    (["serve", "--min-len", "4", "--max-len", "2"], "--max-len"),
    (["serve", "--seed", "-1"], "--seed"),
    (["serve", "--feedback", "127.0.0.1:70000"], "--feedback"),
    (["serve", "--feedback", "nowhere"], "--feedback"),
    (["serve", "--device", "tpu"], "--device"),
    (["serve", "--key", "H"], "--key"),
    (["serve", "--key", "12"], "--key"),
    (["serve", "--key", "C", "--scale", "bebop"], "--scale"),
    (["serve", "--key-strength", "1.5"], "--key-strength"),
    (["generate", "nothing", "--out", "x.mid", "--key", "X#"], "--key"),
    (["interpolate", "nothing", "{file}", "{file}", "--out", "x.mid", "--scale", "lydian-dominant"], "--scale"),
]


@pytest.fixture
def no_daemon(monkeypatch):
    """serve's daemon, replaced: a case that got past the checks would fail here, not hang."""

    def reached(*args, **kwargs):
        raise AssertionError("a bad value got past the command line's checks")

    monkeypatch.setattr("vrae_live.live.serve.serve", reached)


@pytest.mark.parametrize("args, option", CASES, ids=[" ".join(args) for args, _ in CASES])
def test_a_bad_value_is_one_line_naming_the_option(args, option, tmp_path, monkeypatch, no_daemon):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "songs").mkdir()
    (tmp_path / "a_file").write_bytes(b"")
    args = [a.format(songs=tmp_path / "songs", file=tmp_path / "a_file") for a in args]
    result = CliRunner().invoke(main, args, catch_exceptions=False)  # an exception would be a traceback
    assert result.exit_code == 2, result.output  # click's usage error: nothing was loaded or opened
    errors = [line for line in result.output.splitlines() if "error" in line.lower()]
    assert len(errors) == 1, result.output
    assert f"'{option}'" in errors[0], result.output
    assert not list(tmp_path.glob("x.*")) and not (tmp_path / "missing").exists()


@pytest.mark.parametrize("args, option", [
    (["serve", "--port", "70000"], "--port"),
    (["generate", "nothing", "--out", MISSING + ".mid"], "--out"),
])
def test_a_bad_value_in_a_real_process(args, option, tmp_path):
    """The installed entry point, stderr a pipe: the same one line, and no traceback."""
    result = subprocess.run([sys.executable, "-m", "vrae_live", *args], capture_output=True, text=True,
                            timeout=60, cwd=tmp_path, env=_with_package_on_path())
    assert result.returncode == 2
    assert "Traceback" not in result.stderr
    errors = [line for line in result.stderr.splitlines() if line.startswith("Error:")]
    assert len(errors) == 1 and f"'{option}'" in errors[0], result.stderr


def _with_package_on_path() -> dict[str, str]:
    """The environment with this checkout first on the path (the process runs in another folder)."""
    root = str(Path(__file__).resolve().parent.parent)
    return {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [root, os.environ.get("PYTHONPATH")]))}


def test_an_unknown_key_or_scale_lists_the_names(no_daemon):
    key = CliRunner().invoke(main, ["serve", "--key", "H"])
    assert "C, C#, Db" in key.output and "Bb, B" in key.output
    scale = CliRunner().invoke(main, ["serve", "--scale", "bebop"])
    assert all(name in scale.output for name in ("major", "harmonic-minor", "dorian", "blues", "chromatic"))
