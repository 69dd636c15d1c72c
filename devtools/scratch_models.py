"""A writable models root that tests change while the server runs (linked files, replaced files).

Large model files are hard-linked rather than copied where the filesystem allows it (same device),
so "copies" of the 2 GB test model cost no time or disk; a replacement is an atomic rename of a new
link over the old name, as a re-download or `cp` to a temporary name + `mv` would do.
"""
from __future__ import annotations

import os
import shutil
from dataclasses import dataclass
from pathlib import Path

from devtools.server import MODEL_FOLDERS


def link_or_copy(source: Path, target: Path) -> Path:
    target.parent.mkdir(parents=True, exist_ok=True)
    try:
        os.link(source, target)
    except OSError:  # another filesystem, or links not allowed
        shutil.copyfile(source, target)
    return target


@dataclass(frozen=True)
class ScratchModels:
    models_root: Path

    @classmethod
    def create(cls, root: Path) -> "ScratchModels":
        for folder in MODEL_FOLDERS.values():
            (root / folder).mkdir(parents=True, exist_ok=True)
        return cls(models_root=root)

    def path(self, folder: str, name: str) -> Path:
        return self.models_root / folder / name

    def add(self, folder: str, name: str, source: Path) -> Path:
        return link_or_copy(source, self.path(folder, name))

    def replace(self, folder: str, name: str, source: Path) -> Path:
        target = self.path(folder, name)
        staging = link_or_copy(source, target.with_name(f".{target.name}.incoming"))
        os.replace(staging, target)
        return target

    def symlink(self, folder: str, name: str, points_to: Path) -> Path:
        link = self.path(folder, name)
        link.parent.mkdir(parents=True, exist_ok=True)
        link.symlink_to(points_to)
        return link
