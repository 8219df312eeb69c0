"""Sharing results and fanning out: separate clones of a tiny study, as other machines would be,
sharing one local-folder DVC remote; the GitHub workflow's own commands; the experiment queue."""

from __future__ import annotations

import csv
import io
import json
import re
import time
from pathlib import Path

import pytest
import yaml

from tests import browser
from tests.conftest import ROOT
from tests.repos import (
    TINY_MODELS,
    clone,
    commit,
    dvc,
    edit_params,
    git,
    pipeline_repo,
    ran,
    restored,
    shell,
    stale_stages,
)

WORKFLOW = ROOT / ".github/workflows/study.yml"
TRAIN = {f"train@{name}" for name in TINY_MODELS}
EVALUATE = {f"evaluate@{name}" for name in TINY_MODELS}


@pytest.fixture(scope="module")
def base(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The tiny study's pipeline, committed on main, never reproduced."""
    return pipeline_repo(tmp_path_factory.mktemp("share"))


@pytest.fixture(scope="module")
def published(base: Path) -> Path:
    """Clone A: reproduced the study, committed its results and a local-folder remote, and pushed with the run-cache."""
    a = clone(base, base.parent / "a")
    dvc(a, "repro")
    dvc(a, "remote", "add", "-d", "storage", str(base.parent / "remote"))
    commit(a, "results")
    dvc(a, "push", "--run-cache")
    return a


def loaded_plots(repo: Path) -> dict[str, list]:
    """What `dvc plots show` loads, by plot; fails the test if any plot did not load."""
    shown = json.loads(dvc(repo, "plots", "show", "--json"))
    assert "errors" not in shown, shown["errors"]
    assert all(shown["data"].values()), [name for name, renders in shown["data"].items() if not renders]
    return shown["data"]


def test_a_fresh_clone_of_main_shows_every_plot_without_a_remote(tmp_path: Path) -> None:
    repo = clone(ROOT, tmp_path / "main")
    assert dvc(repo, "remote", "list").strip() == ""
    plots = loaded_plots(repo)
    models = yaml.safe_load((repo / "params.yaml").read_text())["models"]
    per_model = {
        f"plots/{kind}/{name}.{ext}"
        for name in models
        for kind, ext in (("confusion", "json"), ("misclassified", "png"))
    }
    top_level = {
        plot if isinstance(plot, str) else next(iter(plot))
        for plot in yaml.safe_load((repo / "dvc.yaml").read_text())["plots"]
    }
    assert set(plots) == top_level | per_model
    assert json.loads(dvc(repo, "metrics", "show", "--json"))  # metrics are in git too
    page = browser.show_plots(repo, tmp_path / "html")
    assert (page.charts, page.images) == (
        len(top_level) - 1 + len(models),
        len(models) + 1,
    )  # images: misclassified grids, samples


def test_a_clone_pulls_the_results_and_reuses_runs_pushed_from_elsewhere(published: Path, tmp_path: Path) -> None:
    b = clone(published, tmp_path / "b")
    assert stale_stages(b) >= TRAIN  # nothing cached here yet
    dvc(b, "pull")
    assert stale_stages(b) == set()
    loaded_plots(b)
    assert ran(dvc(b, "repro")) == set()

    # Another machine trains tiny_alex at 6 filters and pushes the run; B then restores it.
    other = clone(published, tmp_path / "other")
    dvc(other, "pull")
    edit_params(other, **{"models.tiny_alex": {"filters": 6}})
    assert ran(dvc(other, "repro")) == {"train@tiny_alex", "evaluate@tiny_alex", "report"}
    dvc(other, "push", "--run-cache")
    edit_params(b, **{"models.tiny_alex": {"filters": 6}})
    output = dvc(b, "repro", "--pull")
    assert restored(output) == {"train@tiny_alex"} and ran(output) == {"evaluate@tiny_alex", "report"}

    edit_params(b, **{"models.tiny_alex": {"filters": 5}})  # never computed anywhere: trains that model only
    assert ran(dvc(b, "repro", "--pull")) == {"train@tiny_alex", "evaluate@tiny_alex", "report"}


def workflow() -> dict:
    return yaml.safe_load(WORKFLOW.read_text())


def work_steps(job: dict) -> list[str]:
    """A job's shell steps that do its work: not the installs (done here already), nor what only a pull request runs."""
    return [
        step["run"]
        for step in job["steps"]
        if "run" in step and step.get("name") != "Install" and "github.event_name" not in step.get("if", "")
    ]


def run_job(name: str, repo: Path, remote: str, matrix: dict[str, str] | None = None) -> tuple[dict[str, str], str]:
    """Runs a workflow job's work steps in `repo` as GitHub would; returns its step outputs and what it printed."""
    job = workflow()["jobs"][name]

    def expand(text: str) -> str:
        text = re.sub(r"\$\{\{\s*matrix\.(\w+)\s*\}\}", lambda m: (matrix or {})[m[1]], text)
        assert "${{" not in text, f"{name}: an expression this test cannot expand: {text}"
        return text

    outputs = repo.parent / f"{repo.name}.github_output"
    outputs.write_text("")
    env = {key: expand(value) for key, value in job.get("env", {}).items()}
    env.update(DVC_REMOTE=remote, GITHUB_OUTPUT=str(outputs))
    printed = "".join(shell(repo, expand(step), env) for step in work_steps(job))
    return dict(line.split("=", 1) for line in outputs.read_text().splitlines()), printed


def test_the_workflow_fans_training_out_and_the_last_job_trains_nothing(base: Path, tmp_path: Path) -> None:
    remote = str(tmp_path / "remote")  # empty: nothing computed yet
    outputs, _ = run_job("models", clone(base, tmp_path / "models"), remote)
    assert outputs["configured"] == "true"
    stages = json.loads(outputs["stages"])
    assert set(stages) == TRAIN

    _, printed = run_job("data", clone(base, tmp_path / "data"), remote)
    assert ran(printed) == {"download", "prepare"}
    for stage in stages:  # each on its own machine
        _, printed = run_job("train", clone(base, tmp_path / stage.replace("@", "-")), remote, {"stage": stage})
        assert ran(printed) == {stage} and restored(printed) == {"download", "prepare"}

    final = clone(base, tmp_path / "study")
    _, printed = run_job("study", final, remote)
    assert restored(printed) == TRAIN | {"download", "prepare"}
    assert ran(printed) == EVALUATE | {"report"}
    assert "Data and pipelines are up to date." in printed
    assert (final / "report/report.md").exists()


def test_without_a_remote_the_workflow_says_so_and_skips(tmp_path: Path) -> None:
    jobs = workflow()["jobs"]
    check = next(step["run"] for step in jobs["models"]["steps"] if step.get("id") == "remote")
    outputs = tmp_path / "github_output"
    printed = shell(tmp_path, check, {"DVC_REMOTE": "", "GITHUB_OUTPUT": str(outputs)})
    assert "::notice::No DVC_REMOTE secret" in printed and outputs.read_text() == "configured=false\n"
    assert jobs["data"]["if"] == "needs.models.outputs.remote == 'true'"
    assert "data" in jobs["train"]["needs"] and "train" in jobs["study"]["needs"]  # skipped with it


def dvc_lines(text: str) -> list[str]:
    """The `dvc ...` command lines of a shell script or a README code block, in order, each once."""
    return list(dict.fromkeys(line.strip() for line in text.splitlines() if line.strip().startswith("dvc ")))


def readme_section(title: str) -> str:
    """From the docs/sharing.md heading `title` to the next heading of its level or above."""
    lines = (ROOT / "docs" / "sharing.md").read_text().splitlines()
    start, level = lines.index(title), len(title.split(" ")[0])
    ends = (i for i in range(start + 1, len(lines)) if re.match(rf"#{{1,{level}}} ", lines[i]))
    return "\n".join(lines[start : next(ends, len(lines))])


def test_the_readme_shows_the_commands_the_workflow_runs() -> None:
    script = "\n".join(step["run"] for job in workflow()["jobs"].values() for step in job["steps"] if "run" in step)
    assert dvc_lines(readme_section("## Fan out over machines: the CI workflow")) == dvc_lines(script)


def test_a_queued_sweep_shows_in_exp_show_and_one_experiment_becomes_a_branch(published: Path, tmp_path: Path) -> None:
    repo = clone(published, tmp_path / "queue")
    dvc(repo, "pull")
    dvc(repo, "exp", "run", "--queue", "-S", "models.tiny_alex.filters=range(6, 13, 6)")  # DVC's grid syntax: 6 and 12
    dvc(repo, "queue", "start", "-j", "1")
    try:
        deadline = time.monotonic() + 600
        while (
            re.search(r"\b(Queued|Running)\b", status := dvc(repo, "queue", "status")) and time.monotonic() < deadline
        ):
            time.sleep(2)
    finally:
        dvc(repo, "queue", "stop")
    assert status.count("Success") == 2, status

    rows = [row for row in csv.DictReader(io.StringIO(dvc(repo, "exp", "show", "--csv"))) if row["Experiment"]]
    params = {
        int(row["models.tiny_alex.filters"]): int(row["metrics/tiny_alex/seed_0.json:cost.params"]) for row in rows
    }
    assert sorted(params) == [6, 12] and params[6] < params[12]
    names = {int(row["models.tiny_alex.filters"]): row["Experiment"] for row in rows}

    dvc(repo, "exp", "branch", names[6], "tiny_alex_w6")
    changed = json.loads(dvc(repo, "metrics", "diff", "main", "tiny_alex_w6", "--json"))
    assert (
        set(changed) == {"metrics/tiny_alex/seed_0.json"}
        and changed["metrics/tiny_alex/seed_0.json"]["cost.params"]["new"] == params[6]
    )
    dvc(repo, "exp", "apply", names[12])
    assert yaml.safe_load((repo / "params.yaml").read_text())["models"]["tiny_alex"]["filters"] == 12
    changed = json.loads(dvc(repo, "metrics", "diff", "main", "--json"))
    assert changed["metrics/tiny_alex/seed_0.json"]["cost.params"]["new"] == params[12]
    assert git(repo, "branch", "--list", "tiny_alex_w6").strip()


def test_a_study_trained_in_parts_on_machines_sharing_only_git_is_reported_anywhere(base: Path, tmp_path: Path) -> None:
    """Each part trains some models in its own clone (no DVC cache, no remote) and commits their
    dvc.lock entries and git-kept outputs; a third clone reports them all, having only git."""
    origin = tmp_path / "origin.git"
    git(base.parent, "clone", "-q", "--bare", str(base), str(origin))
    parts = {"a": ["tiny_alex", "tiny_alex_w8"], "b": ["tiny_mlp"]}
    for part, models in parts.items():
        repo = clone(origin, tmp_path / part)
        stages = [f"{stage}@{model}" for model in models for stage in ("train", "evaluate")]
        assert ran(dvc(repo, "repro", *stages)) - {"download", "prepare"} == set(stages)
        commit(repo, f"part {part}: {', '.join(models)}")
        git(repo, "push", "-q", "origin", "main")

    reporter = clone(origin, tmp_path / "reporter")
    dvc(reporter, "repro", "prepare")  # the prepared data again, from the download: the same hashes
    assert ran(dvc(reporter, "repro", "--allow-missing")) == {"report"}
    assert not [path for path in reporter.glob("*/*/seed_*") if path.parts[-3] in ("models", "dvclive")]
    assert "- Machines (from the training logs): " in (reporter / "report/report.md").read_text()
    commit(reporter, "report")
    git(reporter, "push", "-q", "origin", "main")

    fresh = clone(origin, tmp_path / "fresh")
    assert "Data and pipelines are up to date." in dvc(fresh, "repro", "--dry", "--allow-missing")
