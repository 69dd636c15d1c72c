"""The pack's model folders (`instaflow`, `perflow`) and the lists of loadable models in them.

Each family has its own folder key; its loader lists diffusers folders found under models/<family>
and models/diffusers, and single-file checkpoints under models/<family> and models/checkpoints.
Diffusers folders are listed as their folder path (e.g. `instaflow_0_9B_from_sd_1_5`), single files
with their extension. PeRFlow's delta weights are UNet folders (config.json + UNet weights, no
model_index.json) or single files, listed from models/perflow.

Names and paths (safety): a name is resolved only by looking it up in this listing, so a prompt
cannot reach a file outside the model folders (`../..`, absolute paths are refused outright).
Symbolic links INSIDE the model folders are followed, as ComfyUI's own folder_paths does: users link
model folders and files from other disks, and a link there was placed by whoever controls the
filesystem. Dangling links are not listed; directory loops end at the listing depth limit.
"""
from __future__ import annotations

import os

import folder_paths

from .diffusers_folder import is_unet_folder

INSTAFLOW = "instaflow"
PERFLOW = "perflow"
FAMILY_FOLDERS = (INSTAFLOW, PERFLOW)
SINGLE_FILE_EXTENSIONS = (".safetensors", ".sft", ".ckpt", ".pt", ".pth", ".bin")
_MAX_DEPTH = 4

DIFFUSERS, SINGLE_FILE, UNET_FOLDER = "diffusers", "single_file", "unet_folder"


def register_model_folders() -> None:
    """Adds models/instaflow and models/perflow after any path extra_model_paths.yaml already gave the keys."""
    for key in FAMILY_FOLDERS:
        folder_paths.add_model_folder_path(key, os.path.join(folder_paths.models_dir, key))
        _paths, extensions = folder_paths.folder_names_and_paths[key]
        if isinstance(extensions, set):
            extensions.update(folder_paths.supported_pt_extensions)


def _folder_paths(key: str) -> list[str]:
    try:
        return [p for p in folder_paths.get_folder_paths(key) if os.path.isdir(p)]
    except KeyError:
        return []


def is_diffusers_folder(path: str) -> bool:
    return os.path.isfile(os.path.join(path, "model_index.json")) or os.path.isdir(os.path.join(path, "unet"))


def _walk(root: str):
    """{kind: [relative names]} below root; never descends into a model folder."""
    found = {DIFFUSERS: [], SINGLE_FILE: [], UNET_FOLDER: []}
    for current, dirs, names in os.walk(root, followlinks=True):
        rel = os.path.relpath(current, root)
        depth = 0 if rel == "." else rel.count(os.sep) + 1
        if depth and (is_diffusers_folder(current) or is_unet_folder(current)):
            found[DIFFUSERS if is_diffusers_folder(current) else UNET_FOLDER].append(rel.replace(os.sep, "/"))
            dirs[:] = []
            continue
        if depth >= _MAX_DEPTH:
            dirs[:] = []
        dirs.sort()
        for name in names:
            # isfile follows links: a dangling link or a link to a folder is not a model file
            if name.lower().endswith(SINGLE_FILE_EXTENSIONS) and os.path.isfile(os.path.join(current, name)):
                found[SINGLE_FILE].append(os.path.join(rel, name).replace(os.sep, "/").removeprefix("./"))
    return found


# Checkpoints (what a family's loader lists) and delta weights (PeRFlowDeltaWeights, own folder only).
CHECKPOINTS = (DIFFUSERS, SINGLE_FILE)
DELTAS = (UNET_FOLDER, SINGLE_FILE)
_SHARED_FOLDER = {DIFFUSERS: "diffusers", SINGLE_FILE: "checkpoints"}


def _searched(family: str, kinds) -> list[tuple[str, str]]:
    """(folder key, kind) pairs in search order: the family's own folder first, as folder_paths does."""
    pairs = [(family, kind) for kind in kinds]
    if kinds == CHECKPOINTS:
        pairs += [(_SHARED_FOLDER[kind], kind) for kind in kinds]
    return pairs


def _entries(family: str, kinds=CHECKPOINTS) -> dict[str, tuple[str, str]]:
    """name -> (kind, absolute path); the first folder path that has a name wins, as in folder_paths."""
    found: dict[str, tuple[str, str]] = {}
    walked: dict[str, dict] = {}
    for key, kind in _searched(family, kinds):
        for root in _folder_paths(key):
            listing = walked.setdefault(root, _walk(root))
            for rel in listing[kind]:
                found.setdefault(rel, (kind, os.path.join(root, rel)))
    return found


def searched_folders(family: str, kinds=CHECKPOINTS) -> str:
    return ", ".join(dict.fromkeys(key for key, _kind in _searched(family, kinds)))


def list_models(family: str, kinds=CHECKPOINTS) -> list[str]:
    return sorted(_entries(family, kinds))


def _is_relative_name(name: str) -> bool:
    parts = name.replace("\\", "/").split("/")
    return bool(name) and "\0" not in name and not os.path.isabs(name) and not os.path.splitdrive(name)[0] \
        and ".." not in parts and not name.startswith("/")


def listed_or_reason(name, family: str, kinds=CHECKPOINTS) -> bool | str:
    """True for a listed name, else why not: a node's validate_inputs answer, so that ComfyUI refuses the
    prompt before running it (its own combo check does not cover nodes on the versioned schema)."""
    if isinstance(name, str) and _is_relative_name(name) and name in _entries(family, kinds):
        return True
    return f"{name!r} is not one of the models in {searched_folders(family, kinds)}"


def resolve_model(name: str, family: str, kinds=CHECKPOINTS) -> tuple[str, str]:
    """(kind, path) for a listed name; anything not listed (e.g. a path outside the folders) is refused."""
    label = "InstaFlow" if family == INSTAFLOW else "PeRFlow"
    if not isinstance(name, str) or not _is_relative_name(name):
        raise ValueError(f"{label} model name {name!r} is refused: model names are relative to the model folders "
                         f"({searched_folders(family, kinds)}) and cannot leave them")
    entry = _entries(family, kinds).get(name)
    if entry is None:
        raise FileNotFoundError(f"{label} model '{name}' not found in the model folders {searched_folders(family, kinds)}")
    return entry
