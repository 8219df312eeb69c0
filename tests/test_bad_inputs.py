"""Each bad input stops its stage with a message naming the culprit, and writes nothing."""

from __future__ import annotations

import io
import os
import stat
import subprocess
import sys
import tarfile
import zipfile
from dataclasses import replace
from pathlib import Path

import pytest

from tests import builders
from tests.conftest import ROOT, run_stage, write_params
from widthdepth.data import download
from widthdepth.stage import StageError


def expect_failure(match: str) -> None:
    """Run download, then prepare: one must fail with `match`, leaving no output of its own."""
    stage = "download"
    with pytest.raises(StageError, match=match):
        run_stage("download", "data/raw")
        stage = "prepare"
        run_stage("prepare", "data/raw", "data/prepared")
    unwritten = ["data/prepared"] + (["data/raw"] if stage == "download" else [])
    assert not [path for path in unwritten if Path(path).exists()], f"{stage} wrote an output"
    assert not list(Path().rglob(".*.tmp-*")), "temporary files left behind"


def imagefolder(workdir: Path, members: dict[str, bytes], **data) -> Path:
    archive = builders.write_zip(workdir / "images.zip", members)
    write_params(data={"dataset": "imagefolder", "sources": [str(archive)], **data}, prepare={"val_size": 2})
    return archive


def good_members() -> dict[str, bytes]:
    return builders.image_folder_members(["cat", "dog"], {"train": 3, "test": 1})[0]


def test_wrong_checksum(workdir: Path) -> None:
    imagefolder(workdir, good_members(), sha256="0" * 64)
    expect_failure(r"images.zip: its images check as [0-9a-f]{64}, not data.sha256 0{64}")


def test_truncated_archive(workdir: Path) -> None:
    archive = workdir / "cifar-10-binary.tar.gz"
    builders.write_cifar10_binary(archive)
    archive.write_bytes(archive.read_bytes()[: archive.stat().st_size // 2])
    write_params(data={"sources": [str(workdir)]})
    expect_failure(r"cifar-10-binary.tar.gz: damaged or truncated archive")


def test_truncated_zip(workdir: Path) -> None:
    archive = imagefolder(workdir, good_members())
    archive.write_bytes(archive.read_bytes()[:-100])
    expect_failure(r"images.zip: damaged or truncated archive")


def test_tar_member_outside_the_archive(workdir: Path) -> None:
    members = good_members()
    archive = builders.write_tar(
        workdir / "images.tar.gz", {**members, "train/cat/../../../evil.png": members["train/cat/0000.png"]}
    )
    write_params(data={"dataset": "imagefolder", "sources": [str(archive)]})
    expect_failure(r"images.tar.gz: member 'train/cat/../../../evil.png' points outside the archive")
    assert not (workdir.parent / "evil.png").exists()


def test_absolute_zip_member(workdir: Path) -> None:
    members = good_members()
    imagefolder(workdir, {**members, "/tmp/evil.png": members["train/cat/0000.png"]})
    expect_failure(r"member '/tmp/evil.png' points outside the archive")


def test_tar_symlink_member(workdir: Path) -> None:
    archive = builders.write_tar(workdir / "images.tar.gz", good_members())
    with tarfile.open(archive, "r:gz") as source:
        members = [(m, source.extractfile(m).read()) for m in source.getmembers()]
    link = tarfile.TarInfo("train/cat/link.png")
    link.type, link.linkname = tarfile.SYMTYPE, "/etc/passwd"
    with tarfile.open(archive, "w:gz") as target:
        for member, data in members:
            target.addfile(member, io.BytesIO(data))
        target.addfile(link)
    write_params(data={"dataset": "imagefolder", "sources": [str(archive)]})
    expect_failure(r"member 'train/cat/link.png' is a link")


def test_zip_symlink_member(workdir: Path) -> None:
    archive = builders.write_zip(workdir / "images.zip", good_members())
    with zipfile.ZipFile(archive, "a") as target:
        info = zipfile.ZipInfo("train/dog/link.png")
        info.external_attr = (stat.S_IFLNK | 0o777) << 16
        target.writestr(info, "/etc/passwd")
    write_params(data={"dataset": "imagefolder", "sources": [str(archive)]})
    expect_failure(r"member 'train/dog/link.png' is a link")


def test_symlink_in_image_directory(workdir: Path) -> None:
    folder = builders.write_tree(workdir / "images", good_members())
    os.symlink("/etc/passwd", folder / "train" / "cat" / "link.png")
    write_params(data={"dataset": "imagefolder", "sources": [str(folder)]})
    expect_failure(r"link.png' is a link; links are not allowed")


def test_missing_class_folder(workdir: Path) -> None:
    members = {name: data for name, data in good_members().items() if not name.startswith("test/dog/")}
    imagefolder(workdir, members)
    expect_failure(r"images.zip: class folder test/dog/ is missing")


def test_empty_class_folder(workdir: Path) -> None:
    archive = imagefolder(workdir, good_members())
    with zipfile.ZipFile(archive, "a") as target:
        target.writestr("train/emu/", b"")
        target.writestr("test/emu/", b"")
    expect_failure(r"class folder train/emu/ has no images")


def test_corrupt_image(workdir: Path) -> None:
    members = good_members()
    members["train/dog/0004.png"] = members["train/dog/0004.png"][:40]
    imagefolder(workdir, members)
    expect_failure(r"member train/dog/0004.png: cannot decode image")


def test_image_of_the_wrong_size(workdir: Path) -> None:
    members = good_members()
    members["test/dog/0001.png"] = builders.png_bytes(builders.random_images(1, (9, 8, 3), seed=0)[0])
    imagefolder(workdir, members)
    expect_failure(r"member test/dog/0001.png is 8x9 RGB, expected 8x8 RGB like train/cat/0000.png")


def test_image_of_the_wrong_mode(workdir: Path) -> None:
    members = good_members()
    members["train/cat/0001.png"] = builders.png_bytes(builders.random_images(1, (8, 8, 1), seed=0)[0])
    imagefolder(workdir, members)
    expect_failure(r"member train/cat/0001.png is 8x8 L, expected 8x8 RGB")


def test_label_out_of_range(workdir: Path) -> None:
    archive = workdir / "cifar-10-binary.tar.gz"
    builders.write_cifar10_binary(archive)
    with tarfile.open(archive, "r:gz") as source:
        members = {m.name: source.extractfile(m).read() for m in source.getmembers()}
    batch = bytearray(members["cifar-10-batches-bin/data_batch_3.bin"])
    batch[0] = 12
    members["cifar-10-batches-bin/data_batch_3.bin"] = bytes(batch)
    builders.write_tar(archive, members)
    write_params(data={"sources": [str(workdir)]})
    expect_failure(r"member data_batch_3.bin: label 12 is out of range for 10 classes")


def test_unknown_dataset_name(workdir: Path) -> None:
    write_params(data={"dataset": "cifar100"})
    expect_failure(r"data.dataset must be one of cifar10, fashion_mnist, imagefolder, not 'cifar100'")


@pytest.mark.parametrize("val_size", ["ten", None, True, 1.5, 0, 500])
def test_bad_validation_size(workdir: Path, val_size) -> None:
    builders.write_cifar10_binary(workdir / "cifar-10-binary.tar.gz")
    write_params(data={"sources": [str(workdir)]}, prepare={"val_size": val_size})
    expect_failure(r"prepare\.val_size")


def test_failure_keeps_earlier_outputs(workdir: Path) -> None:
    """A failing prepare leaves the previous good outputs in place."""
    builders.write_cifar10_binary(workdir / "cifar-10-binary.tar.gz")
    write_params(data={"sources": [str(workdir)]})
    run_stage("download", "data/raw")
    run_stage("prepare", "data/raw", "data/prepared")
    before = {p: p.read_bytes() for p in Path("data/prepared").iterdir()}
    write_params(data={"sources": [str(workdir)]}, prepare={"val_size": "ten"})
    with pytest.raises(StageError):
        run_stage("prepare", "data/raw", "data/prepared")
    assert {p: p.read_bytes() for p in before} == before


def test_command_line_error_is_one_clear_line(workdir: Path) -> None:
    write_params(data={"dataset": "mnist"})
    result = subprocess.run(
        [sys.executable, "-m", "stages.download", "data/raw"],
        capture_output=True,
        text=True,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )
    assert result.returncode == 1
    assert (
        result.stderr.strip()
        == "error: params.yaml: data.dataset must be one of cifar10, fashion_mnist, imagefolder, not 'mnist'"
    )
    assert not Path("data/raw").exists()


def test_offline_without_a_mirror(workdir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    official = download.SOURCES["cifar10"]
    unreachable = replace(official.files[0], url="http://127.0.0.1:9/cifar-10-binary.tar.gz")
    monkeypatch.setitem(download.SOURCES, "cifar10", replace(official, files=(unreachable,)))
    monkeypatch.setattr("widthdepth.data.fetch.RETRY_DELAYS", (0.0,))
    write_params()
    expect_failure(
        r"cannot download http://127.0.0.1:9/cifar-10-binary.tar.gz: .* DATASET_MIRROR, "
        r"or list a local copy in data.sources"
    )
