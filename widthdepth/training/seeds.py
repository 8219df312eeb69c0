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
from pathlib import Path
from typing import Any

from widthdepth import runtime

log = logging.getLogger("train")


def seed_paths(seed: int) -> tuple[str, str]:
    """The file of one seed's model in the model's folder, and its training log's folder."""
    return f"seed_{seed}.keras", f"seed_{seed}"


def workers_for(seeds: list[int], cores: int | None = None) -> tuple[int, int]:
    """How many seeds train at once, and the threads each gets: one worker per seed, the cores split among them."""
    cores = cores or os.cpu_count() or 1
    workers = len(seeds) if len(seeds) > 1 else 1
    return workers, max(1, cores // workers)


def train_seeds(
    name: str,
    declaration: dict[str, Any],
    recipe: dict[str, Any],
    seeds: list[int],
    data: Path,
    info: dict[str, Any],
    backend: str,
    checkpoints: Path,
    models: Path,
    live: Path,
) -> None:
    """Train every seed of `models.<name>` into the folders `models` and `live`."""
    workers, threads = workers_for(seeds)
    jobs = [(name, declaration, recipe, seed, data, info, checkpoints, models, live) for seed in seeds]
    if workers == 1:
        runtime.configure(backend)
        for job in jobs:
            _train_one(*job)
        return
    log.info("%s: %d seeds at once, %d thread%s each", name, len(seeds), threads, "s" * (threads > 1))
    context = multiprocessing.get_context("spawn")  # a fresh interpreter: the backend and threads are set before Keras
    with ProcessPoolExecutor(
        workers, mp_context=context, initializer=_start_worker, initargs=(backend, threads)
    ) as pool:
        for future in [pool.submit(_train_one, *job) for job in jobs]:
            future.result()  # the first failure, with its message


def _start_worker(backend: str, threads: int) -> None:
    if sys.platform == "linux":  # die with the stage: no orphan keeps training after a kill
        ctypes.CDLL("libc.so.6").prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
    logging.basicConfig(level=logging.INFO, format="%(name)s: %(message)s")
    runtime.configure(backend, threads)


def _train_one(
    name: str,
    declaration: dict[str, Any],
    recipe: dict[str, Any],
    seed: int,
    data: Path,
    info: dict[str, Any],
    checkpoints: Path,
    models: Path,
    live: Path,
) -> None:
    from widthdepth.training.loop import train

    model_file, live_folder = seed_paths(seed)
    train(
        name, declaration, recipe, seed, data, info, checkpoints / live_folder, models / model_file, live / live_folder
    )
