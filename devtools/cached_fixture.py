"""Build a model fixture once, in a subprocess, into a cached folder that readers see all or nothing of.

Every cached model fixture (the random InstaFlow model, ControlNet, LoRAs, weight-delta checkpoints,
the SDXL refiner stand-in, ...) is built through ensure_built:

    cache_root()/fixtures/<tag>/models/      complete fixture (has a .complete marker)
    cache_root()/fixtures/<tag>/.building-*  staging folder of a build in progress (or killed)

The build runs as `python -m devtools.<module> --build-into <staging>/models <args...>` so that heavy imports
(diffusers, ComfyUI) and their memory stay out of the test process.
"""
from __future__ import annotations

import contextlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

from devtools.comfyui_source import REPO, cache_root, with_site_paths

COMPLETE = ".complete"


@contextlib.contextmanager
def _exclusive_lock(path: Path):
    try:
        import fcntl
    except ImportError:  # Windows: rely on the atomic rename alone
        yield
        return
    with open(path, "a+") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def _module_name(script: Path) -> str:
    # run as a module of the repository (devtools.random_models), so that it imports devtools like any other module
    return ".".join(script.resolve().relative_to(REPO).with_suffix("").parts)


def fixture_base(tag: str) -> Path:
    return cache_root() / "fixtures" / tag


def ensure_built(tag: str, family: str, script: Path, args: list[str]) -> Path:
    """models_root of fixture `tag`, building it with `script` first if needed.

    `family` is the tag without its version: older versions of the same family are deleted after a
    new one is built (they are never read again).
    """
    base = fixture_base(tag)
    models_root = base / "models"
    if (models_root / COMPLETE).is_file():
        return models_root
    base.mkdir(parents=True, exist_ok=True)
    with _exclusive_lock(base / ".lock"):
        if not (models_root / COMPLETE).is_file():
            for stale in base.glob(".building-*"):
                shutil.rmtree(stale, ignore_errors=True)
            if models_root.exists():
                shutil.rmtree(models_root)
            staging = Path(tempfile.mkdtemp(prefix=".building-", dir=base))
            try:
                subprocess.run([sys.executable, "-m", _module_name(script), "--build-into", str(staging / "models"), *args],
                               check=True, cwd=REPO, env=with_site_paths(os.environ))
                (staging / "models" / COMPLETE).write_text(json.dumps({"recipe": tag}) + "\n")
                os.rename(staging / "models", models_root)
            finally:
                shutil.rmtree(staging, ignore_errors=True)
            for old in base.parent.glob(family + "-v*"):
                if old != base and old.is_dir():
                    shutil.rmtree(old, ignore_errors=True)
    return models_root


def script_main(build, argv, description: str) -> None:
    """Entry point of a fixture module run as a build script: build(models_root, **named args)."""
    import argparse

    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--build-into", type=Path, required=True)
    parser.add_argument("--arg", action="append", default=[], help="NAME=VALUE passed to the build")
    options = parser.parse_args(argv)
    build(options.build_into, **dict(item.split("=", 1) for item in options.arg))
