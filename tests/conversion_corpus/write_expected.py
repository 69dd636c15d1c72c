"""Writes each corpus case's expected.json and report.txt with the Python converter (the reference).

Run from the repository root after adding a case or changing the converter on purpose:
    python tests/conversion_corpus/write_expected.py [case ...]
then read the diff (git diff tests/conversion_corpus) and add the case's readable facts to
tests/test_conversion_corpus.py: the files alone would only check the converter against itself.
"""
from __future__ import annotations

import json
import sys
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[2]
sys.path[:0] = [str(REPO_ROOT), str(REPO_ROOT / "tests")]

from harness.conversion_corpus import CORPUS, case_names, load_case  # noqa: E402
from workflow_conversion.convert_api import convert_api_workflow  # noqa: E402


def main(names: list[str]) -> None:
    for name in names or case_names():
        case = load_case(name)
        converted, report = convert_api_workflow(case.input, case.preset)
        (CORPUS / name / "expected.json").write_text(json.dumps(converted, indent=1) + "\n", encoding="utf-8")
        (CORPUS / name / "report.txt").write_text("".join(f"{line}\n" for line in report.lines()), encoding="utf-8")
        print(f"{name}: {len(report.lines())} report lines")


if __name__ == "__main__":
    main(sys.argv[1:])
