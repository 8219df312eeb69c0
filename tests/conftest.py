from __future__ import annotations

import importlib
import sys
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]

DEFAULT_PARAMS = {
    "data": {"dataset": "cifar10", "sources": [], "sha256": None},
    "prepare": {"val_size": 10, "seed": 0},
}


@pytest.fixture
def workdir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """An empty working directory with no mirrors: stages run here as DVC would run them."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("DATASET_MIRROR", "")
    monkeypatch.setattr("widthdepth.data.fetch.SYSTEM_MIRRORS", ())
    return tmp_path


def write_params(**sections: dict) -> None:
    params = {name: dict(values) for name, values in DEFAULT_PARAMS.items()}
    for name, values in sections.items():
        params.setdefault(name, {}).update(values)
    Path("params.yaml").write_text(yaml.safe_dump(params))


def run_stage(stage: str, *args: str) -> None:
    """Run stages/<stage>.py's main() in this process with the given command line, as `dvc repro` would
    (errors come as StageError rather than an exit status, for the tests to read)."""
    main = importlib.import_module(f"stages.{stage}").main
    argv = sys.argv
    sys.argv = [f"stages/{stage}.py", *map(str, args)]
    try:
        main()
    finally:
        sys.argv = argv
