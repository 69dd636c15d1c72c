"""The pack's registry node id ([project] name in pyproject.toml).

ComfyUI-Manager and comfy-cli install a registry pack into custom_nodes/<node id>, and ComfyUI serves a
pack's web files under /extensions/<folder name>/ and lists its templates under that name, so the tests
install the pack under this name too.
"""
from __future__ import annotations

import tomllib
from pathlib import Path

PYPROJECT = Path(__file__).resolve().parents[1] / "pyproject.toml"
PACK_NAME: str = tomllib.loads(PYPROJECT.read_text(encoding="utf-8"))["project"]["name"]
