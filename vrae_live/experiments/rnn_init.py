"""Does a trained VRAE make a good start for a supervised RNN? The paper's claim, measured.

Fabius & van Amersfoort (2014) name as a contribution that a VRAE trained on unlabelled
sequences "can facilitate supervised training of RNNs by initialising the weights and network
state", with no figure. Here two supervised tasks on windows ``(N, W, P)`` of real music, the
songs (never windows) split between training and test, each learnt by the same RNN from two
starts with the same budget (steps, batches, optimiser, labelled windows):

- **composer classification**: an RNN reads the window (reversed when the VRAE's encoder
  reads it reversed) and a linear layer maps its last state to one logit per composer.
  *From the VRAE*: the encoder's ``W_in, W_enc, b_enc``. The head is new, the same draw for
  both starts. The state starts at zero in both, as in the VRAE's encoder.
- **next-frame prediction**: :class:`~vrae_live.models.rnn.RNN`, the VRAE's decoder without z,
  teacher-forced, scored by the held-out negative log-likelihood per frame. *From the VRAE*:
  the decoder's ``W_x, W_dec, b_dec, W_out, b_out``, and the paper's network state:
  ``h_0 = tanh(W_z z_bar + b_z)`` with ``z_bar`` the mean code of the training windows
  (a random RNN starts from ``h_0 = tanh(0) = 0``, "in general, the network states are
  initialised at zero"). ``h_0`` stays trainable in both.

The labelled windows are a share (1 %, 10 %, 100 %) of the training windows, drawn per class
(at least one a class) by the run's seed; the VRAE pretrains, unlabelled, on all training
windows and never on a validation or test song, one VRAE per seed. Validation pieces, trained on
by nothing, choose the step early stopping keeps; the test pieces give every reported figure.
``predict_long`` trains the predictor on all the labels for ``long_steps``, to see whether a
random start catches up with more steps. Everything random (the split, the share, the inits,
the batches, the VRAE) comes from seeds, so a run repeats.
"""

from __future__ import annotations

import math
import re
import shutil
import time
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any, Callable, Sequence

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from ..config import DataConfig, ModelConfig, load_config, with_changes
from ..data.corpus import Song, TrainingData, WindowSet, windows_for
from ..data.pianoroll import select_pitches
from ..measure.analysis import group_of
from ..models import RNN, VRAE
from ..training.evaluation import EVAL_BATCH, active_units, encode_means, evaluate
from ..training.run import METRICS_FILE
from ..training.trainer import Trainer
from .rnn_init_models import (
    WindowClassifier,
    classifier_for,
    init_classifier_from_vrae,
    init_predictor_from_vrae,
    predictor_for,
)
from .rnn_init_results import INITS, SCORED, early_stopped, summarise

VRAE_PRESET = "paper-20d"  # the VRAE's recipe (lr schedule, KL warm-up, free bits, batch-normalised mu)


@dataclass(frozen=True)
class StudySettings:
    """The study's sizes; the defaults run the whole study in about half an hour on 2 CPU cores."""

    fs: float = 20.0  # frames per second, the paper's
    window: int = 40  # steps per window (2 s), the paper's 20-D model
    hop: int = 20  # half-overlapping windows, the paper's 20-D model
    max_windows_per_song: int = 40  # the first this many of each song, so long pieces do not dominate
    test_fraction: float = 0.25  # share of each composer's pieces held out for test
    val_fraction: float = 0.15  # share of each composer's pieces held out of training to choose the step (early stopping)
    split_seed: int = 0
    hidden: int = 128  # of the VRAE and of both supervised RNNs
    latent: int = 20
    cell: str = "rnn"  # the paper's tanh RNN
    vrae_steps: int = 1500  # unsupervised pretraining steps (rounded up to whole epochs)
    vrae_batch: int = 100
    steps: int = 800  # supervised steps per run, the same for both inits
    batch: int = 64
    lr: float = 1e-3
    eval_every: int = 50  # steps between two points of a learning curve
    clip_grad_norm: float = 5.0
    fractions: tuple[float, ...] = (0.01, 0.1, 1.0)
    long_steps: int = 3200  # predict_long's budget, all labels (0: not run)
    seeds: tuple[int, ...] = (0, 1, 2)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @property
    def data(self) -> DataConfig:
        return DataConfig(fs=self.fs, window=self.window, hop=self.hop,
                          max_windows_per_song=self.max_windows_per_song, val_fraction=0.0)


# -- data: songs to labelled windows, split by song ---------------------------------


@dataclass
class StudyData:
    train: WindowSet
    val: WindowSet  # pieces of neither: to choose the step to stop at, never trained on
    test: WindowSet
    y_train: np.ndarray  # (N_train,) class index of each training window
    y_val: np.ndarray  # (N_val,)
    y_test: np.ndarray  # (N_test,)
    classes: list[str]  # composer (top folder) of each class index
    pitches: list[int]


# music21 holds some pieces twice: an older edition (madrigal.3.1_old) or two versions of one
# movement (PMFC_12_10a, 10b). Both go to the same side of the split, or a test song would be
# nearly a training song.
_VARIANT = re.compile(r"_old$|(?<=\d)[a-z](?=[-_ .]|$)")


def work_of(song_name: str) -> str:
    """The piece a song is a version of: its name without the file suffix and a variant mark."""
    stem = song_name.rsplit(".", 1)[0] if song_name.lower().endswith((".mid", ".midi")) else song_name
    return _VARIANT.sub("", stem)


def split_songs_by_group(songs: Sequence[Song], test_fraction: float, seed: int) -> tuple[list[Song], list[Song]]:
    """Hold out ``round(n * test_fraction)`` of each group's ``n`` pieces (group: the top folder;
    piece: :func:`work_of`, so versions of one piece stay together).

    At least one test piece for a group of two or more, at least one training piece always; a
    song is in exactly one list. Depends only on the songs' names, the fraction and the seed;
    both lists come back sorted by name.
    """
    groups: dict[str, dict[str, list[Song]]] = {}
    for song in sorted(songs, key=lambda s: s.name):
        groups.setdefault(group_of(song.name, "folder"), {}).setdefault(work_of(song.name), []).append(song)
    rng = np.random.default_rng(seed)
    train, test = [], []
    for name in sorted(groups):
        works = [groups[name][w] for w in sorted(groups[name])]
        n_test = 0 if len(works) < 2 or test_fraction <= 0 else \
            min(len(works) - 1, max(1, round(len(works) * test_fraction)))
        held = set(rng.permutation(len(works))[:n_test].tolist())
        for i, versions in enumerate(works):
            (test if i in held else train).extend(versions)
    return sorted(train, key=lambda s: s.name), sorted(test, key=lambda s: s.name)


def prepare_study_data(songs: Sequence[Song], settings: StudySettings) -> StudyData:
    """Windows of the training, validation and test songs, labelled by composer; pitches from the training songs.

    Test takes ``test_fraction`` of each composer's pieces, validation ``val_fraction`` of them
    (from the rest), training the remainder.
    """
    rest, test_songs = split_songs_by_group(songs, settings.test_fraction, settings.split_seed)
    if not test_songs:
        raise ValueError("no test song: each composer needs at least two songs")
    train_songs, val_songs = split_songs_by_group(rest, settings.val_fraction / (1 - settings.test_fraction),
                                                  settings.split_seed + 1)
    if not val_songs:
        raise ValueError("no validation song: each composer needs at least three songs")
    classes = sorted({group_of(s.name, "folder") for s in train_songs})
    pitches = select_pitches([s.roll for s in train_songs])
    train = windows_for(train_songs, pitches, settings.data)
    val = windows_for(val_songs, pitches, settings.data)
    test = windows_for(test_songs, pitches, settings.data)
    if len(train.x) == 0 or len(val.x) == 0 or len(test.x) == 0:
        raise ValueError(f"no window of {settings.window} steps in the training, validation or test songs")

    def labels(windows: WindowSet) -> np.ndarray:
        names = [group_of(windows.song_names[s], "folder") for s in windows.song]
        return np.array([classes.index(n) for n in names], dtype=np.int64)

    return StudyData(train=train, val=val, test=test, y_train=labels(train), y_val=labels(val), y_test=labels(test),
                     classes=classes, pitches=pitches)


def label_subset(labels: np.ndarray, fraction: float, seed: int) -> np.ndarray:
    """Sorted indices of ``round(fraction * n_c)`` windows of each class ``c`` (at least one), drawn by ``seed``."""
    if fraction >= 1:
        return np.arange(len(labels))
    rng = np.random.default_rng(seed)
    chosen = []
    for c in np.unique(labels):
        idx = np.flatnonzero(labels == c)
        chosen.append(rng.choice(idx, size=max(1, round(len(idx) * fraction)), replace=False))
    return np.sort(np.concatenate(chosen))


def describe_data(data: StudyData) -> dict[str, Any]:
    """Songs and windows per class, the class priors, and the figures to beat.

    ``chance_accuracy``: always the most common training class, on the test windows;
    ``chance_balanced``: 1 / classes, the balanced accuracy of any constant guess;
    ``marginal_nll``: nats per frame on the test windows of a model that sounds each pitch
    independently with its frequency in the training windows (no time, no context).
    """
    n_classes = len(data.classes)
    train_counts = np.bincount(data.y_train, minlength=n_classes)
    test_counts = np.bincount(data.y_test, minlength=n_classes)

    def songs_of(windows: WindowSet, c: str) -> int:
        return sum(group_of(name, "folder") == c for name in windows.song_names)

    frames = data.train.x.reshape(-1, data.train.x.shape[-1]).astype(np.float64)
    p = np.clip(frames.mean(0), 1e-4, 1 - 1e-4)  # (P,)
    test_frames = data.test.x.reshape(-1, data.test.x.shape[-1]).astype(np.float64)
    marginal = -(test_frames * np.log(p) + (1 - test_frames) * np.log1p(-p)).sum(1).mean()
    majority = int(np.argmax(train_counts))
    return {
        "classes": list(data.classes),
        "pitches": len(data.pitches),
        "train_songs": {c: songs_of(data.train, c) for c in data.classes},
        "val_songs": {c: songs_of(data.val, c) for c in data.classes},
        "test_songs": {c: songs_of(data.test, c) for c in data.classes},
        "train_windows": {c: int(n) for c, n in zip(data.classes, train_counts)},
        "val_windows": {c: int(n) for c, n in zip(data.classes, np.bincount(data.y_val, minlength=n_classes))},
        "test_windows": {c: int(n) for c, n in zip(data.classes, test_counts)},
        "train_prior": {c: float(n / train_counts.sum()) for c, n in zip(data.classes, train_counts)},
        "test_prior": {c: float(n / test_counts.sum()) for c, n in zip(data.classes, test_counts)},
        "chance_accuracy": float(test_counts[majority] / test_counts.sum()),
        "chance_balanced": 1.0 / n_classes,
        "marginal_nll": float(marginal),
        "test_song_names": list(data.test.song_names),
    }


# -- pretraining -------------------------------------------------------------------


def vrae_config(settings: StudySettings, windows: int, seed: int):
    """The VRAE preset at the study's sizes, trained for at least ``settings.vrae_steps`` steps."""
    config = load_config(VRAE_PRESET, {"hidden": settings.hidden, "latent": settings.latent, "cell": settings.cell,
                                       "fs": settings.fs, "window": settings.window, "hop": settings.hop,
                                       "max_windows_per_song": settings.max_windows_per_song, "val_fraction": 0.0,
                                       "batch_size": min(settings.vrae_batch, windows), "seed": seed,
                                       "device": "cpu"})
    epochs = max(1, math.ceil(settings.vrae_steps / math.ceil(windows / config.train.batch_size)))
    return with_changes(config, train={"epochs": epochs})


def pretrain_vrae(data: StudyData, settings: StudySettings, seed: int, out_dir: str | Path,
                  echo: Callable[[str], None] = lambda line: None) -> tuple[VRAE, dict[str, Any]]:
    """A VRAE trained on the training windows only (no label, no test song); the model and its figures."""
    config = vrae_config(settings, len(data.train.x), seed)
    songs = len(data.train.song_names)
    training = TrainingData(train=data.train, val=None, pitches=list(data.pitches), songs_found=songs,
                            songs_used=songs)
    if (Path(out_dir) / METRICS_FILE).is_file():  # a run from before: its rows would be appended to
        shutil.rmtree(out_dir)
    trainer = Trainer(config, training, out_dir, echo=echo)
    summary = trainer.fit()
    model = trainer.model.eval()
    x_test = torch.from_numpy(data.test.x).float()
    means = encode_means(model, torch.from_numpy(data.train.x).float())
    return model, {
        "seed": seed,
        "epochs": config.train.epochs,
        "steps": trainer.progress.global_step,
        "seconds": summary["seconds"],
        "test_bound": evaluate(model, x_test, seed=seed)["bound"],
        "active_units": active_units(means),
        "latent": config.model.latent,
    }


# -- supervised training and its learning curve --------------------------------------


@torch.no_grad()
def classification_figures(model: WindowClassifier, x: torch.Tensor, y: torch.Tensor, classes: int) -> dict[str, float]:
    """Accuracy, balanced accuracy (mean recall over the classes present) and mean cross-entropy (nats)."""
    was_training = model.training
    model.eval()
    logits = torch.cat([model(batch) for batch in x.split(EVAL_BATCH)])
    model.train(was_training)
    predicted = logits.argmax(1)
    recalls = [(predicted[y == c] == c).float().mean().item() for c in range(classes) if (y == c).any()]
    return {"accuracy": (predicted == y).float().mean().item(), "balanced_accuracy": float(np.mean(recalls)),
            "nll": F.cross_entropy(logits, y).item()}


@torch.no_grad()
def prediction_figures(model: RNN, x: torch.Tensor) -> dict[str, float]:
    """The negative log-likelihood per frame (nats, summed over pitches, mean over frames)."""
    was_training = model.training
    model.eval()
    rec = sum(model.loss_terms(batch).rec.sum().item() for batch in x.split(EVAL_BATCH))
    model.train(was_training)
    return {"nll": rec / (x.shape[0] * x.shape[1])}


def train_supervised(model: nn.Module, loss_of: Callable[[torch.Tensor], torch.Tensor], examples: int,
                     measure: Callable[[], dict[str, float]], settings: StudySettings, seed: int) -> list[dict[str, Any]]:
    """``settings.steps`` Adam steps on shuffled batches of ``examples`` (``loss_of(indices)`` gives the mean
    loss of a batch); the learning curve: ``measure()`` at step 0, every ``eval_every`` steps, and at the end."""
    order = torch.Generator().manual_seed(seed)
    optimizer = torch.optim.Adam(model.parameters(), lr=settings.lr, betas=(0.95, 0.999))  # the VRAE's betas
    batch = min(settings.batch, examples)
    curve = [{"step": 0, **measure()}]
    step = 0
    model.train()
    while step < settings.steps:
        for indices in torch.randperm(examples, generator=order).split(batch):
            loss = loss_of(indices)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            nn.utils.clip_grad_norm_(model.parameters(), settings.clip_grad_norm)
            optimizer.step()
            step += 1
            if step % settings.eval_every == 0 or step == settings.steps:
                curve.append({"step": step, **measure()})
            if step == settings.steps:
                break
    return curve


def run_classification(data: StudyData, vrae: VRAE | None, subset: np.ndarray, settings: StudySettings,
                       seed: int) -> list[dict[str, Any]]:
    """Train the composer classifier on the windows ``subset``, from the VRAE's encoder or (``vrae=None``) at random."""
    x = torch.from_numpy(data.train.x[subset]).float()
    y = torch.from_numpy(data.y_train[subset])
    x_val, y_val = torch.from_numpy(data.val.x).float(), torch.from_numpy(data.y_val)
    x_test, y_test = torch.from_numpy(data.test.x).float(), torch.from_numpy(data.y_test)
    torch.manual_seed(seed)  # the same head (and random encoder) for both starts
    model = classifier_for(_model_config(settings), len(data.pitches), len(data.classes))
    if vrae is not None:
        init_classifier_from_vrae(model, vrae)
    classes = len(data.classes)

    def measure() -> dict[str, float]:
        val = classification_figures(model, x_val, y_val, classes)
        return {**classification_figures(model, x_test, y_test, classes), **{f"val_{k}": v for k, v in val.items()}}

    return train_supervised(model, lambda idx: F.cross_entropy(model(x[idx]), y[idx]), len(x), measure, settings, seed)


def run_prediction(data: StudyData, vrae: VRAE | None, z_bar: torch.Tensor | None, subset: np.ndarray,
                   settings: StudySettings, seed: int) -> list[dict[str, Any]]:
    """Train the next-frame predictor on the windows ``subset``, from the VRAE's decoder and ``h_0`` from
    code ``z_bar``, or (``vrae=None``) at random; held-out NLL per frame on the test songs."""
    x = torch.from_numpy(data.train.x[subset]).float()
    x_val, x_test = torch.from_numpy(data.val.x).float(), torch.from_numpy(data.test.x).float()
    torch.manual_seed(seed)
    model = predictor_for(_model_config(settings), len(data.pitches))
    if vrae is not None:
        init_predictor_from_vrae(model, vrae, z_bar)
    steps = x.shape[1]
    return train_supervised(model, lambda idx: model.loss_terms(x[idx]).rec.mean() / steps, len(x),
                            lambda: {**prediction_figures(model, x_test),
                                     "val_nll": prediction_figures(model, x_val)["nll"]}, settings, seed)


def _model_config(settings: StudySettings) -> ModelConfig:
    return load_config(VRAE_PRESET, {"hidden": settings.hidden, "latent": settings.latent,
                                     "cell": settings.cell}).model


# -- the whole study -------------------------------------------------------------------


def run_study(songs: Sequence[Song], settings: StudySettings, work_dir: str | Path,
              echo: Callable[[str], None] = lambda line: None) -> dict[str, Any]:
    """Every task x label share x start x seed; the results as one JSON-able dict.

    ``runs``: one entry per training run with its learning curve (test figures, and the validation
    songs' as ``val_*``), its last point (``final``) and the point early stopping picks
    (``early_stopped``, :func:`early_stopped`); ``summary``: for each of the two, the figures' mean,
    sample standard deviation, minimum and maximum over the seeds, per task, share and start.
    """
    started = time.perf_counter()
    data = prepare_study_data(songs, settings)
    described = describe_data(data)
    echo(f"{len(data.train.x)} training windows of {sum(described['train_songs'].values())} songs, "
         f"{len(data.val.x)} validation windows of {sum(described['val_songs'].values())}, "
         f"{len(data.test.x)} test windows of {sum(described['test_songs'].values())} songs, "
         f"{len(data.pitches)} pitches; classes {', '.join(data.classes)}")
    results: dict[str, Any] = {"settings": settings.to_dict(), "data": described, "vrae": [], "runs": []}
    for seed in settings.seeds:
        vrae, figures = pretrain_vrae(data, settings, seed, Path(work_dir) / f"vrae-seed{seed}")
        results["vrae"].append(figures)
        echo(f"seed {seed}: VRAE pretrained, {figures['steps']} steps in {figures['seconds']:.0f} s, test bound "
             f"{figures['test_bound']:.3f} nats/step, {figures['active_units']}/{figures['latent']} active units")
        z_bar = encode_means(vrae, torch.from_numpy(data.train.x).float()).mean(0)  # (L,)
        long = replace(settings, steps=settings.long_steps, eval_every=2 * settings.eval_every)
        plan = [(task, fraction) for fraction in settings.fractions for task in ("classify", "predict")]
        plan += [("predict_long", 1.0)] if settings.long_steps else []
        for task, fraction in plan:
            subset = label_subset(data.y_train, fraction, seed)
            for init in INITS:
                clock = time.perf_counter()
                source = vrae if init == "vrae" else None
                if task == "classify":
                    curve = run_classification(data, source, subset, settings, seed)
                else:
                    curve = run_prediction(data, source, z_bar, subset, long if task == "predict_long" else settings,
                                           seed)
                seconds = time.perf_counter() - clock
                results["runs"].append({"task": task, "init": init, "fraction": fraction, "seed": seed,
                                        "labelled_windows": int(len(subset)), "curve": curve,
                                        "final": curve[-1], "early_stopped": early_stopped(curve, task),
                                        "seconds": round(seconds, 2)})
                shown = ", ".join(f"{k} {v:.3f}" for k, v in curve[-1].items() if k != "step")
                chosen = results["runs"][-1]["early_stopped"]
                echo(f"seed {seed} {task} {fraction:g} ({len(subset)} windows) {init}: {shown}; stopped early at "
                     f"{chosen['step']}: {', '.join(f'{k} {chosen[k]:.3f}' for k in SCORED[task])} ({seconds:.0f} s)")
    results["summary"] = {point: summarise(results["runs"], point) for point in ("final", "early_stopped")}
    results["seconds"] = round(time.perf_counter() - started, 1)
    return results
