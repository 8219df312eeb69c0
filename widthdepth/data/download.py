"""Put a dataset's raw files into one folder, verified.

`data.sources` lists places to fetch from, tried in order; a place that fails or whose
files do not check is named in the log and the next is tried. An image folder is checked
by the content of its images (`data.sha256`, widthdepth.data.readers.content_checksum),
so a copy zipped another way checks the same. The official datasets (`data.sha256` does
not apply) come from a listed folder or base URL holding their files, taken as they are,
else from local mirrors (DATASET_MIRROR, Keras' cache, /usr/share/datasets) or their
official URLs, checked against their published checksums.
"""

from __future__ import annotations

import logging
import os
import shutil
import urllib.parse
from pathlib import Path
from typing import Any

from widthdepth.data.fetch import copy_verified, download, find_in_mirrors
from widthdepth.data.readers import content_checksum
from widthdepth.data.sources import SOURCES, Source
from widthdepth.params import Data
from widthdepth.stage import StageError, remove

log = logging.getLogger("download")

ARCHIVE_SUFFIXES = (".zip", ".tar", ".tar.gz", ".tgz")


def is_url(place: str) -> bool:
    return urllib.parse.urlparse(place).scheme in ("http", "https", "ftp", "file")


def fetch_official(spec: Source, folder: Path) -> None:
    for file in spec.files:
        mirror = find_in_mirrors(file.name, spec.mirror_dir, file.checksum, payload=file.checksum_of_payload)
        if mirror:
            log.info("using %s", mirror)
            copy_verified(mirror, folder / file.name)
        else:
            download(file.url, folder / file.name, file.checksum, payload=file.checksum_of_payload)


def fetch_official_from(spec: Source, place: str, folder: Path) -> None:
    """The official file names, from a folder or base URL the user named (not checked against the
    published checksums: it may hold another build of the same files)."""
    log.warning("data.sources: %s is not checked against the official checksums", place)
    for file in spec.files:
        if is_url(place):
            download(urllib.parse.urljoin(place.rstrip("/") + "/", file.name), folder / file.name)
        else:
            copy_verified(Path(place) / file.name, folder / file.name)


def copy_image_tree(src: Path, dest: Path) -> None:
    """Copy a directory of images, refusing links, which could point outside it."""
    for root, dirs, files in os.walk(src):
        for name in dirs + files:
            if os.path.islink(os.path.join(root, name)):
                raise StageError(f"{os.path.join(root, name)}: links are not allowed in an image folder")
    shutil.copytree(src, dest)


def fetch_imagefolder(place: str, folder: Path) -> str:
    """Copy or download the image folder or archive at `place`; return its name inside `folder`."""
    if is_url(place):
        name = Path(urllib.parse.urlparse(place).path).name
        if not name.endswith(ARCHIVE_SUFFIXES):
            raise StageError(f"{place} is not a {'/'.join(ARCHIVE_SUFFIXES)} archive")
        download(place, folder / name)
        return name
    path = Path(place).expanduser()
    if path.is_dir():
        copy_image_tree(path, folder / "images")
        return "images"
    if not path.exists():
        raise StageError(f"{place}: no such file or directory")
    if not path.name.endswith(ARCHIVE_SUFFIXES):
        raise StageError(f"{place} is not a directory or a {'/'.join(ARCHIVE_SUFFIXES)} archive")
    copy_verified(path, folder / path.name)
    return path.name


def checked_imagefolder(place: str, sha256: str | None, folder: Path) -> tuple[str, str]:
    """The image folder at `place` in `folder`, if its images check as `sha256` (any, if None);
    its name there and its content checksum. A local place is checked before it is copied."""
    local = None if is_url(place) else Path(place).expanduser()
    if local is not None and not local.exists():
        raise StageError(f"{place}: no such file or directory")
    actual = content_checksum(local) if local is not None else None
    name = fetch_imagefolder(place, folder)
    try:
        actual = actual or content_checksum(folder / name)
        if sha256 is not None and actual != sha256:
            raise StageError(f"{place}: its images check as {actual}, not data.sha256 {sha256}")
    except StageError:
        remove(folder / name)
        raise
    if sha256 is None:
        log.warning("data.sha256 is not set: %s is taken as it is; its images check as %s", place, actual)
    return name, actual


def download_dataset(data: Data, folder: Path) -> dict[str, Any]:
    """The raw files of the `data` params' dataset, in `folder`, from the first of its sources
    that gives them; their manifest."""
    spec = SOURCES[data.dataset]
    manifest = {"dataset": data.dataset, "format": spec.format, "classes": list(spec.classes)}
    failures = []
    for place in data.sources:
        try:
            if data.dataset == "imagefolder":
                name, checksum = checked_imagefolder(place, data.sha256, folder)
                return {**manifest, "files": [name], "source": place, "sha256": checksum}
            fetch_official_from(spec, place, folder)
            return {**manifest, "files": [file.name for file in spec.files], "source": place}
        except StageError as err:
            if place != data.sources[-1] or data.dataset != "imagefolder":  # else the error below says it
                log.warning("data.sources: %s; trying the next place", err)
            failures.append(str(err))
            for leftover in folder.iterdir():
                remove(leftover)
    if data.dataset != "imagefolder":
        fetch_official(spec, folder)
        return {**manifest, "files": [file.name for file in spec.files]}
    if len(failures) == 1:
        raise StageError(failures[0])
    raise StageError(f"params.yaml: data.sources: no place gave the image folder ({'; '.join(failures)})")
