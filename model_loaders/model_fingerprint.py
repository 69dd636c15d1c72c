"""A cheap fingerprint of the files behind a model name, for InstaFlowLoader.IS_CHANGED.

ComfyUI caches a loader's outputs by its inputs: without IS_CHANGED, a model file replaced on disk
under the same name would keep being served from the cache until the server restarts. Size,
modification time and inode change when a file is overwritten, replaced (renamed over, re-downloaded,
copied) or a link is pointed elsewhere, and reading them is one stat per file, cheap enough for every
prompt (hashing gigabytes would not be).
"""
from __future__ import annotations

import os

from .diffusers_folder import weight_file, weight_file_in, weight_file_parts
from .model_folders import CHECKPOINTS, DIFFUSERS, UNET_FOLDER, resolve_model


def _file_fingerprint(path: str | None) -> str:
    if path is None:
        return "missing"
    try:
        st = os.stat(path)
    except OSError:
        return f"{path}:missing"
    return f"{os.path.realpath(path)}:{st.st_size}:{st.st_mtime_ns}:{st.st_ino}"


def _files(kind: str, path: str) -> list[str | None]:
    if kind == DIFFUSERS:
        return [weight_file(path, part) for part in weight_file_parts()]
    return [weight_file_in(path)] if kind == UNET_FOLDER else [path]


def model_fingerprint(name: str, family: str, kinds=CHECKPOINTS) -> str:
    """Changes whenever a file the loader would read for `name` changes; never raises."""
    try:
        kind, path = resolve_model(name, family, kinds)
    except (ValueError, FileNotFoundError, OSError):
        return f"unresolved:{name}"  # the loader itself reports the problem
    files = _files(kind, path)
    return "|".join(_file_fingerprint(f) for f in files)
