"""Write the study workflow's pull-request comment: the report's answer, the sweep figure and the
metrics diff against the base branch.

    python tools/pr_comment.py METRICS_DIFF RUN_URL OUT

METRICS_DIFF is `dvc metrics diff <base> --md` saved to a file; RUN_URL links the workflow run,
whose artifact holds the whole report. OUT references report/sweeps.png by its path, which
`cml comment create --publish OUT` uploads, so that the comment shows the figure.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tools.readme_answer import report_section  # noqa: E402
from widthdepth.stage import atomic_path, run  # noqa: E402


def comment(report: str, metrics_diff: str, run_url: str) -> str:
    return "\n".join(
        [
            "## The answer",
            "",
            report_section(report, "The answer"),
            "",
            "![Test accuracy along each sweep](report/sweeps.png)",
            "",
            "### Metrics against the base branch",
            "",
            metrics_diff.strip() or "No metric changed.",
            "",
            f"The whole report and its figures: artifact study-results of {run_url}",
            "",
        ]
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("metrics_diff", type=Path, help="`dvc metrics diff <base> --md`, saved")
    parser.add_argument("run_url", help="the workflow run's address")
    parser.add_argument("out", type=Path, help="the comment to write (Markdown)")
    parser.add_argument("--root", type=Path, default=ROOT, help=argparse.SUPPRESS)
    args = parser.parse_args()
    text = comment((args.root / "report" / "report.md").read_text(), args.metrics_diff.read_text(), args.run_url)
    with atomic_path(args.out) as tmp:
        tmp.write_text(text)


if __name__ == "__main__":
    run(main)
