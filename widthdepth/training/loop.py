"""The fit loop: `model.fit` epoch by epoch, with Keras callbacks doing the bookkeeping.

- Each epoch trains on the training set in an order fixed by (seed, epoch) alone, so a
  resumed run sees exactly the batches an uninterrupted one does.
- `DivergenceGuard` stops a run whose loss is non-finite or far above chance.
- `LiveLog` writes each epoch to DVCLive; `Checkpoint` saves the model and the run's state
  after each epoch; `EpochProgress` prints one line per epoch (beside Keras' progress bar
  when a terminal shows it).

Import this module only after `widthdepth.runtime.configure`: it imports Keras.
"""

from __future__ import annotations

import hashlib
import json
import logging
import math
import shutil
import sys
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import keras
import numpy as np

from widthdepth import layout, provenance, runtime
from widthdepth.params import Recipe
from widthdepth.stage import atomic_path, remove
from widthdepth.training.augment import augment_epoch
from widthdepth.training.batchnorm import fuse, recalibrate, sample
from widthdepth.training.log import EPOCH_METRICS
from widthdepth.training.seeds import SeedRun

log = logging.getLogger("train")

# A training loss above this multiple of ln(classes) (the loss of a uniform guess) means
# the run diverged: a healthy run starts near 1x and falls.
DIVERGED_LOSS_FACTOR = 3.0


@dataclass
class RunState:
    """What a checkpoint holds beside the model: enough to resume, and to know whether to."""

    fingerprint: str
    epoch: int = 0  # epochs done
    history: list[dict[str, float]] = field(default_factory=list)  # the training log, one record per epoch
    train_seconds: float = 0.0
    seed_states: list = field(default_factory=list)
    diverged_epoch: int | None = None  # the epoch in which the loss diverged, if it did


def seed_states(model: keras.Model) -> list:
    """The random layers' generator states (augmentation, dropout): `load_model` resets them,
    so checkpoints carry them to keep a resumed run identical to an uninterrupted one."""
    return [v for v in model.variables if "seed_generator_state" in v.path]


class EpochTimer(keras.callbacks.Callback):
    """Adds `epoch_seconds` to each epoch's logs (validation included)."""

    def on_epoch_begin(self, epoch: int, logs: dict | None = None) -> None:
        self.start = time.perf_counter()

    def on_epoch_end(self, epoch: int, logs: dict | None = None) -> None:
        logs["epoch_seconds"] = time.perf_counter() - self.start


class DivergenceGuard(keras.callbacks.Callback):
    """Stops training at the first batch whose running loss is non-finite or above the limit."""

    def __init__(self, n_classes: int, state: RunState):
        super().__init__()
        self.n_classes, self.state = n_classes, state
        self.limit = DIVERGED_LOSS_FACTOR * math.log(n_classes)

    def on_epoch_begin(self, epoch: int, logs: dict | None = None) -> None:
        self.epoch = epoch

    def on_train_batch_end(self, batch: int, logs: dict | None = None) -> None:
        loss = float(logs["loss"])
        if not math.isfinite(loss) or loss > self.limit:
            self.state.diverged_epoch = self.epoch + 1
            self.model.stop_training = True
            log.warning(
                "%s diverged in epoch %d, batch %d: training loss %.4g, limit %.3g (%g x ln %d classes)",
                self.model.name,
                self.epoch + 1,
                batch + 1,
                loss,
                self.limit,
                DIVERGED_LOSS_FACTOR,
                self.n_classes,
            )


class LiveLog(keras.callbacks.Callback):
    """Each epoch's logs to DVCLive, under the names the report and `dvc plots` read."""

    def __init__(self, live):
        super().__init__()
        self.live = live

    def write(self, record: dict[str, float]) -> None:
        for metric, value in record.items():
            self.live.log_metric(metric, value)
        self.live.next_step()

    def on_epoch_end(self, epoch: int, logs: dict | None = None) -> None:
        self.write(epoch_record(logs))


def epoch_record(logs: dict) -> dict[str, float]:
    """One epoch of the training log; a non-finite value (a diverged run) is kept as NaN."""
    return {name: float(logs[key]) for key, name in EPOCH_METRICS.items() if key in logs}


STATE_FILE = "state.json"  # in a checkpoint's folder: the run's state, which commits the model file it names


def checkpoint_model(folder: Path, epoch: int) -> Path:
    """The file of the model checkpointed after `epoch` epochs."""
    return folder / f"epoch_{epoch}.keras"


class Checkpoint(keras.callbacks.Callback):
    """After each epoch: the model (with its optimizer) and the run's state, which commits it.

    Each epoch's model goes to a file of its own; `state.json`, which names the epoch, is
    replaced atomically only once that file is whole, and older files are removed after. So a
    kill at any moment leaves the last committed epoch to resume from (replacing one folder
    by another cannot promise that: there is an instant with neither).
    """

    def __init__(self, folder: Path, state: RunState):
        super().__init__()
        self.folder, self.state = folder, state

    def on_epoch_end(self, epoch: int, logs: dict | None = None) -> None:
        state = self.state
        state.epoch = epoch + 1
        state.history.append(epoch_record(logs))
        state.train_seconds += logs["epoch_seconds"]
        state.seed_states = [np.asarray(v).tolist() for v in seed_states(self.model)]
        model_file = checkpoint_model(self.folder, state.epoch)
        with atomic_path(model_file) as path:
            self.model.save(path)
        with atomic_path(self.folder / STATE_FILE) as path:
            path.write_text(json.dumps(asdict(state)))
        for path in self.folder.iterdir():  # earlier epochs, and what a killed write left
            if path.name not in (STATE_FILE, model_file.name):
                remove(path)


class EpochProgress(keras.callbacks.Callback):
    """One line per epoch: the metrics, the rate and the time left for this model."""

    def __init__(self, epochs: int, images: int, seed: int):
        super().__init__()
        self.epochs, self.images, self.seed = epochs, images, seed

    def on_epoch_end(self, epoch: int, logs: dict | None = None) -> None:
        seconds = logs["epoch_seconds"]
        left = (self.epochs - epoch - 1) * seconds
        log.info(
            "%s seed %d epoch %d/%d: loss %.4f acc %.4f | val loss %.4f acc %.4f | "
            "%.0f s, %.0f img/s, about %.0f min left",
            self.model.name,
            self.seed,
            epoch + 1,
            self.epochs,
            logs["loss"],
            logs["accuracy"],
            logs.get("val_loss", math.nan),
            logs.get("val_accuracy", math.nan),
            seconds,
            self.images / seconds,
            left / 60,
        )


def load_checkpoint(folder: Path, fingerprint: str, fused: bool = True) -> tuple[keras.Model, RunState] | None:
    """The checkpointed model and state, if the checkpoint is of this very run (same fingerprint);
    its batch norm trains through the fused kernel again when `fused` (its recipe's choice).

    A checkpoint that cannot be read (a truncated file, a disk error) is set aside under
    `checkpoints/.unreadable/` with one line in the log, and the run starts over: it never blocks training.
    """
    if not (folder / STATE_FILE).exists():
        return None  # nothing committed yet
    try:
        saved = json.loads((folder / STATE_FILE).read_text())
        if saved.get("fingerprint") != fingerprint:
            return None  # another run's: overwritten after this run's first epoch
        state = RunState(**saved)
        model = keras.saving.load_model(checkpoint_model(folder, state.epoch))
        for variable, value in zip(seed_states(model), state.seed_states, strict=True):
            variable.assign(np.array(value, dtype=variable.dtype))
    except Exception as err:  # Keras raises many kinds on a damaged .keras file
        aside = (
            folder.parents[1] / ".unreadable" / folder.parent.name / folder.name
        )  # kept when the stage clears its own
        shutil.rmtree(aside, ignore_errors=True)
        aside.parent.mkdir(parents=True, exist_ok=True)
        folder.rename(aside)
        log.warning(
            "checkpoint %s cannot be read (%s: %s); set aside as %s, training starts over",
            folder,
            type(err).__name__,
            str(err).splitlines()[0] if str(err) else "",
            aside,
        )
        return None
    if fused:  # after the try: a failure here is not an unreadable checkpoint
        fuse(model)
    return model, state


def epoch_order(seed: int, epoch: int, count: int) -> np.ndarray:
    """The training set's order in an epoch: fixed by (seed, epoch) alone, so a resumed run sees the same batches."""
    return np.random.default_rng([seed, epoch]).permutation(count)


def fit(
    model: keras.Model,
    state: RunState,
    recipe: Recipe,
    seed: int,
    train: tuple,
    val: tuple,
    checkpoint: Path,
    live,
) -> RunState:
    """Train from `state.epoch` to the recipe's last epoch, or until the run diverges.

    One `model.fit` call per epoch, each on that epoch's order of the training set (flipped
    and shifted here when the recipe augments the data); the callbacks carry over from epoch to epoch.
    """
    (x_train, y_train), (x_val, y_val) = train, val
    live_log = LiveLog(live)
    for record in state.history:  # a resumed run rewrites the whole log
        live_log.write(record)
    callbacks = [
        EpochTimer(),
        DivergenceGuard(y_train.shape[1], state),
        live_log,
        Checkpoint(checkpoint, state),
        EpochProgress(recipe.epochs, len(x_train), seed),
    ]
    validation = runtime.batches(x_val, y_val, max(256, recipe.batch_size))
    for epoch in range(state.epoch, recipe.epochs):
        if state.diverged_epoch is not None:
            break
        order = epoch_order(seed, epoch, len(x_train))
        images = x_train[order]
        if recipe.augment == "data":
            shift = round(recipe.translate * min(images.shape[1:3]))
            images = augment_epoch(images, seed, epoch, recipe.flip, shift)
        model.fit(
            runtime.batches(images, y_train[order], recipe.batch_size),
            initial_epoch=epoch,
            epochs=epoch + 1,
            shuffle=False,
            validation_data=validation,
            callbacks=callbacks,
            verbose=1 if sys.stdout.isatty() else 0,  # the bar goes to stdout
        )
    return state


def run_fingerprint(run: SeedRun, settings: dict[str, str]) -> str:
    """What a checkpoint must match to be resumed: params, seed, data, runtime and the training code."""
    key = [
        run.model.declaration,
        run.seed,
        run.recipe.model_dump(),
        run.info["sha256"],
        settings,
        keras.__version__,
        provenance.source_digest("stages.train"),
    ]
    return hashlib.sha256(json.dumps(key, sort_keys=True).encode()).hexdigest()


def train(run: SeedRun) -> RunState:
    """Train one seed of a model on the prepared data, resuming from its checkpoint when that holds
    this very run; save the model and the training log where `run` says."""
    from dvclive import Live
    from widthdepth.training.recipes import compiled_model

    recipe, seed, info = run.recipe, run.seed, run.info
    (x_train, y_train), (x_val, y_val) = layout.load_split(run.data, "train"), layout.load_split(run.data, "val")
    settings = runtime.settings()
    fingerprint = run_fingerprint(run, settings)
    resumed = load_checkpoint(run.checkpoint, fingerprint, recipe.fused_batch_norm)
    if resumed:
        model, state = resumed
        log.info("%s seed %d: resuming after epoch %d from %s", run.model.name, seed, state.epoch, run.checkpoint)
    else:
        batches = math.ceil(len(x_train) / recipe.batch_size)
        model = compiled_model(run.model, recipe, info, batches, seed, x_train)
        state = RunState(fingerprint)

    def onehot(y: np.ndarray) -> np.ndarray:  # label smoothing needs one-hot targets
        return keras.utils.to_categorical(y, len(info["classes"]))

    with Live(str(run.log_folder), dvcyaml=False, save_dvc_exp=False) as live:
        live.log_params(
            {
                "model": run.model.declaration,
                "seed": seed,
                "recipe": recipe.model_dump(),
                "runtime": settings,
                "machine": runtime.machine(),
                "fingerprint": fingerprint,
            }
        )
        train_data, val_data = (x_train, onehot(y_train)), (x_val, onehot(y_val))
        state = fit(model, state, recipe, seed, train_data, val_data, run.checkpoint, live)
        recalibrated = 0
        if recipe.recalibrate_batch_norm and state.diverged_epoch is None:
            recalibrated = recalibrate(model, sample(x_train, seed))  # layers set; 0 for a model without batch norm
        live.summary.update({**run_summary(model, state, len(x_train)), "batch_norm_recalibrated": recalibrated > 0})
    model.save(run.model_file)
    return state


def run_summary(model: keras.Model, state: RunState, train_images: int) -> dict[str, Any]:
    """The training log's summary: size, epochs done, divergence and speed."""
    seconds = state.train_seconds
    return {
        "params": model.count_params(),
        "epochs": state.epoch,
        "diverged_epoch": state.diverged_epoch,
        "training_seconds": round(seconds, 2),
        "images_per_second": round(state.epoch * train_images / seconds, 1) if seconds else 0.0,
    }
