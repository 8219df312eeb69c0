"""Stage `download`: put the dataset named by the `data` params into one folder, verified.

Tries `data.sources` in order (a folder, archive or URL; for the official datasets, a
folder or base URL holding their files), then, for an official dataset, local mirrors
(DATASET_MIRROR, Keras' cache, /usr/share/datasets) and its official URLs. An image folder
must check as `data.sha256`, the checksum of its images (widthdepth.data.download).
"""

from __future__ import annotations

import argparse
import json
import logging
from pathlib import Path

from widthdepth import params
from widthdepth.data.download import download_dataset
from widthdepth.stage import atomic_path, run

log = logging.getLogger("download")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("out", type=Path, help="folder for the raw files and manifest.json")
    args = parser.parse_args()
    data = params.load(params.Data, "data")
    with atomic_path(args.out, directory=True) as folder:
        manifest = download_dataset(data, folder)
        (folder / "manifest.json").write_text(json.dumps(manifest, indent=2) + "\n")
    log.info("%s: %s ready in %s", manifest["dataset"], ", ".join(manifest["files"]), args.out)


if __name__ == "__main__":
    run(main)
