"""The download and prepare stages on small datasets in each real format."""

from __future__ import annotations

import gzip
import hashlib
import json
from pathlib import Path

import numpy as np
import pytest

from tests import builders
from tests.conftest import run_stage, write_params
from widthdepth.data import download, readers, sources, split
from widthdepth.params import Prepare, parse
from widthdepth.stage import StageError


def prepared() -> dict[str, np.ndarray]:
    return {path.stem: np.load(path) for path in Path("data/prepared").glob("*.npy")}


def run_pipeline() -> dict[str, np.ndarray]:
    run_stage("download", "data/raw")
    run_stage("prepare", "data/raw", "data/prepared")
    return prepared()


def assert_split_of(expected: dict[str, np.ndarray], got: dict[str, np.ndarray]) -> None:
    """train + val is exactly the published training set; test is the published test set."""
    np.testing.assert_array_equal(got["x_test"], expected["x_test"])
    np.testing.assert_array_equal(got["y_test"], expected["y_test"])
    x = np.concatenate([got["x_train"], got["x_val"]])
    y = np.concatenate([got["y_train"], got["y_val"]])
    order = np.lexsort(x.reshape(len(x), -1).T)
    expected_order = np.lexsort(expected["x_train"].reshape(len(x), -1).T)
    np.testing.assert_array_equal(x[order], expected["x_train"][expected_order])
    np.testing.assert_array_equal(y[order], expected["y_train"][expected_order])


def test_cifar10_binary_from_file_url(workdir: Path) -> None:
    expected = builders.write_cifar10_binary(workdir / "cifar-10-binary.tar.gz", per_batch=20, n_test=30)
    write_params(data={"sources": [workdir.as_uri()]}, prepare={"val_size": 20, "seed": 3})
    got = run_pipeline()

    assert_split_of(expected, got)
    assert got["x_train"].shape == (80, 32, 32, 3) and got["x_train"].dtype == np.uint8
    assert got["y_train"].dtype == np.int32
    info = json.loads(Path("data/prepared/dataset.json").read_text())
    assert info["classes"] == builders.CIFAR10_CLASSES
    assert info["image_shape"] == [32, 32, 3]
    assert {split: info["splits"][split]["count"] for split in info["splits"]} == {"train": 80, "val": 20, "test": 30}
    assert list(info["splits"]["val"]["per_class"].values()) == [2] * 10  # 100 images, 10 per class
    pixels = got["x_train"].reshape(-1, 3).astype(np.float64)  # training part only
    np.testing.assert_allclose(info["mean"], pixels.mean(axis=0), atol=1e-6)
    np.testing.assert_allclose(info["std"], pixels.std(axis=0), atol=1e-6)
    digest = hashlib.sha256()
    for name in ("x_train", "y_train", "x_val", "y_val", "x_test", "y_test"):
        digest.update(got[name].data)
    assert info["sha256"] == digest.hexdigest()


def test_official_file_found_in_mirror_by_checksum(workdir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    mirror = workdir / "mirror"
    mirror.mkdir()
    archive = mirror / "cifar-10-binary.tar.gz"
    expected = builders.write_cifar10_binary(archive)
    official = sources.SOURCES["cifar10"].files[0]
    md5 = hashlib.md5(archive.read_bytes()).hexdigest()
    fake = sources.Source(
        "cifar10_binary", "cifar10", (sources.RemoteFile(official.name, "http://127.0.0.1:9/x", f"md5:{md5}"),)
    )
    monkeypatch.setitem(download.SOURCES, "cifar10", fake)
    monkeypatch.setenv("DATASET_MIRROR", f"{workdir / 'empty'}:{mirror}")
    write_params()
    assert_split_of(expected, run_pipeline())


def test_fashion_mnist_payload_checksum_accepts_recompressed_files(
    workdir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Debian recompresses the official .gz files: the payloads, not the containers, are checked."""
    official = builders.write_fashion_mnist(workdir / "official", mtime=1)
    debian = workdir / "usr-share" / "fashion-mnist"
    builders.write_fashion_mnist(debian, mtime=2)
    assert (debian / builders.FASHION_FILES[0]).read_bytes() != (
        workdir / "official" / builders.FASHION_FILES[0]
    ).read_bytes()
    payload_sha256 = {
        name: hashlib.sha256(gzip.decompress((workdir / "official" / name).read_bytes())).hexdigest()
        for name in builders.FASHION_FILES
    }
    files = tuple(
        sources.RemoteFile(name, "http://127.0.0.1:9/" + name, f"sha256:{digest}", checksum_of_payload=True)
        for name, digest in payload_sha256.items()
    )
    monkeypatch.setitem(
        download.SOURCES,
        "fashion_mnist",
        sources.Source("idx", "fashion-mnist", files, sources.SOURCES["fashion_mnist"].classes),
    )
    monkeypatch.setattr("widthdepth.data.fetch.SYSTEM_MIRRORS", (str(workdir / "usr-share"),))
    write_params(data={"dataset": "fashion_mnist"}, prepare={"val_size": 0.25, "seed": 0})
    got = run_pipeline()

    assert_split_of({k: v[..., None] if k.startswith("x") else v for k, v in official.items()}, got)
    assert got["x_val"].shape == (15, 28, 28, 1)
    info = json.loads(Path("data/prepared/dataset.json").read_text())
    assert info["classes"][0] == "T-shirt/top" and len(info["mean"]) == 1


@pytest.mark.parametrize("container", ["zip", "tar.gz", "directory"])
def test_imagefolder_in_each_container(workdir: Path, container: str) -> None:
    classes = ["cat", "dog", "emu"]
    members, expected = builders.image_folder_members(classes, {"train": 6, "test": 2})
    top = "pets/"  # one enclosing folder is allowed
    if container == "zip":
        source = builders.write_zip(workdir / "pets.zip", members, top)
    elif container == "tar.gz":
        source = builders.write_tar(workdir / "pets.tar.gz", members, top)
    else:
        source = builders.write_tree(workdir / "pets", members)
    write_params(data={"dataset": "imagefolder", "sources": [str(source)]}, prepare={"val_size": 3, "seed": 0})
    got = run_pipeline()

    assert_split_of(expected, got)
    assert sorted(got["y_val"].tolist()) == [0, 1, 2]  # stratified: one per class
    info = json.loads(Path("data/prepared/dataset.json").read_text())
    assert info["classes"] == classes and info["image_shape"] == [8, 8, 3]


def test_imagefolder_grayscale_and_sha256(workdir: Path) -> None:
    members, expected = builders.image_folder_members(["a", "b"], {"train": 4, "test": 1}, shape=(5, 7, 1))
    archive = builders.write_zip(workdir / "gray.zip", members)
    sha256 = readers.content_checksum(archive)
    write_params(
        data={"dataset": "imagefolder", "sources": [str(archive)], "sha256": sha256}, prepare={"val_size": 2, "seed": 0}
    )
    got = run_pipeline()
    assert got["x_test"].shape == (2, 5, 7, 1)
    assert_split_of(expected, got)


def test_split_is_seeded_and_stratified() -> None:
    labels = np.repeat(np.arange(3), [50, 30, 20])
    train, val = split.stratified_split(labels, 10, seed=7)
    assert np.bincount(labels[val]).tolist() == [5, 3, 2]
    assert sorted(np.concatenate([train, val]).tolist()) == list(range(100))
    again_train, again_val = split.stratified_split(labels, 10, seed=7)
    np.testing.assert_array_equal(train, again_train)
    np.testing.assert_array_equal(val, again_val)
    assert not np.array_equal(split.stratified_split(labels, 10, seed=8)[1], val)
    # largest remainders: 7 of 100 gives 3.5, 2.1 and 1.4 -> 4, 2, 1
    assert np.bincount(labels[split.stratified_split(labels, 7, seed=0)[1]]).tolist() == [4, 2, 1]


def test_prepare_rerun_with_same_params_is_identical(workdir: Path) -> None:
    builders.write_cifar10_binary(workdir / "cifar-10-binary.tar.gz")
    write_params(data={"sources": [str(workdir)]})
    first = run_pipeline()
    run_stage("prepare", "data/raw", "data/prepared")
    for name, array in prepared().items():
        np.testing.assert_array_equal(array, first[name])


def test_prepare_limit_keeps_a_stratified_slice_of_train_and_test(workdir: Path) -> None:
    builders.write_cifar10_binary(workdir / "cifar-10-binary.tar.gz")
    write_params(data={"sources": [str(workdir)]})
    full = run_pipeline()
    write_params(data={"sources": [str(workdir)]}, prepare={"limit": 20, "val_size": 5})
    run_stage("prepare", "data/raw", "data/prepared")
    sliced = prepared()
    assert len(sliced["y_train"]) + len(sliced["y_val"]) == 20 and len(sliced["y_test"]) == 20
    for part in ("train", "test"):  # every image of the slice is one of the full set's
        full_images = {image.tobytes() for image in full[f"x_{part}"]} | {image.tobytes() for image in full["x_val"]}
        assert {image.tobytes() for image in sliced[f"x_{part}"]} <= full_images
    assert np.bincount(sliced["y_test"]).max() - np.bincount(sliced["y_test"]).min() <= 1  # each class its share


@pytest.mark.parametrize("limit", [0, -3, 2.5, True, "all"])
def test_a_bad_prepare_limit_names_the_key(limit: object) -> None:
    with pytest.raises(StageError, match=r"^params.yaml: prepare.limit must be a positive number of images, or null"):
        parse(Prepare, {"val_size": 5, "limit": limit}, "prepare")
