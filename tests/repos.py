"""Throwaway git + DVC repositories that hold this project's pipeline with a tiny dataset and
tiny models, and the commands tests run in them the way a user would (in a subprocess)."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import yaml

from tests import builders
from tests.conftest import ROOT
from tools import sync_dvc_yaml
from widthdepth.data import readers

PIPELINE_FILES = [
    "dvc.yaml",
    "params.yaml",
    "stages",
    "widthdepth",
    "tools",
    ".dvc/config",
    ".dvc/plots",
    ".dvcignore",
    ".gitignore",
]
TINY_ALEX = {"family": "alexnet", "recipe": "modern", "filters": 4, "blocks": 1, "kernels": [3]}
# A two-point width sweep and an mlp instead of the study, for 8x8 images.
TINY_MODELS = {
    "tiny_alex": TINY_ALEX,
    "tiny_alex_w8": {**TINY_ALEX, "filters": 8},
    "tiny_mlp": {"family": "mlp", "recipe": "notebook", "widths": [8]},
}
# Subprocesses find `dvc` and `python` of this interpreter's environment first.
ENV = {**os.environ, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}", "DVC_NO_ANALYTICS": "1"}


def pipeline_repo(folder: Path) -> Path:
    """`folder`/repo: this project's pipeline over a tiny image-folder zip (`folder`/insects.zip),
    one epoch per recipe, the tiny models; committed on branch main, not reproduced yet."""
    repo = folder / "repo"
    for name in PIPELINE_FILES:
        source, target = ROOT / name, repo / name
        target.parent.mkdir(parents=True, exist_ok=True)
        if source.is_dir():
            shutil.copytree(source, target, ignore=shutil.ignore_patterns("__pycache__"))
        else:
            shutil.copy(source, target)
    members, _ = builders.image_folder_members(["ant", "bee"], {"train": 10, "test": 3})
    archive = builders.write_zip(folder / "insects.zip", members)
    params = yaml.safe_load((repo / "params.yaml").read_text())
    params["data"].update(dataset="imagefolder", sources=[str(archive)], sha256=readers.content_checksum(archive))
    params["prepare"]["val_size"] = 4
    for recipe in params["recipes"].values():
        recipe.update(epochs=1, batch_size=8, warmup_epochs=min(recipe["warmup_epochs"], 1))
    params["models"] = TINY_MODELS
    params["report"]["primary"] = {
        "width": {"question": "Does width pay (8 against 4 filters)?", "models": ["tiny_alex_w8", "tiny_alex"]}
    }
    (repo / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    (repo / "dvc.yaml").write_text(sync_dvc_yaml.synced((repo / "dvc.yaml").read_text(), params["models"]))
    git(folder, "init", "-q", "-b", "main", str(repo))
    commit(repo, "pipeline")
    return repo


def git(repo: Path, *args: str) -> str:
    identity = ["-c", "user.name=test", "-c", "user.email=test@example.com"]
    return subprocess.run(["git", *identity, *args], cwd=repo, check=True, capture_output=True, text=True).stdout


def commit(repo: Path, message: str) -> None:
    git(repo, "add", "-A")
    git(repo, "commit", "-qm", message)


def clone(source: Path, target: Path) -> Path:
    """A separate clone, as on another machine: git only, no DVC cache, no local config."""
    git(source.parent, "clone", "-q", str(source), str(target))
    return target


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
    """Runs `dvc <args>` in `repo`; fails the test with DVC's output if it fails."""
    result = subprocess.run([sys.executable, "-m", "dvc", *args], cwd=repo, env=ENV, capture_output=True, text=True)
    assert result.returncode == 0, f"dvc {' '.join(args)}:\n{result.stdout}{result.stderr}"
    return result.stdout


def shell(repo: Path, command: str, env: dict[str, str] | None = None) -> str:
    """Runs a shell command line as a CI step would (bash, stop at the first error)."""
    result = subprocess.run(
        ["bash", "-eo", "pipefail", "-c", command], cwd=repo, env={**ENV, **(env or {})}, capture_output=True, text=True
    )
    assert result.returncode == 0, f"{command}:\n{result.stdout}{result.stderr}"
    return result.stdout


def ran(output: str) -> set[str]:
    """The stages a `dvc repro` ran (not those it restored from the run-cache)."""
    return set(re.findall(r"Running stage '([^']+)'", output))


def restored(output: str) -> set[str]:
    """The stages a `dvc repro` restored from the run-cache instead of running them."""
    return set(re.findall(r"Stage '([^']+)' is cached - skipping run", output))


def stale_stages(repo: Path) -> set[str]:
    return set(json.loads(dvc(repo, "status", "--json")))
