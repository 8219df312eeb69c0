"""`dvc repro` on a copy of this repository, pointed at a small image-folder dataset."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import yaml

from tests import builders
from tests.conftest import ROOT

PIPELINE_FILES = ["dvc.yaml", "params.yaml", "stages", ".dvc/config", ".dvcignore", ".gitignore"]


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    """A git + DVC repository holding this project's pipeline and a tiny dataset."""
    repo = tmp_path / "repo"
    for name in PIPELINE_FILES:
        source, target = ROOT / name, repo / name
        target.parent.mkdir(parents=True, exist_ok=True)
        if source.is_dir():
            shutil.copytree(source, target, ignore=shutil.ignore_patterns("__pycache__"))
        else:
            shutil.copy(source, target)
    members, _ = builders.image_folder_members(["ant", "bee"], {"train": 10, "test": 3})
    archive = builders.write_zip(tmp_path / "insects.zip", members)
    edit_params(repo, data={"dataset": "imagefolder", "source": str(archive)}, prepare={"val_size": 4})
    params = yaml.safe_load((repo / "params.yaml").read_text())
    for recipe in params["recipes"].values():
        recipe.update(epochs=1, batch_size=8)
    params["models"] = {  # two tiny models instead of the study, for 8x8 images
        "tiny_alex": {"family": "alexnet", "recipe": "modern", "filters": 4, "blocks": 1, "kernels": [3]},
        "tiny_mlp": {"family": "mlp", "recipe": "notebook", "widths": [8]},
    }
    (repo / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    git = ["git", "-c", "user.name=test", "-c", "user.email=test@example.com"]
    subprocess.run(["git", "init", "-q"], cwd=repo, check=True)
    subprocess.run(["git", "add", "-A"], cwd=repo, check=True)
    subprocess.run([*git, "commit", "-qm", "pipeline"], cwd=repo, check=True)  # DVCLive needs a commit
    return repo


def edit_params(repo: Path, **sections: dict) -> None:
    """Update keys of params.yaml sections; a dotted section name reaches deeper ("models.a")."""
    path = repo / "params.yaml"
    params = yaml.safe_load(path.read_text())
    for name, values in sections.items():
        section = params
        for key in name.split("."):
            section = section[key]
        section.update(values)
    path.write_text(yaml.safe_dump(params, sort_keys=False))


def dvc(repo: Path, *args: str) -> str:
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}", "DVC_NO_ANALYTICS": "1"}
    result = subprocess.run([sys.executable, "-m", "dvc", *args], cwd=repo, env=env, capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr
    return result.stdout


def ran(output: str) -> set[str]:
    return set(re.findall(r"Running stage '([^']+)'", output))


def stale_stages(repo: Path) -> set[str]:
    return set(json.loads(dvc(repo, "status", "--json")))


def test_repro_runs_once_and_reruns_only_what_changed(repo: Path) -> None:
    output = dvc(repo, "repro")
    assert ran(output) == {"download", "prepare", "train@tiny_alex", "train@tiny_mlp", "evaluate@tiny_alex", "evaluate@tiny_mlp"}
    assert (repo / "models/tiny_alex.keras").exists() and (repo / "dvclive/tiny_mlp/metrics.json").exists()
    assert np.load(repo / "data/prepared/x_val.npy").shape == (4, 8, 8, 3)
    assert (repo / "plots/samples.png").exists()
    assert stale_stages(repo) == set()

    output = dvc(repo, "repro")
    assert "Running stage" not in output

    edit_params(repo, **{"models.tiny_alex": {"filters": 6}})
    assert stale_stages(repo) == {"train@tiny_alex"}
    assert ran(dvc(repo, "repro")) == {"train@tiny_alex", "evaluate@tiny_alex"}
    metrics = json.loads(dvc(repo, "metrics", "show", "--json"))
    shown = next(iter(metrics.values()))["data"]
    assert {"metrics/tiny_alex.json", "metrics/tiny_mlp.json", "dvclive/tiny_alex/metrics.json"} <= set(shown)

    edit_params(repo, prepare={"val_size": 6})
    assert stale_stages(repo) == {"prepare"}  # training follows once prepare's output changes
    output = dvc(repo, "repro")
    assert "Running stage 'download'" not in output and "Running stage 'prepare'" in output
    assert "Running stage 'train@tiny_mlp'" in output
    assert np.load(repo / "data/prepared/x_val.npy").shape == (6, 8, 8, 3)

    members, _ = builders.image_folder_members(["ant", "bee", "wasp"], {"train": 10, "test": 3})
    other = builders.write_zip(repo.parent / "more-insects.zip", members)
    edit_params(repo, data={"source": str(other)})
    assert stale_stages(repo) == {"download"}  # prepare follows once download's output changes
    output = dvc(repo, "repro")
    assert "Running stage 'download'" in output and "Running stage 'prepare'" in output
    assert json.loads((repo / "data/prepared/dataset.json").read_text())["classes"] == ["ant", "bee", "wasp"]
