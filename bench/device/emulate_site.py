"""Builds the dry run's stand-in for the GPU machine's site-packages (see emulate/sitecustomize.py).

    python -m bench.device.emulate_site DEST

DEST gets a link to every top-level file and folder (the .dist-info folder included) of each
distribution installed in this interpreter whose name is in bench/device/device_packages.txt.
Distributions the GPU machine lacks (diffusers, ComfyUI's extra requirements, ...) are left out.
"""
from __future__ import annotations

import importlib.metadata
import os
import re
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent


def norm(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def device_packages() -> set[str]:
    lines = (HERE / "device_packages.txt").read_text(encoding="utf-8").splitlines()
    return {norm(line.strip()) for line in lines if line.strip() and not line.startswith("#")}


def build(dest: Path) -> list[str]:
    allowed = device_packages()
    dest.mkdir(parents=True, exist_ok=True)
    linked = []
    for dist in importlib.metadata.distributions():
        if norm(dist.metadata["Name"]) not in allowed:
            continue
        base = Path(dist.locate_file(""))
        tops = {Path(str(f)).parts[0] for f in dist.files or [] if not str(f).startswith("..")}
        for top in sorted(tops):
            source, link = base / top, dest / top
            if source.exists() and not link.exists():
                os.symlink(source, link)
        linked.append(dist.metadata["Name"])
    return linked


if __name__ == "__main__":
    names = build(Path(sys.argv[1]))
    print(f"{len(names)} distributions linked into {sys.argv[1]}")
