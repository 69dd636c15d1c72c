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


def node_class_names(pack: Path) -> list[str]:
    """The keys of NODE_CLASS_MAPPINGS in <pack>/nodes/__init__.py, read without importing ComfyUI."""
    tree = ast.parse((pack / "nodes" / "__init__.py").read_text(encoding="utf-8"))
    names: list[str] = []
    for node in ast.walk(tree):
        targets = node.targets if isinstance(node, ast.Assign) else [node.target] if isinstance(node, ast.AugAssign) else []
        if any(isinstance(t, ast.Name) and t.id == "NODE_CLASS_MAPPINGS" for t in targets) and isinstance(node.value, ast.Dict):
            names += [key.value for key in node.value.keys if isinstance(key, ast.Constant)]
    for node in ast.walk(tree):  # NODE_CLASS_MAPPINGS["X"] = X / NODE_CLASS_MAPPINGS.update({...})
        if isinstance(node, ast.Assign):
            for t in node.targets:
                if (isinstance(t, ast.Subscript) and isinstance(t.value, ast.Name) and t.value.id == "NODE_CLASS_MAPPINGS"
                        and isinstance(t.slice, ast.Constant)):
                    names.append(t.slice.value)
        if (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr == "update"
                and isinstance(node.func.value, ast.Name) and node.func.value.id == "NODE_CLASS_MAPPINGS"):
            for arg in node.args:
                if isinstance(arg, ast.Dict):
                    names += [key.value for key in arg.keys if isinstance(key, ast.Constant)]
    if not names:
        raise ValueError(f"{pack}/nodes/__init__.py: no NODE_CLASS_MAPPINGS entries found")
    return names
