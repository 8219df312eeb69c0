"""Time and peak memory of the `prepare` stage on full-size CIFAR-10, in two formats.

1. The JPEG image-folder zip (shared/datasets/cifar10-jpeg.zip, or --zip PATH).
2. The official binary format: a cifar-10-binary.tar.gz rebuilt from those 60,000
   images (same record layout and size as the official archive), since the official
   file cannot be downloaded on machines without internet access.

Each stage runs as DVC runs it, in a fresh process; peak memory is the largest
resident set of its whole process tree (the decoding pool included), sampled every 20 ms.

    python benchmarks/prepare_speed.py [--zip PATH]
"""

from __future__ import annotations

import argparse
import io
import os
import sys
import tarfile
import tempfile
import time
from pathlib import Path

import numpy as np
import psutil
import yaml

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_ZIP = ROOT.parent / "shared" / "datasets" / "cifar10-jpeg.zip"


def measure(args: list[str], cwd: Path) -> tuple[float, float]:
    """Wall seconds and peak tree RSS in MB of one command."""
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    start = time.perf_counter()
    process = psutil.Popen([sys.executable, *args], cwd=cwd, env=env)
    peak = 0
    while process.poll() is None:
        try:
            tree = [process, *process.children(recursive=True)]
            peak = max(peak, sum(p.memory_info().rss for p in tree))
        except psutil.NoSuchProcess:
            pass
        time.sleep(0.02)
    if process.returncode:
        sys.exit(f"{' '.join(args)} failed with exit status {process.returncode}")
    return time.perf_counter() - start, peak / 1e6


def run_pipeline(folder: Path, data: dict) -> tuple[float, float]:
    (folder / "params.yaml").write_text(yaml.safe_dump({"data": data, "prepare": {"val_size": 5000, "seed": 0}}))
    measure(["-m", "stages.download", "data/raw"], folder)
    return measure(["-m", "stages.prepare", "data/raw", "data/prepared"], folder)


def write_cifar10_binary(prepared: Path, path: Path) -> None:
    """Official layout: five training batches of 10,000 records and a test batch."""

    def load(name: str) -> np.ndarray:
        return np.load(prepared / f"{name}.npy")

    x_train, y_train = (
        np.concatenate([load("x_train"), load("x_val")]),
        np.concatenate([load("y_train"), load("y_val")]),
    )
    batches = [(x_train[i::5], y_train[i::5]) for i in range(5)] + [(load("x_test"), load("y_test"))]
    names = [f"data_batch_{i}.bin" for i in range(1, 6)] + ["test_batch.bin"]
    classes = "airplane automobile bird cat deer dog frog horse ship truck".replace(" ", "\n") + "\n"
    with tarfile.open(path, "w:gz") as archive:
        for name, data in [("batches.meta.txt", classes.encode())] + [
            (
                name,
                np.concatenate([y[:, None].astype(np.uint8), x.transpose(0, 3, 1, 2).reshape(len(x), -1)], 1).tobytes(),
            )
            for name, (x, y) in zip(names, batches)
        ]:
            info = tarfile.TarInfo(f"cifar-10-batches-bin/{name}")
            info.size = len(data)
            archive.addfile(info, io.BytesIO(data))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--zip", type=Path, default=DEFAULT_ZIP, help="CIFAR-10 as a JPEG image-folder zip")
    zip_path = parser.parse_args().zip.resolve()
    with tempfile.TemporaryDirectory() as tmp:
        jpeg, binary = Path(tmp, "jpeg"), Path(tmp, "binary")
        binary.mkdir()
        jpeg.mkdir()
        results = {"image-folder zip (JPEG)": run_pipeline(jpeg, {"dataset": "imagefolder", "source": str(zip_path)})}
        write_cifar10_binary(jpeg / "data/prepared", binary / "cifar-10-binary.tar.gz")
        size = (binary / "cifar-10-binary.tar.gz").stat().st_size
        results[f"CIFAR-10 binary tar.gz ({size / 1e6:.0f} MB)"] = run_pipeline(
            binary, {"dataset": "cifar10", "source": str(binary)}
        )
    print(f"\nprepare on 60,000 CIFAR-10 images, {os.cpu_count()} cores")
    print("| format | wall time (s) | peak RSS of the stage's processes (MB) |\n|---|---|---|")
    for name, (seconds, megabytes) in results.items():
        print(f"| {name} | {seconds:.1f} | {megabytes:.0f} |")


if __name__ == "__main__":
    main()
