"""Decode the raw dataset files into uint8 image arrays and integer labels.

Three formats: the CIFAR-10 binary archive, IDX files (Fashion-MNIST) and image folders
(`train/<class>/*`, `test/<class>/*`, PNG or JPEG) as a directory, zip or tar archive.
Archives are read in memory, never extracted, and members with absolute or `..` paths
or links are refused, so nothing can be written outside the data folder. Sizes are
bounded before anything is decompressed or decoded (MAX_MEMBER_BYTES, MAX_RATIO,
MAX_TOTAL_BYTES, MAX_DECODED_BYTES), so an archive bomb is refused, not unpacked.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import stat
import struct
import tarfile
import zipfile
import zlib
from collections.abc import Iterator
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from functools import partial
from pathlib import Path, PurePosixPath

import numpy as np
from PIL import Image, UnidentifiedImageError

from widthdepth.stage import StageError

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg")
CIFAR10_RECORD = 1 + 32 * 32 * 3  # label byte, then the red, green and blue planes
DECODE_CHUNK = 4096  # images per task of the decoding pool
CIFAR10_TRAIN = tuple(f"data_batch_{i}.bin" for i in range(1, 6))

# Bounds on what a dataset may make us hold in memory. The largest official member is
# Fashion-MNIST's training images, 47 MB unpacked; images and the CIFAR-10 batches barely
# compress, so a member that unpacks to over MAX_RATIO times its packed size is a bomb.
MAX_MEMBER_BYTES = 256 * 2**20  # one file, unpacked
MAX_RATIO = 100  # unpacked / packed, for members over RATIO_FLOOR bytes
RATIO_FLOOR = 2**20
MAX_TOTAL_BYTES = 2 * 2**30  # every file of an archive or folder, unpacked
MAX_DECODED_BYTES = 4 * 2**30  # the decoded image arrays of an image folder


@dataclass
class Splits:
    """A dataset as published: its training and test images, labels and class names."""

    x_train: np.ndarray  # uint8, N x H x W x C
    y_train: np.ndarray  # int32, N
    x_test: np.ndarray
    y_test: np.ndarray
    classes: list[str]
    name: str = ""  # the params.yaml data.dataset it came from


def read_dataset(folder: Path) -> Splits:
    """Decode the files that the `download` stage put in `folder` (see its manifest.json)."""
    manifest_path = folder / "manifest.json"
    try:
        manifest = json.loads(manifest_path.read_text())
        reader = READERS[manifest["format"]]
        files = [folder / name for name in manifest["files"]]
    except (OSError, ValueError, KeyError, TypeError) as err:
        raise StageError(f"{manifest_path}: missing or invalid ({err!r}); rerun the download stage") from err
    splits = reader(files, manifest.get("classes") or [])
    splits.name = manifest.get("dataset", "")
    for split, labels in (("train", splits.y_train), ("test", splits.y_test)):
        if len(labels) == 0:
            raise StageError(f"{folder}: the {split} split is empty")
    return splits


def check_labels(labels: np.ndarray, classes: list[str], where: str) -> None:
    if labels.size and labels.max() >= len(classes):
        raise StageError(f"{where}: label {labels.max()} is out of range for {len(classes)} classes")


# -- archives ----------------------------------------------------------------------


def iter_members(path: Path) -> Iterator[tuple[str, bytes | None]]:
    """Yield (name, bytes) for each file of a directory, zip or tar, and (name, None) for folders.

    Each file's unpacked size is checked against the bounds above before it is read."""
    budget = [MAX_TOTAL_BYTES]
    try:
        if path.is_dir():
            yield from _iter_directory(path, budget)
        elif zipfile.is_zipfile(path):
            yield from _iter_zip(path, budget)
        else:
            yield from _iter_tar(path, budget)
    except (tarfile.TarError, zipfile.BadZipFile, EOFError, zlib.error, OSError) as err:
        raise StageError(f"{path}: damaged or truncated archive ({err})") from err


def _check_size(path: Path, name: str, size: int, packed: int | None, budget: list[int]) -> None:
    """Refuse a member too large, too compressed, or past the archive's total, before reading it."""
    if size > MAX_MEMBER_BYTES:
        raise StageError(
            f"{path}: member {name} unpacks to {size:,} bytes, over the limit of {MAX_MEMBER_BYTES:,} per file"
        )
    if packed is not None and size > RATIO_FLOOR and size > MAX_RATIO * max(packed, 1):
        raise StageError(
            f"{path}: member {name} unpacks {size / max(packed, 1):,.0f} times its packed size "
            f"({size:,} from {packed:,} bytes), over the limit of {MAX_RATIO}: refused as a decompression bomb"
        )
    budget[0] -= size
    if budget[0] < 0:
        raise StageError(f"{path}: its files unpack to more than {MAX_TOTAL_BYTES:,} bytes in all (at member {name})")


def _safe_name(archive: Path, name: str) -> str:
    """The member's normalised name; refuse one that would land outside the archive's folder."""
    parts = [part for part in name.replace("\\", "/").split("/") if part not in ("", ".")]
    if name.startswith(("/", "\\")) or ".." in parts or (parts and parts[0].endswith(":")):
        raise StageError(f"{archive}: member {name!r} points outside the archive")
    return "/".join(parts)


def _iter_directory(root: Path, budget: list[int]) -> Iterator[tuple[str, bytes | None]]:
    for folder, dirs, files in os.walk(root):
        dirs.sort()
        for name in sorted(dirs) + sorted(files):
            path = Path(folder, name)
            relative = path.relative_to(root).as_posix()
            if path.is_symlink():
                raise StageError(f"{root}: member {relative!r} is a link; links are not allowed")
            if path.is_dir():
                yield relative, None
            else:
                _check_size(root, relative, path.stat().st_size, None, budget)
                yield relative, path.read_bytes()


def _iter_zip(path: Path, budget: list[int]) -> Iterator[tuple[str, bytes | None]]:
    with zipfile.ZipFile(path) as archive:
        for info in archive.infolist():
            name = _safe_name(path, info.filename)
            if stat.S_ISLNK(info.external_attr >> 16):
                raise StageError(f"{path}: member {info.filename!r} is a link; links are not allowed")
            if info.is_dir():
                yield name, None
                continue
            # zipfile reads no more than the declared size (and checks the CRC), so checking it bounds the read
            _check_size(path, info.filename, info.file_size, info.compress_size, budget)
            yield name, archive.read(info)


def _iter_tar(path: Path, budget: list[int]) -> Iterator[tuple[str, bytes | None]]:
    with tarfile.open(path, "r:*") as archive:
        for member in archive:  # streamed in order: a gzip is never seeked backwards
            name = _safe_name(path, member.name)
            if member.issym() or member.islnk():
                raise StageError(f"{path}: member {member.name!r} is a link; links are not allowed")
            if member.isdir():
                yield name, None
            elif member.isfile():
                _check_size(path, member.name, member.size, None, budget)  # the header's size is what is read
                yield name, archive.extractfile(member).read()
            else:
                raise StageError(f"{path}: member {member.name!r} is not a regular file or folder")


# -- CIFAR-10 binary -----------------------------------------------------------------


def read_cifar10_binary(files: list[Path], classes: list[str]) -> Splits:
    """The official `cifar-10-binary.tar.gz`: 3073-byte records, label then CHW pixels."""
    (archive,) = files
    wanted = {*CIFAR10_TRAIN, "test_batch.bin", "batches.meta.txt"}
    found = {PurePosixPath(name).name: data for name, data in iter_members(archive) if data is not None}
    if missing := sorted(wanted - found.keys()):
        raise StageError(f"{archive}: member {missing[0]} is missing")
    classes = [line.strip() for line in found["batches.meta.txt"].decode().splitlines() if line.strip()]

    def decode(name: str) -> tuple[np.ndarray, np.ndarray]:
        data = found[name]
        if not data or len(data) % CIFAR10_RECORD:
            raise StageError(f"{archive}: member {name} has {len(data)} bytes, not a multiple of {CIFAR10_RECORD}")
        records = np.frombuffer(data, np.uint8).reshape(-1, CIFAR10_RECORD)
        labels = records[:, 0].astype(np.int32)
        check_labels(labels, classes, f"{archive}: member {name}")
        images = records[:, 1:].reshape(-1, 3, 32, 32).transpose(0, 2, 3, 1)
        return np.ascontiguousarray(images), labels

    train = [decode(name) for name in CIFAR10_TRAIN]
    x_test, y_test = decode("test_batch.bin")
    return Splits(np.concatenate([x for x, _ in train]), np.concatenate([y for _, y in train]), x_test, y_test, classes)


# -- IDX (Fashion-MNIST) -------------------------------------------------------------


def read_idx(path: Path) -> np.ndarray:
    """An IDX file of unsigned bytes (gzipped or not) as an array of its declared shape."""
    try:
        packed = path.read_bytes()
        data = packed
        if packed[:2] == b"\x1f\x8b":
            gunzip = zlib.decompressobj(wbits=31)
            data = gunzip.decompress(packed, MAX_MEMBER_BYTES + 1)  # stops at the bound
            if len(data) > MAX_MEMBER_BYTES:
                raise StageError(f"{path}: unpacks to over {MAX_MEMBER_BYTES:,} bytes, the limit per file")
            if not gunzip.eof:
                raise EOFError("compressed file ended before the end-of-stream marker was reached")
    except (OSError, EOFError, zlib.error) as err:
        raise StageError(f"{path}: cannot read it ({err})") from err
    if len(data) < 4 or data[:3] != b"\x00\x00\x08":
        raise StageError(f"{path}: not an IDX file of unsigned bytes (magic {data[:4].hex()})")
    ndim = data[3]
    header = 4 + 4 * ndim
    shape = struct.unpack(f">{ndim}I", data[4:header]) if len(data) >= header else ()
    payload = data[header:]
    if len(shape) != ndim or len(payload) != int(np.prod(shape)):
        raise StageError(f"{path}: holds {len(payload)} bytes of data, its header promises shape {shape}")
    return np.frombuffer(payload, np.uint8).reshape(shape)


def read_idx_dataset(files: list[Path], classes: list[str]) -> Splits:
    """Four IDX files: training images and labels, then test images and labels."""
    arrays = []
    for images_path, labels_path in (files[0:2], files[2:4]):
        images, labels = read_idx(images_path), read_idx(labels_path).astype(np.int32)
        if images.ndim != 3 or labels.ndim != 1 or len(images) != len(labels):
            raise StageError(
                f"{images_path}, {labels_path}: expected N x H x W images and N labels, "
                f"got shapes {images.shape} and {labels.shape}"
            )
        check_labels(labels, classes, str(labels_path))
        arrays += [images[..., np.newaxis], labels]
    return Splits(*arrays, classes=list(classes))


# -- image folders ---------------------------------------------------------------------


def _layout(path: Path) -> tuple[dict[str, dict[str, list[tuple[str, bytes]]]], set[str]]:
    """Group members into {split: {class: [(member, bytes)]}}; also return every class folder."""
    members = [
        (name, name.split("/"), data)
        for name, data in iter_members(path)
        if not any(part.startswith(".") or part == "__MACOSX" for part in name.split("/"))
    ]
    tops = {parts[0] for _, parts, _ in members}
    strip = 1 if len(tops) == 1 and not tops & {"train", "test"} else 0  # one enclosing folder
    splits: dict[str, dict[str, list[tuple[str, bytes]]]] = {"train": {}, "test": {}}
    for name, parts, data in members:
        parts = parts[strip:]
        if not parts or parts[0] not in splits:
            continue  # a README or licence beside train/ and test/
        if data is None:
            if len(parts) == 2:
                splits[parts[0]].setdefault(parts[1], [])
            continue
        if len(parts) != 3:
            raise StageError(f"{path}: member {name}: expected train/<class>/<image> or test/<class>/<image>")
        if not parts[2].lower().endswith(IMAGE_SUFFIXES):
            raise StageError(f"{path}: member {name} is not a PNG or JPEG image")
        splits[parts[0]].setdefault(parts[1], []).append((name, data))
    for by_class in splits.values():
        for images in by_class.values():
            images.sort()  # by member name: a zip, a tar and a directory give the same arrays
    return splits, set(splits["train"]) | set(splits["test"])


def content_checksum(path: Path) -> str:
    """sha256 of an image folder's images, whatever holds them: each image's path below `train/`
    or `test/` and its bytes, in order of path. A zip, a tar and a directory of the same images
    check the same, with or without one enclosing folder; files beside train/ and test/ (a
    README) do not count."""
    splits, _ = _layout(path)
    images = sorted(
        (f"{split}/{label}/{name.rsplit('/', 1)[-1]}", data)
        for split, by_class in splits.items()
        for label, members in by_class.items()
        for name, data in members
    )
    digest = hashlib.sha256()
    for relative, data in images:
        digest.update(f"{relative}\0{len(data)}\0".encode())
        digest.update(data)
    return digest.hexdigest()


def _decode(path: Path, name: str, data: bytes) -> Image.Image:
    try:
        image = Image.open(io.BytesIO(data))
        image.load()
    except (OSError, UnidentifiedImageError, SyntaxError, ValueError) as err:
        raise StageError(f"{path}: member {name}: cannot decode image ({err})") from err
    return image


def _decode_images(path: Path, members: list[tuple[str, bytes]], like: tuple[str, int, int, str]) -> np.ndarray:
    """Decode images that must all have the size and mode of the `like` image (name, w, h, mode)."""
    like_name, width, height, mode = like
    images = np.empty((len(members), height, width, 3 if mode == "RGB" else 1), np.uint8)
    for i, (name, data) in enumerate(members):
        image = _decode(path, name, data)
        if (image.width, image.height, image.mode) != (width, height, mode):
            raise StageError(
                f"{path}: member {name} is {image.width}x{image.height} {image.mode}, "
                f"expected {width}x{height} {mode} like {like_name}"
            )
        images[i] = np.asarray(image).reshape(images.shape[1:])
    return images


def read_imagefolder(files: list[Path], classes: list[str]) -> Splits:
    """`train/<class>/<image>` and `test/<class>/<image>`; classes are the sorted folder names."""
    (path,) = files
    splits, found = _layout(path)
    classes = sorted(found)
    if not classes:
        raise StageError(f"{path}: no train/<class>/ folders found")
    for split in splits:
        for label in classes:
            if label not in splits[split]:
                raise StageError(f"{path}: class folder {split}/{label}/ is missing")
            if not splits[split][label]:
                raise StageError(f"{path}: class folder {split}/{label}/ has no images")

    first_name, first_data = splits["train"][classes[0]][0]
    first = _decode(path, first_name, first_data)
    if first.mode not in ("RGB", "L"):
        raise StageError(f"{path}: member {first_name} has mode {first.mode}; use RGB or grayscale (L) images")
    like = (first_name, first.width, first.height, first.mode)
    count = sum(len(images) for by_class in splits.values() for images in by_class.values())
    decoded = count * first.width * first.height * (3 if first.mode == "RGB" else 1)
    if decoded > MAX_DECODED_BYTES:
        raise StageError(
            f"{path}: {count:,} images of {first.width}x{first.height} {first.mode} (like {first_name}) "
            f"decode to {decoded:,} bytes, over the limit of {MAX_DECODED_BYTES:,}"
        )
    members = {split: [m for name in classes for m in splits[split][name]] for split in splits}
    labels = {
        split: np.repeat(np.arange(len(classes), dtype=np.int32), [len(splits[split][name]) for name in classes])
        for split in splits
    }
    # Decoding is Python-bound (PIL), so chunks go to one process per core.
    chunks = [chunk for split in splits for chunk in _chunks(members[split], DECODE_CHUNK)]
    with ProcessPoolExecutor(min(len(chunks), os.cpu_count() or 1)) as pool:
        decoded = list(pool.map(partial(_decode_images, path, like=like), chunks))
    n_train = len(members["train"])
    images = np.concatenate(decoded)
    return Splits(images[:n_train], labels["train"], images[n_train:], labels["test"], classes)


def _chunks(items: list, size: int) -> list[list]:
    return [items[start : start + size] for start in range(0, len(items), size)]


READERS = {"cifar10_binary": read_cifar10_binary, "idx": read_idx_dataset, "imagefolder": read_imagefolder}
