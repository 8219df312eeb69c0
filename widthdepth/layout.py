"""Where the pipeline's files live: the one module that names them.

    <data>/x_<split>.npy, y_<split>.npy, dataset.json   prepare: uint8 images, int32 labels, their description
    <models>/<name>/seed_<k>.keras                      train: the model of one seed
    <live>/<name>/seed_<k>/                             train: its DVCLive training log (widthdepth.training.log)
    checkpoints/<name>/seed_<k>/                        train, while it runs
    <metrics>/<name>/seed_<k>.json                      evaluate: what the saved model scores and costs
    <runs>/<name>/seed_<k>.json                         evaluate: the run as its training log tells it (kept in git)

The splits are `train`, `val` and `test`. Keras-free.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import numpy as np

from widthdepth.stage import read_json

SPLITS = ("train", "val", "test")
DATASET_FILE = "dataset.json"
CHECKPOINTS = Path("checkpoints")
MODEL_SUFFIX = ".keras"
_SEED_MODEL = re.compile(r"seed_(\d+)\.keras")


def split_files(data: Path, split: str) -> tuple[Path, Path]:
    """The images and labels of one split of the prepared data."""
    return data / f"x_{split}.npy", data / f"y_{split}.npy"


def save_prepared(folder: Path, splits: dict[str, tuple[np.ndarray, np.ndarray]], info: dict[str, Any]) -> None:
    """Write the prepared data: each split's images and labels, and `dataset.json`."""
    for split, arrays in splits.items():
        for path, array in zip(split_files(folder, split), arrays, strict=True):
            np.save(path, array)
    (folder / DATASET_FILE).write_text(json.dumps(info, indent=2) + "\n")


def load_split(data: Path, split: str, mmap: bool = False) -> tuple[np.ndarray, np.ndarray]:
    """One split of the prepared data: (images, labels); memory-mapped when `mmap`."""
    return tuple(np.load(path, mmap_mode="r" if mmap else None) for path in split_files(data, split))


def load_splits(data: Path, splits: tuple[str, ...] = SPLITS) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    return {split: load_split(data, split) for split in splits}


def read_info(data: Path) -> dict[str, Any]:
    """The prepared data's description (`dataset.json`): classes, image shape, split counts, statistics, checksum."""
    return read_json(data / DATASET_FILE)


def seed_name(seed: int) -> str:
    return f"seed_{seed}"


def seed_model(folder: Path, seed: int) -> Path:
    """A seed's model in its model's folder (`<models>/<name>`)."""
    return folder / f"{seed_name(seed)}{MODEL_SUFFIX}"


def seed_log(folder: Path, seed: int) -> Path:
    """A seed's training log folder in its model's (`<live>/<name>`); its checkpoint folder in `checkpoints/<name>`."""
    return folder / seed_name(seed)


def seed_json(folder: Path, seed: int) -> Path:
    """A seed's metrics or run record in its model's folder (`<metrics>/<name>`, `<runs>/<name>`)."""
    return folder / f"{seed_name(seed)}.json"


def trained_seeds(folder: Path) -> list[int]:
    """The seeds whose models a model's folder holds, in order."""
    return sorted(int(match[1]) for path in folder.glob("*") if (match := _SEED_MODEL.fullmatch(path.name)))


def checkpoint_folder(name: str) -> Path:
    """Where `train` keeps a model's checkpoints while it runs (one folder per seed, by seed_log)."""
    return CHECKPOINTS / name
