"""Each stage depends on exactly the project files it runs; the resume key follows the code; the runtime defaults."""

from __future__ import annotations

import hashlib
import os
import re
from pathlib import Path

import pytest
import yaml

from tests.conftest import ROOT
from widthdepth import provenance, runtime
from widthdepth.stage import StageError


def declared_stages() -> dict[str, dict]:
    """Each stage of dvc.yaml: its module (from `python -m stages.<x>`) and its deps."""
    stages = yaml.safe_load((ROOT / "dvc.yaml").read_text())["stages"]
    return {name: stage.get("do", stage) for name, stage in stages.items()}


@pytest.mark.parametrize("name", list(declared_stages()))
def test_dvc_yaml_deps_are_exactly_the_files_the_stage_imports(name: str) -> None:
    stage = declared_stages()[name]
    module = re.match(r"python -m (stages\.\w+) ", stage["cmd"]).group(1)
    declared = {dep for dep in stage["deps"] if dep.endswith(".py")}
    assert declared == {str(path) for path in provenance.project_imports(module)}


def test_editing_the_data_readers_retrains_no_model() -> None:
    train_deps = {str(p) for p in provenance.project_imports("stages.train")}
    assert "widthdepth/data/readers.py" not in train_deps and "widthdepth/metrics.py" not in train_deps
    assert "widthdepth/training/loop.py" in train_deps  # imported inside main(): still found


def test_imports_are_found_transitively_with_package_inits(tmp_path: Path) -> None:
    (tmp_path / "pkg" / "sub").mkdir(parents=True)
    (tmp_path / "pkg" / "__init__.py").write_text("")
    (tmp_path / "pkg" / "sub" / "__init__.py").write_text("from . import leaf\n")
    (tmp_path / "pkg" / "sub" / "leaf.py").write_text("import json\nfrom ..other import thing\n")
    (tmp_path / "pkg" / "other.py").write_text("thing = 1\n")
    (tmp_path / "pkg" / "unused.py").write_text("")
    (tmp_path / "main.py").write_text("def main():\n    from pkg.sub import leaf\n")
    found = [str(p) for p in provenance.project_imports("main", tmp_path)]
    assert found == ["main.py", "pkg/__init__.py", "pkg/other.py", "pkg/sub/__init__.py", "pkg/sub/leaf.py"]


def test_the_source_digest_changes_with_any_imported_file(tmp_path: Path) -> None:
    (tmp_path / "main.py").write_text("import helper\n")
    (tmp_path / "helper.py").write_text("MESSAGE = 'a'\n")
    (tmp_path / "other.py").write_text("")
    before = provenance.source_digest("main", tmp_path)
    (tmp_path / "other.py").write_text("changed = True\n")
    assert provenance.source_digest("main", tmp_path) == before
    (tmp_path / "helper.py").write_text("MESSAGE = 'b'\n")
    assert provenance.source_digest("main", tmp_path) != before


def test_runtime_sets_the_fast_defaults_unless_the_user_exported_one(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("KERAS_BACKEND", "tensorflow")  # restored after the test
    monkeypatch.delenv("TF_ENABLE_ONEDNN_OPTS", raising=False)
    monkeypatch.delenv("WIDTHDEPTH_FUSED_BATCH_NORM", raising=False)
    assert runtime.configure("tensorflow") == {
        "backend": "tensorflow",
        "TF_ENABLE_ONEDNN_OPTS": "1",
        "WIDTHDEPTH_FUSED_BATCH_NORM": "1",
    }
    monkeypatch.setenv("TF_ENABLE_ONEDNN_OPTS", "0")
    monkeypatch.setenv("WIDTHDEPTH_FUSED_BATCH_NORM", "0")
    assert runtime.configure("tensorflow") == {
        "backend": "tensorflow",
        "TF_ENABLE_ONEDNN_OPTS": "0",
        "WIDTHDEPTH_FUSED_BATCH_NORM": "0",
    }
    assert os.environ["KERAS_BACKEND"] == "tensorflow"


def test_an_unknown_backend_names_the_params_key() -> None:
    with pytest.raises(
        StageError, match=r"^params.yaml: train.backend must be one of tensorflow, jax, torch, not 'theano'$"
    ):
        runtime.configure("theano")


def test_the_committed_dvc_lock_records_the_code_at_head() -> None:
    """The committed results were computed by the code as it is: every code dep's hash in dvc.lock matches the file."""
    locked = yaml.safe_load((ROOT / "dvc.lock").read_text())["stages"]
    declared = declared_stages()
    for stage, entry in locked.items():
        code = {dep["path"]: dep["md5"] for dep in entry["deps"] if dep["path"].endswith(".py")}
        assert set(code) == set(dep for dep in declared[stage.split("@")[0]]["deps"] if dep.endswith(".py")), stage
        for path, md5 in code.items():
            assert hashlib.md5((ROOT / path).read_bytes()).hexdigest() == md5, (
                f"{stage}: {path} changed since dvc.lock was written"
            )


def test_the_sync_tool_writes_each_stage_s_code_deps_from_its_imports() -> None:
    from tools import sync_dvc_yaml

    current = (ROOT / "dvc.yaml").read_text()
    stale = current.replace("        - widthdepth/training/loop.py\n", "").replace(
        "      - widthdepth/study.py\n", "      - widthdepth/gone.py\n"
    )
    assert stale != current and sync_dvc_yaml.with_code_deps(stale) == sync_dvc_yaml.with_code_deps(current) == current
