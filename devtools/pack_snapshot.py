"""The repository as it would be published: a fresh git repository holding the files git would commit.

Uncommitted work is not in a `git clone` of the working repository, so tests that install "from a
clean clone" first make a snapshot: the tracked files plus the untracked files git does not ignore
(`git ls-files -co --exclude-standard`), committed to a new repository in a temporary folder. A clone
of the snapshot is then exactly what ComfyUI-Manager's `git clone` of the published repository gives.
"""
from __future__ import annotations

import ast
import os
import shutil
import subprocess
from pathlib import Path

_GIT_IDENTITY = {"GIT_AUTHOR_NAME": "tests", "GIT_AUTHOR_EMAIL": "tests@localhost",
                 "GIT_COMMITTER_NAME": "tests", "GIT_COMMITTER_EMAIL": "tests@localhost"}


def git(*args, cwd: Path) -> str:
    env = dict(os.environ, **_GIT_IDENTITY, GIT_CONFIG_NOSYSTEM="1", GIT_TERMINAL_PROMPT="0")
    return subprocess.run(["git", *args], cwd=cwd, env=env, check=True, capture_output=True, text=True).stdout


def publishable_files(repo: Path) -> list[str]:
    listed = git("ls-files", "-co", "--exclude-standard", "-z", cwd=repo).split("\0")
    return sorted({name for name in listed if name and (repo / name).is_file()})


def snapshot_repository(repo: Path, dest: Path) -> Path:
    """A new git repository at `dest` with one commit of publishable_files(repo)."""
    dest.mkdir(parents=True)
    for name in publishable_files(repo):
        (dest / name).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(repo / name, dest / name)
    git("init", "-q", "-b", "main", cwd=dest)
    git("add", "-A", cwd=dest)
    git("commit", "-q", "-m", "snapshot", cwd=dest)
    return dest


def clone(source: Path, dest: Path) -> Path:
    git("clone", "-q", str(source), str(dest), cwd=source.parent)
    return dest


_FAMILY_NODE_FIELDS = ("patch_node", "scheduler_node", "loader_node")


def constant_keywords(path: Path, call_name: str, fields) -> list[str]:
    found = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Call) and getattr(node.func, "attr", getattr(node.func, "id", "")) == call_name:
            found += [k.value.value for k in node.keywords if k.arg in fields and isinstance(k.value, ast.Constant)]
    return found


def node_class_names(pack: Path) -> list[str]:
    """The node ids the pack declares, read without importing ComfyUI: io.Schema(node_id=...) in <pack>/nodes/*.py,
    and each flow family's three nodes, named in its record (FlowFamily(...) in <pack>/flow_math/flows/*.py)."""
    names: list[str] = []
    for path in sorted((pack / "nodes").glob("*.py")):
        names += constant_keywords(path, "Schema", ("node_id",))
    for path in sorted((pack / "flow_math" / "flows").glob("*.py")):
        names += constant_keywords(path, "FlowFamily", _FAMILY_NODE_FIELDS)
    if not names:
        raise ValueError(f"{pack}/nodes: no io.Schema(node_id=...) found")
    return names
