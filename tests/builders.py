"""Small datasets written in the real file formats, with the arrays they hold."""

from __future__ import annotations

import gzip
import io
import struct
import tarfile
import zipfile
from pathlib import Path

import numpy as np
from PIL import Image

from widthdepth import layout

CIFAR10_CLASSES = ["airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck"]


def random_images(n: int, shape: tuple[int, ...], seed: int) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, (n, *shape), dtype=np.uint8)


def balanced_labels(n: int, n_classes: int, seed: int) -> np.ndarray:
    return np.random.default_rng(seed).permutation(np.arange(n) % n_classes).astype(np.int32)


def add_tar_member(archive: tarfile.TarFile, name: str, data: bytes) -> None:
    info = tarfile.TarInfo(name)
    info.size = len(data)
    archive.addfile(info, io.BytesIO(data))


def write_cifar10_binary(path: Path, per_batch: int = 20, n_test: int = 30) -> dict[str, np.ndarray]:
    """A cifar-10-binary.tar.gz with five training batches and a test batch."""
    arrays: dict[str, list[np.ndarray]] = {"x_train": [], "y_train": []}
    with tarfile.open(path, "w:gz") as archive:
        add_tar_member(archive, "cifar-10-batches-bin/batches.meta.txt", ("\n".join(CIFAR10_CLASSES) + "\n\n").encode())
        for i, name in enumerate([f"data_batch_{b}.bin" for b in range(1, 6)] + ["test_batch.bin"]):
            n = n_test if name == "test_batch.bin" else per_batch
            images, labels = random_images(n, (32, 32, 3), seed=i), balanced_labels(n, 10, seed=i)
            records = np.concatenate(
                [labels[:, None].astype(np.uint8), images.transpose(0, 3, 1, 2).reshape(n, -1)], axis=1
            )
            add_tar_member(archive, f"cifar-10-batches-bin/{name}", records.tobytes())
            if name == "test_batch.bin":
                arrays["x_test"], arrays["y_test"] = [images], [labels]
            else:
                arrays["x_train"].append(images)
                arrays["y_train"].append(labels)
    return {key: np.concatenate(value) for key, value in arrays.items()}


def idx_bytes(array: np.ndarray) -> bytes:
    return b"\x00\x00\x08" + bytes([array.ndim]) + struct.pack(f">{array.ndim}I", *array.shape) + array.tobytes()


FASHION_FILES = [
    "train-images-idx3-ubyte.gz",
    "train-labels-idx1-ubyte.gz",
    "t10k-images-idx3-ubyte.gz",
    "t10k-labels-idx1-ubyte.gz",
]


def write_fashion_mnist(folder: Path, n_train: int = 60, n_test: int = 20, mtime: int = 0) -> dict[str, np.ndarray]:
    """The four gzipped IDX files; `mtime` changes the gzip header but not the payload."""
    arrays = {
        "x_train": random_images(n_train, (28, 28), seed=1),
        "y_train": balanced_labels(n_train, 10, seed=1),
        "x_test": random_images(n_test, (28, 28), seed=2),
        "y_test": balanced_labels(n_test, 10, seed=2),
    }
    folder.mkdir(parents=True, exist_ok=True)
    for name, key in zip(FASHION_FILES, arrays):
        payload = idx_bytes(arrays[key].astype(np.uint8))
        (folder / name).write_bytes(gzip.compress(payload, mtime=mtime))
    return arrays


def png_bytes(image: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(image.squeeze(-1) if image.shape[-1] == 1 else image).save(buffer, format="PNG")
    return buffer.getvalue()


def image_folder_members(classes: list[str], per_class: dict[str, int], shape=(8, 8, 3), seed: int = 0):
    """{member name: PNG bytes} for train/<class>/ and test/<class>/, and the arrays in reading order."""
    members, arrays = {}, {}
    for s, split in enumerate(("train", "test")):
        images = random_images(per_class[split] * len(classes), shape, seed=seed + s)
        labels = np.repeat(np.arange(len(classes), dtype=np.int32), per_class[split])
        for i, (image, label) in enumerate(zip(images, labels)):
            members[f"{split}/{classes[label]}/{i:04d}.png"] = png_bytes(image)
        arrays[f"x_{split}"], arrays[f"y_{split}"] = images, labels
    return members, arrays


def write_zip(path: Path, members: dict[str, bytes], top: str = "") -> Path:
    with zipfile.ZipFile(path, "w") as archive:
        for name, data in members.items():
            archive.writestr(top + name, data)
    return path


def write_tar(path: Path, members: dict[str, bytes], top: str = "") -> Path:
    with tarfile.open(path, "w:gz") as archive:
        for name, data in members.items():
            add_tar_member(archive, top + name, data)
    return path


def write_tree(folder: Path, members: dict[str, bytes]) -> Path:
    for name, data in members.items():
        (folder / name).parent.mkdir(parents=True, exist_ok=True)
        (folder / name).write_bytes(data)
    return folder


def write_prepared(folder: Path, shape=(32, 32, 3), n_classes: int = 3, n_train: int = 60, n_val: int = 12) -> dict:
    """What the prepare stage writes, for random images: arrays and dataset.json."""
    folder.mkdir(parents=True, exist_ok=True)
    classes = [f"class{i}" for i in range(n_classes)]
    splits = {
        split: (random_images(n, shape, seed), balanced_labels(n, n_classes, seed))
        for split, n, seed in (("train", n_train, 0), ("val", n_val, 1), ("test", n_val, 2))
    }
    info = {
        "dataset": "synthetic",
        "classes": classes,
        "image_shape": list(shape),
        "mean": [127.5] * shape[-1],
        "std": [73.9] * shape[-1],
        "sha256": f"synthetic-{n_train}-{shape}",
    }
    layout.save_prepared(folder, splits, info)
    return info
