"""decode: ``Stream.next_frame`` (one voice) per frame against the frame period, and a whole hop
against a plain ``nn.RNNCell`` loop (scripts/bench_live.py says what is measured)."""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import torch

from vrae_live.checkpoint import load_checkpoint
from vrae_live.play.stream import live_stream

from .common import percentiles


class PlainDecoder:
    """The reference: a hop decoded by the first loop any PyTorch user would write.

    The model's own weights in an ``nn.RNNCell``: h_0 from z, the context teacher-forced a
    frame at a time, then free steps each fed its own output thresholded at 0.5, the
    probabilities stacked and handed to numpy once at the end. No note gate (hysteresis,
    polyphony, note lengths), no cross-fade, no per-frame hand-over to numpy: what the
    project does beyond that is what the ratio prices. For the paper's tanh VRAE.
    """

    def __init__(self, model: torch.nn.Module):
        rnn = model.decoder
        self.cell = torch.nn.RNNCell(rnn.input_size, rnn.hidden_size).to(rnn.weight_hh_l0.device)
        with torch.no_grad():
            for name in ("weight_ih", "weight_hh", "bias_ih", "bias_hh"):
                getattr(self.cell, name).copy_(getattr(rnn, f"{name}_l0"))
        self.to_h0, self.to_logits = model.to_h0, model.to_logits

    @torch.inference_mode()
    def hop(self, z: torch.Tensor, context: torch.Tensor, steps: int) -> np.ndarray:
        h = torch.tanh(self.to_h0(z))
        for frame in context.unbind(1):
            h = self.cell(frame, h)
        probs = []
        for _ in range(steps):
            p = torch.sigmoid(self.to_logits(h))
            probs.append(p)
            h = self.cell((p > 0.5).float(), h)
        return torch.cat(probs).cpu().numpy()


def bench_decode(ckpt_dir: Path, device: torch.device, hops: int) -> dict:
    """Seconds per ``next_frame`` call, each frame's kind of join, and seconds per plain reference
    hop, hop by hop in turn, over ``hops`` hops (after two untimed ones of each)."""
    ckpt = load_checkpoint(ckpt_dir, device)
    stream = live_stream(ckpt, None)
    hop = stream.hop
    paper_vrae = ckpt.config.model.cell == "rnn" and not ckpt.config.model.z_every_step
    plain = PlainDecoder(ckpt.model) if paper_vrae else None  # the reference is the paper's decoder
    rng = np.random.default_rng(0)
    context = torch.as_tensor(rng.random((1, stream.context, ckpt.model.n_columns)) < 0.1,
                              dtype=torch.float32, device=device)
    times, joins, hop_times, reference = [], [], [], []
    for i in range(hops + 2):
        z = rng.standard_normal(ckpt.config.model.latent)
        started = time.perf_counter()
        for k in range(hop):
            if k == hop // 2 and k:  # the pad jumps mid-hop too: a paper preset re-anchors its window
                z = rng.standard_normal(ckpt.config.model.latent)
            before = time.perf_counter()
            decoded = stream.next_frame(z)  # returns numpy arrays, so a GPU decode is finished when it returns
            if i >= 2:  # the first calls allocate and pick kernels
                times.append(time.perf_counter() - before)
                joins.append(decoded.join)
        middle = time.perf_counter()
        if plain is not None:
            plain.hop(torch.as_tensor(z, dtype=torch.float32, device=device)[None], context, hop + stream.blend)
        if i >= 2:
            hop_times.append(middle - started)
            reference.append(time.perf_counter() - middle)
    return {"hop": hop, "window": ckpt.config.data.window, "blend": stream.blend,
            "period_s": ckpt.timing.frame_seconds(), "times": times, "joins": joins, "hop_times": hop_times,
            "reference": reference if plain is not None else None}


def report_decode(preset: str, device: torch.device, r: dict) -> None:
    times, joins = np.asarray(r["times"]), np.asarray(r["joins"], dtype=object)
    p50, p99 = percentiles(times)
    period = r["period_s"]
    print(f"decode {preset} on {device}: window {r['window']}, hop {r['hop']} frames, frame period "
          f"{1000 * period:.0f} ms; per frame: p50 = {1e6 * p50:.0f} us, p99 = {1000 * p99:.2f} ms, "
          f"max = {1000 * times.max():.2f} ms ({len(times)} frames)")
    for kind, label in (("hop", "beginning a window on the hop grid (context + look-past)"),
                        ("move", "re-anchored mid-hop by the pad (z only in h_0)")):
        chosen = times[joins == kind]
        if len(chosen):
            k50, k99 = percentiles(chosen)
            print(f"  frames {label}: {len(chosen)}, p50 = {1000 * k50:.2f} ms, p99 = {1000 * k99:.2f} ms, "
                  f"max = {1000 * chosen.max():.2f} ms")
    inside = times[joins == None]  # noqa: E711 (elementwise)
    print(f"  other frames (one step): p50 = {1e6 * np.median(inside):.0f} us, p99 = {1000 * np.percentile(inside, 99):.2f} ms")
    h50, _ = percentiles(r["hop_times"])
    if r["reference"] is not None:
        ref50, ref99 = percentiles(r["reference"])
        print(f"  a whole hop of frames: p50 = {1000 * h50:.1f} ms; plain reference hop (an nn.RNNCell loop, no note "
              f"gate, no re-anchor): p50 = {1000 * ref50:.1f} ms, p99 = {1000 * ref99:.1f} ms; ratio = {h50 / ref50:.2f} "
              f"(project / reference, medians)")
    quarter = period / 4
    print(f"  goal p99 < a quarter frame period ({1000 * quarter:.1f} ms): {'met' if p99 < quarter else 'NOT met'}; "
          f"every frame < one frame period ({1000 * period:.0f} ms, else the next tick is late): "
          f"{'met' if times.max() < period else 'NOT met'}")


def run(ckpts: dict[str, Path], devices: list[torch.device], hops: int,
        compare: tuple[str, ...] | None = None) -> None:
    """Each model's figures; with ``compare`` (a reference and others), each other's median frame
    against the reference's, on each device."""
    medians = {}
    for preset in ckpts:
        for device in devices:
            result = bench_decode(ckpts[preset], device, hops)
            report_decode(preset, device, result)
            medians[preset, device] = float(np.median(result["times"]))
    for device in devices if compare else ():
        reference, *others = compare
        for other in others:
            ratio = medians[other, device] / medians[reference, device]
            print(f"  {other} against {reference} on {device}: median frame x{ratio:.2f}")
