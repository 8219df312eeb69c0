"""Where the datasets come from: official URLs, file names and checksums."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class RemoteFile:
    name: str
    url: str
    checksum: str  # "md5:<hex>" or "sha256:<hex>"
    # Checksum of the gunzipped payload: Debian recompresses the official .gz files,
    # so only the payload is the same everywhere.
    checksum_of_payload: bool = False


@dataclass(frozen=True)
class Source:
    format: str  # the reader in widthdepth/data/readers.py that decodes it
    mirror_dir: str  # the folder name used by Keras' cache and /usr/share/datasets
    files: tuple[RemoteFile, ...]
    classes: tuple[str, ...] = ()  # empty: the archive itself names its classes


CIFAR10_URL = "https://www.cs.toronto.edu/~kriz/"
FASHION_MNIST_URL = "http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/"

SOURCES: dict[str, Source] = {
    "cifar10": Source(
        format="cifar10_binary",
        mirror_dir="cifar10",
        files=(
            RemoteFile(
                "cifar-10-binary.tar.gz",
                CIFAR10_URL + "cifar-10-binary.tar.gz",
                "md5:c32a1d4ab5d03f1284b67883e8d87530",
            ),
        ),
    ),
    "fashion_mnist": Source(
        format="idx",
        mirror_dir="fashion-mnist",
        files=tuple(
            RemoteFile(name, FASHION_MNIST_URL + name, "sha256:" + digest, checksum_of_payload=True)
            for name, digest in (
                ("train-images-idx3-ubyte.gz", "c59f468a2f672dc815687fe0f83887768d799fd8a3f3276145d20f83aa44d888"),
                ("train-labels-idx1-ubyte.gz", "bad3541b69d912435c50bb6ba87bec294ff4f6a2e1246121d8633921760443d9"),
                ("t10k-images-idx3-ubyte.gz", "5b4141f0afbad91edebe8549f8fcffe087ea10ca49f1dbef5c9a5cd8815ce37b"),
                ("t10k-labels-idx1-ubyte.gz", "0402a96d92fd2663957122ceb108a494c5af83dab82d92729df917d7dec38c34"),
            )
        ),
        classes=(
            "T-shirt/top",
            "Trouser",
            "Pullover",
            "Dress",
            "Coat",
            "Sandal",
            "Shirt",
            "Sneaker",
            "Bag",
            "Ankle boot",
        ),
    ),
    # A user's own images: data.sources lists where the folder or archive is, data.sha256 checks its images.
    "imagefolder": Source(format="imagefolder", mirror_dir="", files=()),
}
