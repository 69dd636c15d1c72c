"""A cheap fingerprint of the files behind a model name, for InstaFlowLoader.IS_CHANGED.

ComfyUI caches a loader's outputs by its inputs: without IS_CHANGED, a model file replaced on disk
under the same name would keep being served from the cache until the server restarts. Device, inode,
size and modification time change when a file is overwritten, replaced (renamed over, re-downloaded,
copied) or a link is pointed elsewhere, and reading them is one stat per file, cheap enough for every
prompt (hashing gigabytes would not be).

Which weights file of a diffusers part folder the loader reads (diffusers_folder.weight_file_in: plain,
fp16 or variant names) is remembered with the folder's modification time, which changes whenever a
file is added to, removed from or renamed in it; choices made while the folder was still changing
(within _RACY_SECONDS of it) are not remembered, as in model_folders.
"""
from __future__ import annotations

import os
import time

from .diffusers_folder import weight_file_in, weight_file_parts
from .model_folders import _RACY_SECONDS, CHECKPOINTS, DIFFUSERS, UNET_FOLDER, resolve_model

_choices: dict[tuple[str, str], tuple[int, str | None]] = {}


def _file_fingerprint(path: str | None) -> str:
    if path is None:
        return "missing"
    try:
        st = os.stat(path)  # follows links: a link pointed elsewhere gives another device/inode
    except OSError:
        return f"{path}:missing"
    return f"{path}:{st.st_dev}:{st.st_ino}:{st.st_size}:{st.st_mtime_ns}"


def _weights_in(folder: str, part: str) -> str | None:
    """weight_file_in(folder, part), remembered while the folder does not change."""
    key = (folder, part)
    try:
        mtime = os.stat(folder).st_mtime_ns
    except OSError:
        _choices.pop(key, None)
        return None
    cached = _choices.get(key)
    if cached is not None and cached[0] == mtime:
        return cached[1]
    path = weight_file_in(folder, part)
    if mtime < time.time_ns() - int(_RACY_SECONDS * 1e9):
        _choices[key] = (mtime, path)
    return path


def _files(kind: str, path: str) -> list[str | None]:
    if kind == DIFFUSERS:
        return [_weights_in(os.path.join(path, part), part) for part in weight_file_parts()]
    return [_weights_in(path, "unet")] if kind == UNET_FOLDER else [path]


def model_fingerprint(name: str, family: str, kinds=CHECKPOINTS) -> str:
    """Changes whenever a file the loader would read for `name` changes; never raises."""
    try:
        kind, path = resolve_model(name, family, kinds)
    except (ValueError, FileNotFoundError, OSError):
        return f"unresolved:{name}"  # the loader itself reports the problem
    files = _files(kind, path)
    return "|".join(_file_fingerprint(f) for f in files)
