"""Find a file in local mirrors or download it: verified, retried, written atomically."""

from __future__ import annotations

import gzip
import hashlib
import http.client
import logging
import os
import shutil
import time
import urllib.error
import urllib.request
import zlib
from pathlib import Path

from widthdepth.stage import StageError, atomic_path

log = logging.getLogger("fetch")

CHUNK = 1 << 20
RETRY_DELAYS = (1.0, 4.0, 16.0)  # seconds before the 2nd, 3rd and 4th attempt
TIMEOUT = 60.0


# Keras' download cache, and where Debian's dataset packages install.
SYSTEM_MIRRORS = ("~/.keras/datasets", "/usr/share/datasets")


def mirror_dirs() -> list[Path]:
    """Folders searched before downloading, in order: DATASET_MIRROR's, then the system's."""
    dirs = [d for d in os.environ.get("DATASET_MIRROR", "").split(":") if d]
    return [Path(d).expanduser() for d in (*dirs, *SYSTEM_MIRRORS)]


def checksum_of(path: Path, algorithm: str, *, payload: bool = False, origin: str = "") -> str:
    """Hex digest of a file, or of its gunzipped payload; errors name `origin` (default: path)."""
    digest = hashlib.new(algorithm)
    try:
        with gzip.open(path) if payload else open(path, "rb") as stream:
            while chunk := stream.read(CHUNK):
                digest.update(chunk)
    except (OSError, EOFError, zlib.error) as err:
        raise StageError(f"{origin or path}: cannot read it ({err})") from err
    return digest.hexdigest()


def verify(path: Path, checksum: str, *, payload: bool = False, origin: str = "") -> None:
    """Raise StageError unless `path` has `checksum` ("md5:<hex>" or "sha256:<hex>").

    `origin` (default: path) is what the error names: the URL or file the bytes came from.
    """
    algorithm, _, expected = checksum.partition(":")
    actual = checksum_of(path, algorithm, payload=payload, origin=origin)
    if actual != expected.lower():
        what = "gunzipped payload" if payload else "file"
        raise StageError(f"{origin or path}: {algorithm} of the {what} is {actual}, expected {expected}")


def find_in_mirrors(name: str, mirror_dir: str, checksum: str, *, payload: bool = False) -> Path | None:
    """The first mirror copy of `name` whose checksum matches; mismatches are skipped."""
    for folder in mirror_dirs():
        for candidate in (folder / name, folder / mirror_dir / name):
            if not candidate.is_file():
                continue
            try:
                verify(candidate, checksum, payload=payload)
            except StageError as err:
                log.warning("ignoring mirror copy: %s", err)
                continue
            return candidate
    return None


def _transient(err: Exception) -> bool:
    if isinstance(err, urllib.error.HTTPError):
        return err.code >= 500 or err.code in (408, 429)
    if isinstance(err, urllib.error.URLError):
        return not isinstance(err.reason, (FileNotFoundError, IsADirectoryError, PermissionError))
    return isinstance(err, (TimeoutError, ConnectionError, http.client.HTTPException))


def _stream_to(url: str, path: Path) -> None:
    with urllib.request.urlopen(url, timeout=TIMEOUT) as response, open(path, "wb") as out:
        total = int(response.headers.get("Content-Length") or 0)
        done, start, next_report = 0, time.perf_counter(), 0.0
        while chunk := response.read(CHUNK):
            out.write(chunk)
            done += len(chunk)
            if total and done / total >= next_report or not total and done >= next_report:
                rate = done / max(time.perf_counter() - start, 1e-6) / 1e6
                of = f"{100 * done / total:3.0f}% of {total / 1e6:.1f} MB" if total else f"{done / 1e6:.1f} MB"
                log.info("%s: %s, %.1f MB/s", url, of, rate)
                next_report += 0.1 if total else 10 * CHUNK
        if total and done != total:
            raise http.client.IncompleteRead(b"", total - done)


def download(url: str, dest: Path, checksum: str | None = None, *, payload: bool = False) -> None:
    """Download `url` to `dest`, retrying transient failures.

    The bytes go to a temporary file that is verified before it is renamed to `dest`,
    so an interrupted or corrupted download never leaves a file a later run would trust.
    """
    for attempt, delay in enumerate((0.0, *RETRY_DELAYS)):
        time.sleep(delay)
        try:
            with atomic_path(dest) as tmp:
                _stream_to(url, tmp)
                if checksum:
                    verify(tmp, checksum, payload=payload, origin=url)
            return
        except (OSError, http.client.HTTPException) as err:
            if not _transient(err) or attempt == len(RETRY_DELAYS):
                raise StageError(
                    f"cannot download {url}: {err}. To work offline, put {dest.name} in a folder "
                    "and list it in DATASET_MIRROR, or list a local copy in data.sources in params.yaml"
                ) from err
            log.warning("%s: %s; retrying in %.0f s", url, err, RETRY_DELAYS[attempt])


def copy_verified(src: Path, dest: Path, checksum: str | None = None, *, payload: bool = False) -> None:
    """Copy a local file to `dest` atomically, verifying the copy."""
    if not src.is_file():
        raise StageError(f"{src}: no such file")
    with atomic_path(dest) as tmp:
        shutil.copyfile(src, tmp)
        if checksum:
            verify(tmp, checksum, payload=payload, origin=str(src))
