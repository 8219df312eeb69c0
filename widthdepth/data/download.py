"""Put a dataset's raw files into one folder, verified.

Official files are looked up in local mirrors first (DATASET_MIRROR, Keras' cache,
/usr/share/datasets) and downloaded only if no mirror holds a copy with the right checksum.
`data.source` replaces the official location: a folder or base URL holding the official
file names, or, for `imagefolder`, the directory or archive itself.
"""

from __future__ import annotations

import logging
import os
import re
import shutil
import urllib.parse
from pathlib import Path
from typing import Any

from widthdepth.data.fetch import copy_verified, download, find_in_mirrors
from widthdepth.data.sources import SOURCES, Source
from widthdepth.stage import StageError

log = logging.getLogger("download")

ARCHIVE_SUFFIXES = (".zip", ".tar", ".tar.gz", ".tgz")


def is_url(source: str) -> bool:
    return urllib.parse.urlparse(source).scheme in ("http", "https", "ftp", "file")


def check_params(params: dict[str, Any]) -> tuple[str, str | None, str | None]:
    """Validated (dataset, source, sha256) from the `data` section."""
    dataset, source, sha256 = params.get("dataset"), params.get("source"), params.get("sha256")
    if dataset not in SOURCES:
        raise StageError(f"params.yaml: data.dataset is {dataset!r}; expected one of {', '.join(SOURCES)}")
    if source is not None and (not isinstance(source, str) or not source):
        raise StageError(f"params.yaml: data.source must be a path or URL, not {source!r}")
    if sha256 is not None and not (isinstance(sha256, str) and re.fullmatch(r"[0-9a-fA-F]{64}", sha256)):
        raise StageError(f"params.yaml: data.sha256 must be 64 hex digits, not {sha256!r}")
    if sha256 is not None and dataset != "imagefolder":
        raise StageError(
            "params.yaml: data.sha256 checks an imagefolder archive; the official datasets carry their own checksums"
        )
    if dataset == "imagefolder" and source is None:
        raise StageError(
            "params.yaml: data.source must name the image folder or archive for data.dataset 'imagefolder'"
        )
    return dataset, source, sha256


def fetch_official(spec: Source, folder: Path) -> None:
    for file in spec.files:
        mirror = find_in_mirrors(file.name, spec.mirror_dir, file.checksum, payload=file.checksum_of_payload)
        if mirror:
            log.info("using %s", mirror)
            copy_verified(mirror, folder / file.name)
        else:
            download(file.url, folder / file.name, file.checksum, payload=file.checksum_of_payload)


def fetch_from(spec: Source, source: str, folder: Path) -> None:
    """The official file names, from a user-given folder or base URL (not checksummed)."""
    log.warning("data.source is set: %s is not checked against the official checksums", source)
    for file in spec.files:
        if is_url(source):
            download(urllib.parse.urljoin(source.rstrip("/") + "/", file.name), folder / file.name)
        else:
            copy_verified(Path(source) / file.name, folder / file.name)


def copy_image_tree(src: Path, dest: Path) -> None:
    """Copy a directory of images, refusing links, which could point outside it."""
    for root, dirs, files in os.walk(src):
        for name in dirs + files:
            if os.path.islink(os.path.join(root, name)):
                raise StageError(f"{os.path.join(root, name)}: links are not allowed in an image folder")
    shutil.copytree(src, dest)


def fetch_imagefolder(source: str, sha256: str | None, folder: Path) -> str:
    """Copy or download the image folder or archive; return its name inside `folder`."""
    checksum = f"sha256:{sha256}" if sha256 else None
    if is_url(source):
        name = Path(urllib.parse.urlparse(source).path).name
        if not name.endswith(ARCHIVE_SUFFIXES):
            raise StageError(f"params.yaml: data.source {source} is not a {'/'.join(ARCHIVE_SUFFIXES)} archive")
        download(source, folder / name, checksum)
        return name
    path = Path(source).expanduser()
    if path.is_dir():
        if sha256:
            raise StageError("params.yaml: data.sha256 checks an archive; data.source is a directory")
        copy_image_tree(path, folder / "images")
        return "images"
    if not path.exists():
        raise StageError(f"params.yaml: data.source {source}: no such file or directory")
    if not path.name.endswith(ARCHIVE_SUFFIXES):
        raise StageError(
            f"params.yaml: data.source {source} is not a directory or a {'/'.join(ARCHIVE_SUFFIXES)} archive"
        )
    copy_verified(path, folder / path.name, checksum)
    return path.name


def download_dataset(params: dict[str, Any], folder: Path) -> dict[str, Any]:
    """The raw files of the `data` params' dataset, in `folder`; their manifest."""
    dataset, source, sha256 = check_params(params)
    spec = SOURCES[dataset]
    if dataset == "imagefolder":
        files = [fetch_imagefolder(source, sha256, folder)]
    else:
        if source:
            fetch_from(spec, source, folder)
        else:
            fetch_official(spec, folder)
        files = [file.name for file in spec.files]
    return {"dataset": dataset, "format": spec.format, "files": files, "classes": list(spec.classes)}
