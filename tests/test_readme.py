"""The README leads with the answer and stays true: short, every number of its answer quoted
from the generated report, and the docs' recipe table equal to params.yaml."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import yaml

from tests.conftest import ROOT

NUMBER = re.compile(r"(?<![\w.])[+-]?\d[\d,]*(?:\.\d+)?")
RECIPE_COLUMNS = [
    "epochs",
    "batch_size",
    "optimizer",
    "learning_rate",
    "momentum",
    "weight_decay",
    "warmup_epochs",
    "schedule",
    "label_smoothing",
    "inputs",
    "flip",
    "translate",
    "augment",
    "recalibrate_batch_norm",
    "fused_batch_norm",
]


def section(text: str, marker: str) -> str:
    return text.split(f"<!-- {marker}")[1].split("-->", 1)[1].split(f"<!-- /{marker}")[0]


def recipes_table(recipes: dict) -> str:
    rows = ["| recipe | " + " | ".join(RECIPE_COLUMNS) + " |", "|---|" + "---|" * len(RECIPE_COLUMNS)]
    rows += [
        f"| `{name}` | "
        + " | ".join(
            str(recipe[key]).lower() if isinstance(recipe[key], bool) else str(recipe[key]) for key in RECIPE_COLUMNS
        )
        + " |"
        for name, recipe in recipes.items()
    ]
    return "\n".join(rows)


def test_the_readme_is_short_and_leads_with_the_answer() -> None:
    lines = (ROOT / "README.md").read_text().splitlines()
    assert len(lines) <= 220
    headings = [line for line in lines if line.startswith("## ")]
    assert headings[:2] == ["## The answer", "## Run it"]


def test_every_number_of_the_readme_answer_is_in_the_report() -> None:
    readme, report = (ROOT / "README.md").read_text(), (ROOT / "report" / "report.md").read_text()
    answer = readme.split("## The answer")[1].split("\n## ")[0]
    quoted = [n for n in NUMBER.findall(answer) if not re.fullmatch(r"[+-]?\d", n)]  # "3 seeds", "2 → 4": words
    assert quoted, "the answer quotes no number: the test would pass vacuously"
    missing = [n for n in quoted if n not in report]
    assert not missing, f"README's answer quotes numbers the report does not: {missing}"


def test_the_docs_recipe_table_is_params_yaml() -> None:
    recipes = yaml.safe_load((ROOT / "params.yaml").read_text())["recipes"]
    documented = section((ROOT / "docs" / "training.md").read_text(), "recipes").strip()
    assert documented == recipes_table(recipes), (
        "docs/training.md's recipe table differs from params.yaml:\n" + recipes_table(recipes)
    )


def test_every_docs_link_points_to_a_file() -> None:
    for page in [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]:
        for target in re.findall(r"\]\(([^)#:]+)(?:#[^)]*)?\)", page.read_text()):
            assert (page.parent / target).exists(), f"{page.name} links to {target}, which does not exist"


def test_the_readme_answer_is_copied_from_the_report_by_one_command(tmp_path: Path) -> None:
    report = (
        "# Report\n\n## The answer\n\n- width: +0.0500 ± 0.0100 per doubling: higher.\n\n"
        "## Regime\n\n- Machine: X.\n\n## Sweeps\n\nmore\n"
    )
    (tmp_path / "report").mkdir()
    (tmp_path / "report" / "report.md").write_text(report)
    (tmp_path / "README.md").write_text(
        "# T\n\n## The answer\n\n<!-- answer:begin -->\nold\n<!-- answer:end -->\n\n## Run it\n"
    )
    tool = [sys.executable, str(ROOT / "tools" / "readme_answer.py"), "--root", str(tmp_path)]
    stale = subprocess.run([*tool, "--check"], capture_output=True, text=True)
    assert stale.returncode == 1 and "README.md's answer differs from report/report.md" in stale.stderr
    subprocess.run(tool, check=True)
    assert (tmp_path / "README.md").read_text() == (
        "# T\n\n## The answer\n\n<!-- answer:begin -->\n- width: +0.0500 ± 0.0100 per doubling: higher.\n\n"
        "Regime (from the report):\n\n- Machine: X.\n<!-- answer:end -->\n\n## Run it\n"
    )
    assert subprocess.run([*tool, "--check"]).returncode == 0
    (tmp_path / "report" / "report.md").write_text("# Report\n\n## Conclusion\n\nold format\n")
    old = subprocess.run(tool, capture_output=True, text=True)
    assert old.returncode == 1 and "report/report.md has no '## The answer' section" in old.stderr


def test_the_pull_request_comment_carries_the_answer_the_sweep_figure_and_the_metrics_diff(tmp_path: Path) -> None:
    (tmp_path / "report").mkdir()
    (tmp_path / "report" / "report.md").write_text(
        "# Report\n\n## The answer\n\n### Primary questions\n\n| q | +0.0500 ± 0.0100 | higher (Holm) |\n\n"
        "## Regime\n\n- Machine: X.\n"
    )
    (tmp_path / "diff.md").write_text("| Path | Metric |\n|---|---|\n| metrics/a/seed_0.json | test.accuracy |\n")
    tool = [sys.executable, str(ROOT / "tools" / "pr_comment.py"), "--root", str(tmp_path)]
    subprocess.run([*tool, str(tmp_path / "diff.md"), "https://ci/run/7", str(tmp_path / "comment.md")], check=True)
    comment = (tmp_path / "comment.md").read_text()
    assert "### Primary questions\n\n| q | +0.0500 ± 0.0100 | higher (Holm) |" in comment and "Regime" not in comment
    assert "![Test accuracy along each sweep](report/sweeps.png)" in comment
    assert "| metrics/a/seed_0.json | test.accuracy |" in comment and "https://ci/run/7" in comment
    workflow = yaml.safe_load((ROOT / ".github" / "workflows" / "study.yml").read_text())
    [step] = [s for s in workflow["jobs"]["study"]["steps"] if "pr_comment.py" in s.get("run", "")]
    assert "dvc metrics diff base --md > metrics_diff.md" in step["run"]
    assert "cml comment create --publish comment.md" in step["run"]  # uploads the figure the comment shows
