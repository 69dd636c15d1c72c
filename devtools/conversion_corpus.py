"""The converter corpus (tests/conversion_corpus/<case>/): graphs on which both converters must agree.

Each case is a folder:
- case.json: what the case is about, and the preset it converts to;
- input.json: the graph in API format, as the frontend exports it (what the Python converter reads);
- input.ui.json (where API format cannot hold the case: reroutes, primitives, subgraphs): the graph as the frontend
  saves it; the browser test loads it and checks that the frontend exports input.json from it. Without it, the
  browser test loads input.json itself (app.loadApiJson);
- expected.json and report.txt: the converted graph in API format and the report's lines, written from the Python
  converter (the reference) by `python -m devtools.conversion_corpus [case ...]` (from the repository root) and
  reviewed by hand; tests/test_conversion_corpus.py pins each case's essential result in readable assertions besides:
  the files alone would only check the converter against itself.
"""
from __future__ import annotations

import json
import re
import sys
from dataclasses import dataclass
from pathlib import Path

CORPUS = Path(__file__).resolve().parents[1] / "tests" / "conversion_corpus"


@dataclass(frozen=True)
class Case:
    name: str
    about: str
    preset: str
    input: dict
    ui: dict | None
    expected: dict | None
    report: list[str] | None

    @property
    def folder(self) -> Path:
        return CORPUS / self.name


def _json(path: Path):
    return json.loads(path.read_text(encoding="utf-8")) if path.exists() else None


def load_case(name: str) -> Case:
    folder = CORPUS / name
    meta = _json(folder / "case.json")
    report = folder / "report.txt"
    return Case(name, meta["about"], meta["preset"], _json(folder / "input.json"), _json(folder / "input.ui.json"),
                _json(folder / "expected.json"),
                report.read_text(encoding="utf-8").splitlines() if report.exists() else None)


def case_names() -> list[str]:
    return sorted(p.parent.name for p in CORPUS.glob("*/case.json"))


def cases() -> list[Case]:
    return [load_case(name) for name in case_names()]


def new_node_ids(converted: dict, original: dict) -> list[str]:
    """Ids of the nodes a conversion added, in the order they were made (ascending: both converters count up)."""
    return sorted((k for k in converted if k not in original), key=lambda k: [int(p) for p in k.split(":")])


def renumbered(graph: dict, lines: list[str], mapping: dict[str, str]) -> tuple[dict, list[str]]:
    """`graph` and report `lines` with the node ids in `mapping` replaced. The frontend numbers a new node after the
    largest id it ever gave, nodes the export leaves out (reroutes, Primitive nodes) included; the export-side
    converter can only count the nodes it sees. So the browser's new nodes are matched to the expected ones in the
    order they were made, and compared under the expected ids."""
    if not mapping:
        return graph, lines

    def link(value):
        if isinstance(value, list) and len(value) == 2 and isinstance(value[0], str):
            return [mapping.get(value[0], value[0]), value[1]]
        return value

    out = {mapping.get(k, k): {**node, "inputs": {n: link(v) for n, v in node["inputs"].items()}} for k, node in graph.items()}
    pattern = re.compile(r"\bnode (\d+(?::\d+)*)\b")
    return out, [pattern.sub(lambda m: f"node {mapping.get(m.group(1), m.group(1))}", line) for line in lines]


def write_expected(names: list[str]) -> None:
    """Each named case's (all cases': none named) expected.json and report.txt, from the Python converter."""
    from workflow_conversion.convert_api import convert_api_workflow

    for name in names or case_names():
        case = load_case(name)
        converted, report = convert_api_workflow(case.input, case.preset)
        (CORPUS / name / "expected.json").write_text(json.dumps(converted, indent=1) + "\n", encoding="utf-8")
        (CORPUS / name / "report.txt").write_text("".join(f"{line}\n" for line in report.lines()), encoding="utf-8")
        print(f"{name}: {len(report.lines())} report lines; read the diff before committing it")


if __name__ == "__main__":
    write_expected(sys.argv[1:])
