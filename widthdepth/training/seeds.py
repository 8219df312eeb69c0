"""A model's seeds, trained at once: one process per seed, the cores shared among them.

Small models cannot keep two cores busy (per-layer overhead bounds them, docs/speed.md), so
a point's seeds train side by side in worker processes, each capped at its share of the
threads; one seed trains in the stage's own process with every core. Each seed stays its own
run: deterministic for its thread count, checkpointed in `checkpoints/<name>/seed_<k>/`,
logged in `<live>/seed_<k>/` and saved as `<models>/seed_<k>.keras`.

Keras-free: the workers import it, after their runtime is set.
"""

from __future__ import annotations

import ctypes
import logging
import multiprocessing
import os
import signal
import sys
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from widthdepth import layout, runtime
from widthdepth.architectures import Model
from widthdepth.params import Recipe

log = logging.getLogger("train")


@dataclass(frozen=True)
class SeedRun:
    """One seed of a model, everything its worker needs, whole and picklable: what to train, on
    which data, and where its checkpoint, model and training log go."""

    model: Model
    recipe: Recipe
    seed: int
    data: Path
    info: dict[str, Any]
    checkpoint: Path
    model_file: Path
    log_folder: Path


def seed_runs(
    model: Model, recipe: Recipe, data: Path, info: dict[str, Any], models: Path, live: Path
) -> list[SeedRun]:
    """The runs of the model's seeds, writing into its folders `models` and `live`."""
    checkpoints = layout.checkpoint_folder(model.name)
    return [
        SeedRun(
            model,
            recipe,
            seed,
            data,
            info,
            layout.seed_log(checkpoints, seed),
            layout.seed_model(models, seed),
            layout.seed_log(live, seed),
        )
        for seed in model.seeds
    ]


def workers_for(seeds: list[int], cores: int | None = None) -> tuple[int, int]:
    """How many seeds train at once, and the threads each gets: one worker per seed, the cores split among them."""
    cores = cores or os.cpu_count() or 1
    workers = len(seeds) if len(seeds) > 1 else 1
    return workers, max(1, cores // workers)


def train_seeds(runs: list[SeedRun], backend: str) -> None:
    """Train every run, at once when there are several."""
    workers, threads = workers_for([run.seed for run in runs])
    if workers == 1:
        runtime.configure(backend)
        for run in runs:
            _train_one(run)
        return
    log.info("%s: %d seeds at once, %d thread%s each", runs[0].model.name, len(runs), threads, "s" * (threads > 1))
    context = multiprocessing.get_context("spawn")  # a fresh interpreter: the backend and threads are set before Keras
    with ProcessPoolExecutor(
        workers, mp_context=context, initializer=_start_worker, initargs=(backend, threads)
    ) as pool:
        for future in [pool.submit(_train_one, run) for run in runs]:
            future.result()  # the first failure, with its message


def _start_worker(backend: str, threads: int) -> None:
    if sys.platform == "linux":  # die with the stage: no orphan keeps training after a kill
        ctypes.CDLL("libc.so.6").prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
    logging.basicConfig(level=logging.INFO, format="%(name)s: %(message)s")
    runtime.configure(backend, threads)


def _train_one(run: SeedRun) -> None:
    from widthdepth.training.loop import train

    train(run)
