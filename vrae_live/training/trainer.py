"""Training: SGVB on windows of piano roll, with metrics, the best checkpoint, and resume.

The objective is the negative ELBO in nats per sequence (DESIGN.md): BCE-with-logits
summed over time and pitch, plus the analytic KL summed over latent units. Two standard
guards against posterior collapse shape the *training* objective only (figures are always
reported with the plain ELBO):

- KL annealing (Bowman et al. 2016; cyclical, Fu et al. 2019): the KL weight rises from 0 to 1
  over the first ``kl_anneal_steps`` (``schedule.py``);
- free bits (Kingma et al. 2016): each latent unit's batch-mean KL counts as at least
  ``free_bits`` nats, so the optimiser gains nothing from shrinking it further.

Optionally (``encoder_steps``), the encoder catches up alone before each step of the first
quarter of the run (He et al. 2019; ``aggressive.py``).

The learning rate is held while the validation bound improves and lowered on a plateau, and
the run stops once it has converged (``schedule.py``); the epoch kept is the best one.

Everything random comes from generators seeded by the config (the init, each epoch's
shuffle, the reparametrisation noise), and the schedules' state is saved with the progress,
so a run stopped with Ctrl-C and resumed ends exactly where an uninterrupted run would.
"""

from __future__ import annotations

import math
import sys
import time
from pathlib import Path
from typing import Any, Callable

import torch

from ..checkpoint import Checkpoint, load_checkpoint, load_optimizer_state, read_config, save_checkpoint
from ..config import Config
from ..data.corpus import TrainingData
from ..errors import CheckpointError, ConfigError, TrainingError
from ..models import model_for
from ..models.keys import songs_key
from ..pad import latent_plane
from ..songmap import map_of_windows
from .aggressive import EncoderCatchUp
from .axes import AxesLoss
from .batches import MeasuredWindows, Transposer, WindowBatches
from .distributed import World
from .evaluation import active_units, copy_bound, evaluate, settled_means
from .objective import training_loss
from .precision import autocast
from .progress import Progress, row_score
from .run import RESUME_DIR, append_metrics, format_row, keep_metrics_until, run_summary
from .schedule import Plateau, exponential_rate, first_full_weight, kl_weight
from .signals import StopOnSignals

# A step whose loss or gradient norm is not finite is skipped (one bad batch need not end a
# run); this many in a row means training has diverged, and it stops before saving anything.
MAX_SKIPS_IN_A_ROW = 5

# A row of figures (metrics.jsonl) about every MEASURE_STEPS steps, a pad check about every
# PAD_CHECK_STEPS, at least RUN_ROWS rows in a short run: measuring every epoch of a small corpus
# cost a fifth of the run (30 chorales, 5 steps an epoch).
MEASURE_STEPS = 20
PAD_CHECK_STEPS = 100
RUN_ROWS = 40


class Trainer:
    """Trains the model of ``config`` on ``data`` and writes the run directory ``out_dir``:

    ``out_dir`` itself is the best checkpoint on validation (what ``serve`` plays),
    ``out_dir/resume`` the latest resumable state, ``out_dir/metrics.jsonl`` one line per epoch.
    """

    def __init__(
        self,
        config: Config,
        data: TrainingData,
        out_dir: str | Path,
        device: str | torch.device = "cpu",
        show_progress: bool = False,
        echo: Callable[[str], None] = lambda line: None,
        on_step: Callable[["Trainer"], None] | None = None,
        pad_check: Callable[[Checkpoint, list[float]], dict[str, Any]] | None = None,
        world: World | None = None,
    ):
        """``pad_check``: quick steering and seam figures of a checkpoint, taken at every epoch's
        end (``measure.pad_check.quick_pad_check``), given the earlier checks' figures along the pad's
        weakest direction; with it the kept epoch is one whose pad steers.
        ``world``: this process's place under torchrun (``distributed.join_world``), whose device
        replaces ``device``; without it, one process."""
        self.config = config
        self.data = data
        self.out_dir = Path(out_dir)
        self.world = world if world is not None else World(device=torch.device(device))
        self.device = self.world.device
        self.show_progress = show_progress
        self.echo = echo
        self.on_step = on_step
        self.pad_check = pad_check
        self.stop_requested = False
        self.progress = Progress()
        torch.manual_seed(config.train.seed)
        self.model = model_for(config, data.pitches).to(self.device)
        self.ddp = self.world.ddp(self.model)  # under torchrun: the model's loss_terms, wrapped
        self.autocast = lambda: autocast(config.train.precision, self.device)
        t = config.train
        # The fused kernel updates every parameter in one pass: on the CPU a paper-2d step
        # takes 0.3 ms instead of 2.6 (docs/benchmarks.md).
        fused = self.device.type in ("cpu", "cuda")
        self.optimizer = torch.optim.Adam(self.model.parameters(), lr=t.lr, betas=(t.beta1, t.beta2), fused=fused,
                                          weight_decay=t.weight_decay, decoupled_weight_decay=True)
        self.noise = self.world.noise_generator(t.seed)
        # Batches are drawn from the roll store (or memory) by index; figures on a bounded subsample.
        self.batches = WindowBatches(data.train.x, self.device)
        columns = config.data.columns(len(data.pitches))  # of the frames; the meter after them is not moved
        self.transposer = Transposer(list(data.pitches), t.transpose, self.device, columns) if t.transpose else None
        self.axes = AxesLoss(config, data.pitches, self.world.distributed) if config.model.pad_axes else None
        self.measured_train = MeasuredWindows(data.train, config.data.hop, self.device)
        self.measured_val = (MeasuredWindows(data.val, config.data.hop, self.device)
                             if data.val is not None and len(data.val.x) else None)
        self.copy_bound = copy_bound(  # the figure to beat: copying the last frame, where the bound is measured
            self.measured_train.x[..., :columns], (self.measured_val or self.measured_train).x[..., :columns],
            len(data.pitches))
        self.songs_key = songs_key(self.measured_train.x, data.pitches)  # what a decoder told the key plays in live
        # Under torchrun a last batch too small to share among the processes is left out (World.min_batch).
        self.min_batch = self.world.min_batch(self.model)
        full, last = divmod(len(self.batches), t.batch_size)
        self.steps_per_epoch = full + (last >= self.min_batch)
        def every(steps: int, of: int = 1) -> int:  # a multiple of ``of`` epochs near ``steps`` steps
            return of * max(1, min(round(steps / (self.steps_per_epoch * of)), math.ceil(config.train.epochs / RUN_ROWS / of)))
        self.measure_every = every(MEASURE_STEPS)
        self.pad_check_every = every(PAD_CHECK_STEPS, of=self.measure_every)
        if self.steps_per_epoch == 0 or t.batch_size < self.min_batch:
            raise ConfigError(
                f"batches of {min(t.batch_size, len(self.batches))} windows cannot be shared among "
                f"{self.world.size} processes: each needs {self.min_batch // self.world.size} window(s) of every batch; "
                f"use fewer processes or a larger --batch-size (there are {len(self.batches)} training windows)"
            )
        # Aggressive training of the encoder (aggressive.py): its steps alone, early in the run.
        self.catch_up = (EncoderCatchUp(self.model, t.encoder_steps, self.total_steps, t.clip_grad_norm,
                                        lr=t.lr, betas=(t.beta1, t.beta2), fused=fused)
                         if t.encoder_steps else None)

    # -- schedules (functions of the global step, so resuming needs no extra state) --

    @property
    def total_steps(self) -> int:
        return self.config.train.epochs * self.steps_per_epoch

    def learning_rate(self, step: int) -> float:
        t = self.config.train
        if t.schedule == "exponential":
            return exponential_rate(t, step, self.total_steps)
        return Plateau(**self.progress.plateau).rate(t)

    def kl_weight(self, step: int) -> float:
        return kl_weight(self.config.train, step)

    def annealed(self, full_once: bool = False) -> bool:
        """Whether the KL weight has settled at 1, or (``full_once``) reached it once: when the run may
        stop, and keep an epoch. In a run shorter than its annealing, always."""
        t = self.config.train
        return t.kl_anneal_steps >= self.total_steps or self.progress.global_step >= first_full_weight(t, full_once)

    # -- resume ------------------------------------------------------------------

    def request_stop(self) -> None:
        """Finish the current batch, save a resumable checkpoint, and return."""
        self.stop_requested = True

    def resume(self) -> None:
        directory = self.out_dir / RESUME_DIR
        saved = read_config(directory)
        if saved["pitches"] != list(self.data.pitches):
            raise CheckpointError(
                f"{directory}: the songs give other pitches than the run being resumed; resume with the same folder"
            )
        self.model.load_state_dict(load_checkpoint(directory, self.device).model.state_dict())
        state = load_optimizer_state(directory)
        self.optimizer.load_state_dict(state["optimizer"])
        noise = state.get("noise_ranks", [state["noise"]])  # one per process of the run saved
        if self.world.rank < len(noise):
            self.noise.set_state(noise[self.world.rank])
        if len(noise) != self.world.size and self.world.is_main:
            self.echo(f"resuming with {self.world.size} process(es) a run saved by {len(noise)}: the noise "
                      "streams are not the ones an uninterrupted run would have drawn")
        self.progress = Progress(**state["progress"])
        if self.world.is_main:
            keep_metrics_until(self.out_dir, self.progress.epoch)
        else:  # the sums saved are every process's so far: rank 0 carries them
            self.progress.sums = {"rec": 0.0, "kl": 0.0, "n": 0.0}

    def _check_weights_are_finite(self) -> None:
        """Called before every save: a checkpoint of nan or inf weights would only play silence."""
        if not all(torch.isfinite(w).all() for w in self.model.state_dict().values()):
            p = self.progress
            raise TrainingError(
                f"the weights are no longer finite numbers at epoch {p.epoch + 1}, step {p.step_in_epoch}; "
                f"nothing was saved over the last good checkpoint; try a lower --lr (this run's is "
                f"{self.config.train.lr:g})"
            )

    def _save_resumable(self, interrupted: bool = False) -> None:
        """Every process calls it; rank 0 writes, with each process's noise state."""
        self._check_weights_are_finite()
        noise = self.world.gather(self.noise.get_state())
        if self.world.is_main:
            state = {
                "optimizer": self.optimizer.state_dict(),
                "noise": noise[0],
                "progress": self.progress.to_state(),
            }
            if self.world.distributed:
                state["noise_ranks"] = noise
            save_checkpoint(
                self.out_dir / RESUME_DIR, self.model, self.config, self.data.pitches,
                {"training": self.summary(interrupted)}, state,
            )
        self.world.barrier()

    def _sum_over_processes(self) -> float:
        """The running sums of every process's shares, carried by rank 0 (the others' start again
        from 0, as on resume); returns how many windows they count, on every process."""
        p = self.progress
        if not self.world.distributed:
            return p.sums["n"]
        names = sorted(p.sums)
        total = dict(zip(names, self.world.all_sum(
            torch.tensor([p.sums[k] for k in names], dtype=torch.float64, device=self.device)).tolist()))
        p.sums = total if self.world.is_main else {k: 0.0 for k in names}
        return total["n"]

    # -- the loop --------------------------------------------------------------

    def _epoch_order(self, epoch: int) -> list[torch.Tensor]:
        """The epoch's global batches of window indices (``self.batches.draw`` reads them): a shuffle
        of every training window by the seed and epoch, the same on every process."""
        g = torch.Generator().manual_seed(self.config.train.seed * 1_000_003 + epoch)
        batches = torch.randperm(len(self.batches), generator=g).split(self.config.train.batch_size)
        return [b for b in batches if len(b) >= self.min_batch]

    def _loss(self, batch: torch.Tensor, n: int):
        """The terms, training loss and figure of this process's share ``batch`` of ``n`` windows (``training_loss``)."""
        with self.autocast():
            loss_terms = self.model.loss_terms if self.ddp is None else self.ddp
            t = self.config.train
            own = {"own_frames": t.own_frames} if t.own_frames > 0 else {}  # a VRAE's alone
            terms = loss_terms(batch, self.noise, t.input_dropout, **own)
            axes = self.axes(terms.z, batch, self.world, self.model) if self.axes is not None else None
        return (terms, *training_loss(terms, n, self.kl_weight(self.progress.global_step), t.free_bits,
                                      self.config.model.bag_of_notes, self.world, axes))

    def _random_batch(self, generator: torch.Generator, n: int) -> torch.Tensor:
        """This process's share of ``n`` training windows drawn at random (the same on every process)."""
        return self.batches.draw(self.world.shard(torch.randperm(len(self.batches), generator=generator)[:n]))

    def _train_step(self, batch: torch.Tensor, n: int | None = None) -> None:
        """One optimizer step on ``batch (b, W, P)``, this process's share of a global batch of
        ``n`` windows (``b`` in one process)."""
        t, p = self.config.train, self.progress
        lr = self.learning_rate(p.global_step)
        for group in self.optimizer.param_groups:
            group["lr"] = lr
        n = n or len(batch)
        if self.catch_up is not None and self.catch_up.active(p.global_step):
            self.catch_up.run(lambda g: self._loss(self._random_batch(g, n), n)[1:], lr,
                              torch.Generator().manual_seed((t.seed << 32) + p.global_step))
        if self.transposer is not None:  # the global batch's draws, this process's share of them
            draws = self.transposer.draws(n, torch.Generator().manual_seed((t.seed << 33) + 2 * p.global_step + 1))
            batch = self.transposer(batch, self.world.shard(draws))
        # The forward pass updates batch norm's running statistics; a skipped step puts them back.
        buffers = [b.clone() for b in self.model.buffers()]
        terms, loss, whole = self._loss(batch, n)
        self.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        grad_norm = torch.nn.utils.clip_grad_norm_(self.model.parameters(), t.clip_grad_norm)
        if torch.isfinite(whole + grad_norm).item():  # one sync for both
            self.optimizer.step()
            p.sums["rec"] += terms.rec.float().sum().item()
            p.sums["kl"] += terms.kl.float().sum().item()
            p.sums["n"] += len(batch)
            p.skips_in_a_row = 0
        else:
            for buffer, before in zip(self.model.buffers(), buffers):
                buffer.copy_(before)
            p.skipped_in_epoch += 1
            p.skips_in_a_row += 1
            if p.skips_in_a_row >= MAX_SKIPS_IN_A_ROW:
                raise TrainingError(
                    f"training diverged at epoch {p.epoch + 1}, step {p.step_in_epoch + 1}: the loss or its gradient "
                    f"was not finite {p.skips_in_a_row} steps in a row; nothing was saved over the last good "
                    f"checkpoint; try a lower --lr (this run's is {t.lr:g})"
                )
        p.global_step += 1
        p.step_in_epoch += 1

    def fit(self) -> dict[str, Any]:
        """Train until converged, the epochs are done or a stop is requested; the summary says which."""
        with StopOnSignals(self):
            return self._fit()

    def _fit(self) -> dict[str, Any]:
        from tqdm.auto import tqdm

        self.model.train()
        t, p = self.config.train, self.progress
        self.out_dir.mkdir(parents=True, exist_ok=True)
        steps_in_window = self.batches.steps
        # The bar redraws itself with carriage returns: only for a terminal. A pipe or a log file
        # gets the epoch lines alone, one line per epoch.
        show_bar = self.show_progress and sys.stderr.isatty()
        while p.epoch < t.epochs and not p.plateau["converged"]:
            started = time.perf_counter()
            batches = self._epoch_order(p.epoch)
            bar = tqdm(
                total=len(batches), initial=p.step_in_epoch, desc=f"epoch {p.epoch + 1}/{t.epochs}",
                unit="batch", leave=False, disable=not show_bar, dynamic_ncols=True,
            )
            with bar:
                for indices in batches[p.step_in_epoch:]:
                    self._train_step(self.batches.draw(self.world.shard(indices)), len(indices))
                    n = p.sums["n"]
                    if n:  # 0 while every step of the epoch has been skipped
                        bound = -(p.sums["rec"] + p.sums["kl"]) / n / steps_in_window
                        bar.set_postfix(bound=f"{bound:.4f}", kl=f"{p.sums['kl'] / n:.2f}", refresh=False)
                    bar.update()
                    if self.on_step is not None:
                        self.on_step(self)
                    if self._stop_agreed():
                        p.seconds += time.perf_counter() - started
                        self._sum_over_processes()
                        self._save_resumable(interrupted=True)
                        return self.summary(interrupted=True)
            p.seconds += time.perf_counter() - started
            self._end_epoch(time.perf_counter() - started)
        return self.summary(interrupted=False)

    def _stop_agreed(self) -> bool:
        """Whether a stop was asked for, here or (under torchrun) in any process: all stop after the same step."""
        if not self.world.distributed:
            return self.stop_requested
        return self.world.all_sum(torch.tensor([float(self.stop_requested)], device=self.device)).item() > 0

    def _end_epoch(self, train_seconds: float) -> None:
        """Every process calls it; at every ``measure_every``-th epoch and the last, rank 0 alone
        measures, writes and prints (the others wait in ``_save_resumable``)."""
        p = self.progress
        p.row_steps += p.step_in_epoch
        p.row_seconds += train_seconds
        n = self._sum_over_processes()
        if (p.epoch + 1) % self.measure_every and p.epoch + 1 < self.config.train.epochs:
            # Saved with the measured epochs alone (and at a stop): every epoch, a run of 8 songs, an epoch a
            # step, spent a tenth of its time writing its resumable state.
            p.epoch += 1
            p.step_in_epoch = 0
            return
        if n == 0:  # every step since the last row was skipped: nothing was learnt, nothing to report
            raise TrainingError(
                f"training diverged by epoch {p.epoch + 1}: the loss or its gradient was not finite at any of its "
                f"last {p.skipped_in_epoch} steps; try a lower --lr (this run's is {self.config.train.lr:g})"
            )
        self._check_weights_are_finite()  # before the epoch's row is written, too
        # Every process sets mu's normalisation to the statistics of the same training windows
        # (the running averages lag the encoder); the means are what rank 0 measures.
        means = settled_means(self.model, self.measured_train.x)
        self.world.broadcast_buffers(self.model)  # the same already; rank 0's makes sure of it
        improved, score = False, 0.0
        if self.world.is_main:
            plane = self._plane(self.model, means)
            row = self._epoch_row(means, p.row_seconds)
            epoch = self.progress.epoch + 1
            if epoch % self.pad_check_every == 0 or epoch == self.config.train.epochs:
                row.update(self._check_pad(plane))
            append_metrics(self.out_dir, row)
            improved = self.annealed(full_once=True) and self.progress.keeps(row, self.pad_check is not None)
            self.echo(format_row(row, self.config.train.epochs, improved))
            score = row_score(row)
        if self.world.distributed:  # every process follows rank 0's figure, so all stop together
            score = self.world.all_sum(torch.tensor([score], dtype=torch.float64, device=self.device)).item()
        self._follow_plateau(score)
        p.epoch += 1
        p.step_in_epoch = p.row_steps = 0
        p.row_seconds = 0.0
        p.sums = {"rec": 0.0, "kl": 0.0, "n": 0.0}
        p.skipped_in_epoch = 0
        if improved:
            self._save_best(plane, means)
        self._save_resumable()

    def _follow_plateau(self, bound: float) -> None:
        """The plateau schedule takes the epoch's validation bound (else the training one): the rate may drop, or the run end."""
        t, p = self.config.train, self.progress
        if t.schedule != "plateau":
            return
        plateau = Plateau(**p.plateau)
        change = plateau.after_epoch(t, bound, p.row_steps, may_stop=self.annealed())
        p.plateau = plateau.state()
        if change == "drop":
            self.echo(f"no better bound for {t.patience} steps: learning rate {plateau.rate(t):.2e}")
        elif change == "converged":
            self.echo(f"no better bound for {t.patience} steps at the lowest rate: converged after "
                      f"{p.global_step} steps")

    def _epoch_row(self, means: torch.Tensor, train_seconds: float) -> dict[str, Any]:
        """The epoch's line of metrics.jsonl: training figures since the last row, validation figures at its end."""
        p = self.progress
        steps = self.batches.steps
        train = {"rec": p.sums["rec"] / p.sums["n"], "kl": p.sums["kl"] / p.sums["n"]}
        train["bound"] = -(train["rec"] + train["kl"]) / steps
        val = (evaluate(self.model, self.measured_val.x, seed=self.config.train.seed)
               if self.measured_val is not None else None)
        return {
            "epoch": p.epoch + 1,
            "train_bound": train["bound"],
            "train_rec": train["rec"],
            "train_kl": train["kl"],
            "val_bound": val["bound"] if val else None,
            "val_rec": val["rec"] if val else None,
            "val_kl": val["kl"] if val else None,
            "active_units": active_units(means),
            "latent": self.config.model.latent,
            "lr": self.learning_rate(p.global_step - 1),
            "kl_weight": self.kl_weight(p.global_step - 1),
            "skipped_steps": p.skipped_in_epoch,
            "seconds": round(train_seconds, 3),
        }

    def _check_pad(self, plane: dict[str, Any]) -> dict[str, Any]:
        """The quick steering and seam figures of the model as it stands (none without a ``pad_check``)."""
        if self.pad_check is None:
            return {}
        started = time.perf_counter()
        was_training = self.model.training
        try:
            # played as serve will play it: in the songs' bar, notes at once and key (for a decoder told the key)
            songs = {"bar_quarters": self.data.bar_quarters, "polyphony": self.data.polyphony, "key": self.songs_key}
            meta = {"latent_plane": plane, "training": songs}
            figures = self.pad_check(Checkpoint(self.model, self.config, list(self.data.pitches), meta),
                                     self.progress.checked_weakest)
        finally:
            self.model.train(was_training)
        self.progress.checked_weakest.append(figures["steering_weaker"])
        return {**figures, "pad_check_seconds": round(time.perf_counter() - started, 3)}

    def _save_best(self, plane: dict[str, Any], means: torch.Tensor) -> None:
        """The run directory's top: the weights, the pad's plane fitted to the songs' codes, and the
        map of the training windows on it (``means``: their codes, as encoded for the plane)."""
        self._check_weights_are_finite()
        self._save_top(self.model, plane, means, self.summary(interrupted=False))

    def _save_top(self, model: torch.nn.Module, plane: dict[str, Any], means: torch.Tensor,
                  training: dict[str, Any]) -> None:
        measured = self.measured_train
        window_map = map_of_windows(lambda keep: means[keep].double().numpy(), measured.array, measured.song,
                                    self.data.train.song_names, self.data.pitches, plane, self.config.data,
                                    starts=measured.starts)
        meta = {"training": training, "latent_plane": plane, "window_map": window_map}
        save_checkpoint(self.out_dir, model, self.config, self.data.pitches, meta)

    def level_pad(self, level: Callable[[Checkpoint], Any]) -> Any:
        """The kept checkpoint's pad of named axes, levelled by what its decoder plays: ``level(checkpoint)``
        (``measure.axes.level_lean``) says how far x leans on y's unit, and the pad's plane and the map
        of the windows on it are fitted again with that lean. Returns what ``level`` said; None for a
        run with no kept epoch or no named axes."""
        if not self.config.model.pad_axes or self.progress.best_epoch <= 0:
            return None
        kept = load_checkpoint(self.out_dir, self.device)
        levelling = level(kept)
        if levelling is None or levelling.lean == kept.plane.axes[0][1]:
            return levelling
        means = settled_means(kept.model, self.measured_train.x)  # the codes the kept plane was fitted to
        self._save_top(kept.model, self._plane(kept.model, means, levelling.lean), means, kept.training)
        return levelling

    def _plane(self, model: torch.nn.Module, means: torch.Tensor, lean: float = 0.0) -> dict[str, Any]:
        """The pad's plane fitted to ``means``, the codes of the measured training windows (``pad.latent_plane``)."""
        return latent_plane(means.numpy(), self.measured_train.song, self.data.train.song_names,
                            getattr(model, "pad_min_extent", 0.0), self.config.model.pad_axes, lean)

    def summary(self, interrupted: bool) -> dict[str, Any]:
        return run_summary(self, interrupted)
