"""The README is the pack's front door: short, and its node reference lists exactly the nodes the pack registers.

No server: the node ids are read from the sources (nodes/*.py schemas and the flow families' records), as
devtools/pack_snapshot.py reads them, so this runs in the fast lane.
"""
from __future__ import annotations

import re
from pathlib import Path

from devtools.pack_snapshot import node_class_names

REPO_ROOT = Path(__file__).resolve().parent.parent
README = REPO_ROOT / "README.md"
MAX_README_LINES = 350
NODE_REFERENCE_HEADING = "## Node reference"

def node_reference_ids(readme: str) -> list[str]:
    """The node id of each row of the node reference table: the backquoted name in the row's first cell."""
    assert NODE_REFERENCE_HEADING in readme, f"README has no '{NODE_REFERENCE_HEADING}' section"
    section = readme.split(NODE_REFERENCE_HEADING, 1)[1].split("\n## ", 1)[0]
    ids = []
    for line in section.splitlines():
        cells = line.strip().strip("|").split("|")
        if not line.startswith("|") or set(cells[0].strip()) <= set("-: "):
            continue  # not a table row, or the header's separator
        first = re.fullmatch(r"\s*`([A-Za-z0-9_]+)`\s*", cells[0])
        if first:
            ids.append(first[1])
        else:
            assert cells[0].strip() == "Node", f"node reference row without a `NodeId` in its first cell: {line}"
    return ids


def test_node_reference_lists_every_registered_node_and_no_other():
    registered = set(node_class_names(REPO_ROOT))
    listed = node_reference_ids(README.read_text(encoding="utf-8"))
    assert len(listed) == len(set(listed)), f"listed twice: {sorted({n for n in listed if listed.count(n) > 1})}"
    missing = registered - set(listed)
    assert not missing, f"the README's node reference lacks {sorted(missing)}"
    unknown = set(listed) - registered
    assert not unknown, f"the README's node reference names nodes the pack does not register: {sorted(unknown)}"


def test_readme_stays_a_front_door():
    lines = README.read_text(encoding="utf-8").count("\n")
    assert lines <= MAX_README_LINES, (f"README.md has {lines} lines (at most {MAX_README_LINES}): move detail to "
                                       "docs/ and link it")
