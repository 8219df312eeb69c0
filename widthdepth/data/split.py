"""From decoded images to the prepared dataset: a stratified validation split and the statistics
of the training part."""

from __future__ import annotations

import hashlib
import numbers
from dataclasses import replace
from typing import Any

import numpy as np

from widthdepth.data.readers import Splits
from widthdepth.params import Prepare
from widthdepth.stage import StageError


def validation_count(val_size: Any, n: int) -> int:
    """`prepare.val_size` as a number of images: a count, or a fraction of the training set."""
    if isinstance(val_size, bool) or not isinstance(val_size, numbers.Real):
        raise StageError(f"params.yaml: prepare.val_size must be a count or a fraction in (0, 1), not {val_size!r}")
    if isinstance(val_size, numbers.Integral):
        count = int(val_size)
    elif 0 < val_size < 1:
        count = round(val_size * n)
    else:
        raise StageError(f"params.yaml: prepare.val_size {val_size} is a fraction outside (0, 1)")
    if not 0 < count < n:
        raise StageError(f"params.yaml: prepare.val_size {val_size} must leave 1 to {n - 1} of {n} training images")
    return count


def stratified_split(labels: np.ndarray, val_count: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Indices (train, val): each class gives the validation set its share of `val_count`.

    The training indices come in a seeded random order, so an image folder's class-sorted
    images are mixed (the sample grid shows several classes); the validation ones are sorted.
    """
    classes, counts = np.unique(labels, return_counts=True)
    quota = counts * val_count / len(labels)
    per_class = np.floor(quota).astype(int)
    largest_remainders = np.argsort(per_class - quota, kind="stable")[: val_count - per_class.sum()]
    per_class[largest_remainders] += 1
    rng = np.random.default_rng(seed)
    val = np.sort(
        np.concatenate([rng.permutation(np.flatnonzero(labels == label))[:k] for label, k in zip(classes, per_class)])
    )
    return rng.permutation(np.setdiff1d(np.arange(len(labels)), val)), val


def channel_stats(images: np.ndarray, chunk: int = 4096) -> tuple[np.ndarray, np.ndarray]:
    """Exact per-channel mean and standard deviation of uint8 images, in pixel units."""
    channels = images.shape[-1]
    histogram = np.zeros((channels, 256), np.int64)
    for start in range(0, len(images), chunk):  # chunked: bincount's int64 copy stays small
        pixels = images[start : start + chunk].reshape(-1, channels)
        for channel in range(channels):
            histogram[channel] += np.bincount(pixels[:, channel], minlength=256)
    values = np.arange(256)
    count = histogram.sum(axis=1)
    mean = histogram @ values / count
    variance = (histogram * (values - mean[:, None]) ** 2).sum(axis=1) / count
    return mean, np.sqrt(variance)


def limited(data: Splits, limit: int | None, seed: int) -> Splits:
    """At most `limit` images of the training and of the test set, each class keeping its share
    (the tour's small slice: README); all of them when `limit` is None."""

    def keep(labels: np.ndarray) -> np.ndarray:
        return (
            np.arange(len(labels))
            if limit is None or limit >= len(labels)
            else stratified_split(labels, limit, seed)[1]
        )

    train, test = keep(data.y_train), keep(data.y_test)
    return replace(
        data,
        x_train=data.x_train[train],
        y_train=data.y_train[train],
        x_test=data.x_test[test],
        y_test=data.y_test[test],
    )


def prepare_dataset(data: Splits, prepare: Prepare) -> tuple[dict[str, tuple[np.ndarray, np.ndarray]], dict[str, Any]]:
    """The images and labels of train, val and test, and dataset.json: classes, shapes, counts, stats, checksum.
    `prepare.limit` keeps a stratified slice of at most that many training and test images."""
    data = limited(data, prepare.limit, prepare.seed)
    val_count = validation_count(prepare.val_size, len(data.y_train))
    train, val = stratified_split(data.y_train, val_count, prepare.seed)
    splits = {
        "train": (data.x_train[train], data.y_train[train]),
        "val": (data.x_train[val], data.y_train[val]),
        "test": (data.x_test, data.y_test),
    }
    mean, std = channel_stats(splits["train"][0])
    digest = hashlib.sha256()
    for array in (array for pair in splits.values() for array in pair):  # x_train, y_train, x_val, ...
        digest.update(np.ascontiguousarray(array).data)
    info = {
        "dataset": data.name,
        "classes": data.classes,
        "image_shape": list(data.x_train.shape[1:]),
        "splits": {
            split: {
                "count": len(splits[split][1]),
                "per_class": dict(
                    zip(data.classes, np.bincount(splits[split][1], minlength=len(data.classes)).tolist())
                ),
            }
            for split in splits
        },
        "mean": mean.round(6).tolist(),
        "std": std.round(6).tolist(),
        "sha256": digest.hexdigest(),
    }
    return splits, info
