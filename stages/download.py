"""Stage `download`: put the dataset named by the `data` params into one folder, verified.

Official files are looked up in local mirrors first (DATASET_MIRROR, Keras' cache,
/usr/share/datasets) and downloaded only if no mirror holds a copy with the right checksum.
`data.source` replaces the official location: a folder or base URL holding the official
file names, or, for `imagefolder`, the directory or archive itself.
"""

from __future__ import annotations

import argparse
import json
import logging
from pathlib import Path

from widthdepth.data.download import download_dataset
from widthdepth.stage import atomic_path, load_params, run

log = logging.getLogger("download")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("out", type=Path, help="folder for the raw files and manifest.json")
    args = parser.parse_args()
    params = load_params("data")
    with atomic_path(args.out, directory=True) as folder:
        manifest = download_dataset(params, folder)
        (folder / "manifest.json").write_text(json.dumps(manifest, indent=2) + "\n")
    log.info("%s: %s ready in %s", manifest["dataset"], ", ".join(manifest["files"]), args.out)


if __name__ == "__main__":
    run(main)
