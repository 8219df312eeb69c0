"""The study's primary questions (`report.primary` in params.yaml), declared before their results are seen.

Each is a difference between two declared models' mean test accuracy (the first minus the
second); the report answers them as one family, Holm-controlled at 5% family-wise, and labels
every other comparison exploratory. `ReportParams` is the `report` section with them.
"""

from __future__ import annotations

from typing import Any

from widthdepth.params import Record, Report, allows, parse
from widthdepth.stage import StageError


class Question(Record):
    question: str = allows("the question in words", min_length=1)
    models: list[str] = allows(
        "two different model names: the answer is the first's mean test accuracy minus the second's",
        min_length=2,
        max_length=2,
    )


class ReportParams(Report):
    primary: dict[str, Question] = allows(
        "a mapping of question names to {question, models: [first, second]}", default_factory=dict
    )


def parse_report(raw: Any, models: dict[str, Any]) -> ReportParams:
    """params.yaml's `report` section; each question must name two different declared models."""
    if isinstance(raw, dict) and isinstance(raw.get("primary"), dict):
        for name, question in raw["primary"].items():  # each refused with the question's own key and rule
            parse(Question, question, f"report.primary.{name}")
    report = parse(ReportParams, raw, "report")
    for name, question in report.primary.items():
        first, second = question.models
        unknown = [model for model in question.models if model not in models]
        if unknown:
            raise StageError(
                f"params.yaml: report.primary.{name}.models names {unknown[0]!r}, which models does not declare"
            )
        if first == second:
            raise StageError(
                f"params.yaml: report.primary.{name}.models must name two different models, not {first!r} twice"
            )
    return report
