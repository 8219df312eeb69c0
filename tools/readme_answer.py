"""Copy the report's answer into README.md: run after `dvc repro` has written a new report.

    python tools/readme_answer.py            rewrite README's answer from report/report.md
    python tools/readme_answer.py --check    change nothing; fail if README's answer differs

README's "The answer" section holds, between `<!-- answer:begin -->` and `<!-- answer:end -->`,
the "The answer" section of `report/report.md` as the `report` stage wrote it, and the
report's regime (data, recipes, machine), so that no number in it is copied by hand.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from widthdepth.stage import StageError, atomic_path, run  # noqa: E402

BEGIN, END = "<!-- answer:begin -->", "<!-- answer:end -->"


def report_section(report: str, title: str) -> str:
    """The body of `## <title>` in report.md, without its heading."""
    parts = report.split(f"\n## {title}\n")
    if len(parts) != 2:
        raise StageError(f"report/report.md has no '## {title}' section: rerun the report stage (`dvc repro report`)")
    return parts[1].split("\n## ")[0].strip()


def answer_block(report: str) -> str:
    """What README's answer block holds: the report's answer, then its regime."""
    return "\n".join(
        [
            BEGIN,
            report_section(report, "The answer"),
            "",
            "Regime (from the report):",
            "",
            report_section(report, "Regime"),
            END,
        ]
    )


def with_answer(readme: str, report: str) -> str:
    if readme.count(BEGIN) != 1 or readme.count(END) != 1:
        raise StageError(f"README.md must hold one {BEGIN} ... {END} block in its answer section")
    before, rest = readme.split(BEGIN)
    return before + answer_block(report) + rest.split(END)[1]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--check", action="store_true", help="change nothing; exit 1 if README's answer is out of date")
    parser.add_argument("--root", type=Path, default=ROOT, help=argparse.SUPPRESS)
    args = parser.parse_args()
    readme_path = args.root / "README.md"
    readme, report = readme_path.read_text(), (args.root / "report" / "report.md").read_text()
    updated = with_answer(readme, report)
    if args.check:
        if updated != readme:
            raise StageError("README.md's answer differs from report/report.md: run `python tools/readme_answer.py`")
        return
    with atomic_path(readme_path) as tmp:
        tmp.write_text(updated)


if __name__ == "__main__":
    run(main)
