"""Stage `prepare`: decode the raw files, hold out a stratified validation split, compute stats.

Writes uint8 image arrays and int32 labels as .npy files (train, val, test), a
dataset.json with shapes, class counts, per-channel mean and std of the training part and
a checksum of the arrays. Its outputs are all cached (DVC's run-cache needs that, see
dvc.yaml); the report draws the sample images that git keeps.
"""

from __future__ import annotations

import argparse
import logging
from pathlib import Path

from widthdepth import params
from widthdepth.data.readers import read_dataset
from widthdepth.data.split import prepare_dataset
from widthdepth.layout import SPLITS, save_prepared
from widthdepth.stage import atomic_path, run

log = logging.getLogger("prepare")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("raw", type=Path, help="folder written by the download stage")
    parser.add_argument("out", type=Path, help="folder for the arrays and dataset.json")
    args = parser.parse_args()
    prepare = params.load(params.Prepare, "prepare")
    splits, info = prepare_dataset(read_dataset(args.raw), prepare)
    with atomic_path(args.out, directory=True) as folder:
        save_prepared(folder, splits, info)
    counts = {split: info["splits"][split]["count"] for split in SPLITS}
    log.info(
        "%s: %d train, %d val, %d test images of shape %s; mean %s, std %s",
        info["dataset"],
        counts["train"],
        counts["val"],
        counts["test"],
        info["image_shape"],
        info["mean"],
        info["std"],
    )


if __name__ == "__main__":
    run(main)
