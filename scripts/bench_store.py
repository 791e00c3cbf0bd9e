"""The roll store at scale: parse and store a corpus, then sample training batches from it.

Each phase runs in a fresh process, so its peak memory is its own:

- build: ``corpus.store_songs`` of CORPUS into an empty cache (hash, parse in ``--workers``
  processes, write the roll cache and the store): seconds, files per second, peak RSS of this
  process (the workers, children of multiprocessing's fork server, are not counted: each holds
  one file at a time);
- sample: ``corpus.prepare_data`` (opens the store, splits, picks pitches) and ``--batches``
  random batches of 100 windows drawn as the trainer draws them (``WindowBatches.draw``):
  windows per second, peak RSS, and at the end the resident memory split into anonymous
  (the process's own) and file-backed (pages of the memory-mapped store, which the kernel
  may drop at will);
- compare (``--compare``): in one process, the same random batches drawn from the store and
  from every window held in memory as one float32 tensor (as the trainer did before the
  store), each followed by a training step of the paper-2d model; runs alternate; medians.

    python3 scripts/make_corpus.py /tmp/bach --songs 10000 --out /tmp/corpus-10k
    python3 scripts/bench_store.py /tmp/corpus-10k --workers 2
    python3 scripts/bench_store.py /tmp/corpus-1k --compare
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path


def memory() -> dict[str, float]:
    """MB: peak resident (VmHWM), and now the anonymous and file-backed resident parts."""
    fields = {}
    for line in Path("/proc/self/status").read_text().splitlines():
        key, _, value = line.partition(":")
        if key in ("VmHWM", "RssAnon", "RssFile"):
            fields[key] = int(value.split()[0]) / 1024
    return fields


def build(corpus: Path, cache: Path, workers: int) -> dict:
    from vrae_live.config import load_config
    from vrae_live.data.corpus import store_songs

    timing = load_config(None).data.timing
    started = time.perf_counter()
    store = store_songs(corpus, timing, cache_dir=cache, workers=workers)
    seconds = time.perf_counter() - started
    return {"files": store.files, "songs": len(store), "frames": int(store.offsets[-1]),
            "store_mb": store.frames.nbytes / 1e6, "seconds": seconds, "files_per_s": store.files / seconds,
            "peak_mb": memory()["VmHWM"]}


def sample(corpus: Path, cache: Path, batches: int) -> dict:
    import numpy as np
    import torch

    from vrae_live.config import load_config
    from vrae_live.data.corpus import prepare_data
    from vrae_live.training.batches import WindowBatches

    config = load_config(None)
    before = memory()
    data = prepare_data(corpus, config.data, 0, 100, cache_dir=cache, workers=1)
    draw = WindowBatches(data.train.x, torch.device("cpu"))
    opened = memory()
    order = torch.randperm(len(draw), generator=torch.Generator().manual_seed(0))  # as _epoch_order does
    started = time.perf_counter()
    for indices in order[: batches * 100].split(100):
        x = draw.draw(indices)
    seconds = time.perf_counter() - started
    end = memory()
    return {"windows": len(draw), "pitches": len(data.pitches), "batches": batches,
            "windows_per_s": batches * 100 / seconds, "ms_per_batch": seconds / batches * 1e3,
            "rss_anon_after_imports_mb": before["RssAnon"], "rss_anon_store_open_mb": opened["RssAnon"],
            "rss_anon_end_mb": end["RssAnon"], "rss_file_end_mb": end["RssFile"], "peak_mb": end["VmHWM"],
            "in_memory_would_be_mb": len(draw) * draw.steps * len(data.pitches) * 4 / 1e6,
            "shape": list(x.shape), "density": float(np.mean(x.numpy()))}


def compare(corpus: Path, cache: Path, steps: int, repeats: int) -> dict:
    import numpy as np
    import torch

    from vrae_live.config import load_config, with_changes
    from vrae_live.data.corpus import prepare_data
    from vrae_live.training.batches import WindowBatches
    from vrae_live.training.trainer import Trainer

    torch.set_num_threads(1)
    config = with_changes(load_config("paper-2d"), train={"epochs": 1})
    data = prepare_data(corpus, config.data, 0, 100, cache_dir=cache, workers=1)
    sources = {"store": WindowBatches(data.train.x, torch.device("cpu")),
               "in_memory": WindowBatches(np.asarray(data.train.x), torch.device("cpu"))}
    with tempfile.TemporaryDirectory() as out:
        trainer = Trainer(config, data, out)
    order = torch.randperm(len(sources["store"]), generator=torch.Generator().manual_seed(0)).split(100)[:steps]
    draw_ms = {name: [] for name in sources}
    step_ms = {name: [] for name in sources}
    for _ in range(repeats):
        for name, source in sources.items():
            drawn = time.perf_counter()
            for indices in order:
                source.draw(indices)
            draw_ms[name].append((time.perf_counter() - drawn) / len(order) * 1e3)
            started = time.perf_counter()
            for indices in order:
                trainer._train_step(source.draw(indices))
            step_ms[name].append((time.perf_counter() - started) / len(order) * 1e3)
    median = {k: {n: statistics.median(v) for n, v in d.items()} for k, d in (("draw", draw_ms), ("step", step_ms))}
    return {"windows": len(sources["store"]), "steps": len(order), "repeats": repeats,
            "draw_ms": median["draw"], "step_ms": median["step"],
            "step_ratio": median["step"]["store"] / median["step"]["in_memory"],
            "draw_ratio": median["draw"]["store"] / median["draw"]["in_memory"]}


def run_phase(args, phase: str) -> dict:
    command = [sys.executable, __file__, str(args.corpus), "--phase", phase, "--cache", str(args.cache),
               "--workers", str(args.workers), "--batches", str(args.batches), "--steps", str(args.steps),
               "--repeats", str(args.repeats)]
    done = subprocess.run(command, capture_output=True, text=True)
    if done.returncode:
        sys.stderr.write(done.stderr)
        raise SystemExit(f"phase {phase} failed")
    return json.loads(done.stdout.strip().splitlines()[-1])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("corpus", type=Path)
    parser.add_argument("--workers", type=int, default=os.cpu_count())
    parser.add_argument("--batches", type=int, default=500, help="batches of 100 drawn in the sample phase")
    parser.add_argument("--compare", action="store_true", help="also time store against in-memory batches")
    parser.add_argument("--steps", type=int, default=30, help="training steps a run in the compare phase")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--cache", type=Path, help="the cache to build in [default: a new temporary folder]")
    parser.add_argument("--phase", choices=["build", "sample", "compare"], help=argparse.SUPPRESS)
    args = parser.parse_args(argv)

    if args.phase:
        figures = {"build": lambda: build(args.corpus, args.cache, args.workers),
                   "sample": lambda: sample(args.corpus, args.cache, args.batches),
                   "compare": lambda: compare(args.corpus, args.cache, args.steps, args.repeats)}[args.phase]()
        print(json.dumps(figures))
        return 0

    from vrae_live.machine import cpu_model

    print(f"machine: {cpu_model()}, {os.cpu_count()} cores, load {os.getloadavg()[0]:.2f}; python "
          f"{sys.version.split()[0]}")
    with tempfile.TemporaryDirectory() as tmp:
        args.cache = args.cache or Path(tmp)
        b = run_phase(args, "build")
        print(f"build: {b['files']} files -> {b['songs']} songs, {b['frames']:,} frames, store {b['store_mb']:.0f} MB; "
              f"{b['seconds']:.1f} s, {b['files_per_s']:.0f} files/s with {args.workers} worker(s); peak RSS "
              f"{b['peak_mb']:.0f} MB (this process; a worker holds one file at a time)")
        s = run_phase(args, "sample")
        print(f"sample: {s['windows']:,} training windows ({s['pitches']} pitches; held as float32 they would be "
              f"{s['in_memory_would_be_mb']:,.0f} MB); {s['windows_per_s']:,.0f} windows/s, "
              f"{s['ms_per_batch']:.2f} ms a batch of 100; RSS anon {s['rss_anon_after_imports_mb']:.0f} MB after "
              f"imports, {s['rss_anon_store_open_mb']:.0f} MB with the store open, {s['rss_anon_end_mb']:.0f} MB after "
              f"{s['batches']} batches; file-backed RSS (libraries, store pages) {s['rss_file_end_mb']:.0f} MB; "
              f"peak RSS {s['peak_mb']:.0f} MB")
        if args.compare:
            c = run_phase(args, "compare")
            print(f"compare ({c['windows']:,} windows, {c['steps']} paper-2d steps, 1 thread, {c['repeats']} runs each): "
                  f"draw {c['draw_ms']['store']:.3f} ms store vs {c['draw_ms']['in_memory']:.3f} ms in memory; "
                  f"draw+step {c['step_ms']['store']:.1f} ms vs {c['step_ms']['in_memory']:.1f} ms")
            print(f"ratio = {c['step_ratio']:.3f} (training step with a batch from the store / from memory)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
