"""The README leads with the answer and stays true: short, every number of its answer quoted
from the generated report, and the docs' recipe table equal to params.yaml."""

from __future__ import annotations

import re
from pathlib import Path

import yaml

from tests.conftest import ROOT

NUMBER = re.compile(r"(?<![\w.])[+-]?\d[\d,]*(?:\.\d+)?")
RECIPE_COLUMNS = ["epochs", "batch_size", "optimizer", "learning_rate", "momentum", "weight_decay", "warmup_epochs",
                  "schedule", "label_smoothing", "inputs", "flip", "translate", "augment", "recalibrate_batch_norm"]


def section(text: str, marker: str) -> str:
    return text.split(f"<!-- {marker}")[1].split("-->", 1)[1].split(f"<!-- /{marker}")[0]


def recipes_table(recipes: dict) -> str:
    rows = ["| recipe | " + " | ".join(RECIPE_COLUMNS) + " |", "|---|" + "---|" * len(RECIPE_COLUMNS)]
    rows += [f"| `{name}` | " + " | ".join(str(recipe[key]).lower() if isinstance(recipe[key], bool) else str(recipe[key])
                                           for key in RECIPE_COLUMNS) + " |" for name, recipe in recipes.items()]
    return "\n".join(rows)


def test_the_readme_is_short_and_leads_with_the_answer() -> None:
    lines = (ROOT / "README.md").read_text().splitlines()
    assert len(lines) <= 220
    headings = [line for line in lines if line.startswith("## ")]
    assert headings[:2] == ["## The answer", "## Run it"]


def test_every_number_of_the_readme_answer_is_in_the_report() -> None:
    readme, report = (ROOT / "README.md").read_text(), (ROOT / "report" / "report.md").read_text()
    answer = readme.split("## The answer")[1].split("\n## ")[0]
    answer = answer.split("> **Stale.**")[0]  # the stale note names issues (#14), not results
    quoted = [n for n in NUMBER.findall(answer) if not re.fullmatch(r"[+-]?\d", n)]  # "3 seeds", "2 → 4": words
    assert quoted, "the answer quotes no number: the test would pass vacuously"
    missing = [n for n in quoted if n not in report]
    assert not missing, f"README's answer quotes numbers the report does not: {missing}"


def test_the_docs_recipe_table_is_params_yaml() -> None:
    recipes = yaml.safe_load((ROOT / "params.yaml").read_text())["recipes"]
    documented = section((ROOT / "docs" / "training.md").read_text(), "recipes").strip()
    assert documented == recipes_table(recipes), "docs/training.md's recipe table differs from params.yaml:\n" + recipes_table(recipes)


def test_every_docs_link_points_to_a_file() -> None:
    for page in [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]:
        for target in re.findall(r"\]\(([^)#:]+)(?:#[^)]*)?\)", page.read_text()):
            assert (page.parent / target).exists(), f"{page.name} links to {target}, which does not exist"
