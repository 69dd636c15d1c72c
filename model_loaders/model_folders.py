"""The `instaflow` model folder and the list of loadable InstaFlow models.

Diffusers folders are found under models/instaflow and models/diffusers; single-file checkpoints
under models/instaflow and models/checkpoints. Diffusers folders are listed as their folder path
(e.g. `instaflow_0_9B_from_sd_1_5`), single files with their extension.

Names and paths (safety): a name is resolved only by looking it up in this listing, so a prompt
cannot reach a file outside the model folders (`../..`, absolute paths are refused outright).
Symbolic links INSIDE the model folders are followed, as ComfyUI's own folder_paths does: users link
model folders and files from other disks, and a link there was placed by whoever controls the
filesystem. Dangling links are not listed; directory loops end at the listing depth limit.
"""
from __future__ import annotations

import os

import folder_paths

FOLDER = "instaflow"
DIFFUSERS_FOLDERS = (FOLDER, "diffusers")
SINGLE_FILE_FOLDERS = (FOLDER, "checkpoints")
SINGLE_FILE_EXTENSIONS = (".safetensors", ".sft", ".ckpt", ".pt", ".pth", ".bin")
_MAX_DEPTH = 4


def register_instaflow_folder() -> None:
    """Adds models/instaflow after any path extra_model_paths.yaml already gave the key."""
    folder_paths.add_model_folder_path(FOLDER, os.path.join(folder_paths.models_dir, FOLDER))
    _paths, extensions = folder_paths.folder_names_and_paths[FOLDER]
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
    """(relative diffusers folders, relative single files) below root; never descends into a model folder."""
    folders, files = [], []
    for current, dirs, names in os.walk(root, followlinks=True):
        rel = os.path.relpath(current, root)
        depth = 0 if rel == "." else rel.count(os.sep) + 1
        if depth and is_diffusers_folder(current):
            folders.append(rel.replace(os.sep, "/"))
            dirs[:] = []
            continue
        if depth >= _MAX_DEPTH:
            dirs[:] = []
        dirs.sort()
        for name in names:
            # isfile follows links: a dangling link or a link to a folder is not a model file
            if name.lower().endswith(SINGLE_FILE_EXTENSIONS) and os.path.isfile(os.path.join(current, name)):
                files.append(os.path.join(rel, name).replace(os.sep, "/").removeprefix("./"))
    return folders, files


def _entries() -> dict[str, tuple[str, str]]:
    """name -> (kind, absolute path); the first folder path that has a name wins, as in folder_paths."""
    found: dict[str, tuple[str, str]] = {}
    for key in dict.fromkeys(DIFFUSERS_FOLDERS + SINGLE_FILE_FOLDERS):
        for root in _folder_paths(key):
            folders, files = _walk(root)
            if key in DIFFUSERS_FOLDERS:
                for rel in folders:
                    found.setdefault(rel, ("diffusers", os.path.join(root, rel)))
            if key in SINGLE_FILE_FOLDERS:
                for rel in files:
                    found.setdefault(rel, ("single_file", os.path.join(root, rel)))
    return found


def list_instaflow_models() -> list[str]:
    return sorted(_entries())


def _is_relative_name(name: str) -> bool:
    parts = name.replace("\\", "/").split("/")
    return bool(name) and "\0" not in name and not os.path.isabs(name) and not os.path.splitdrive(name)[0] \
        and ".." not in parts and not name.startswith("/")


def resolve_instaflow_model(name: str) -> tuple[str, str]:
    """(kind, path) for a listed name; anything not listed (e.g. a path outside the folders) is refused."""
    if not isinstance(name, str) or not _is_relative_name(name):
        raise ValueError(f"InstaFlow model name {name!r} is refused: model names are relative to the model folders "
                         f"({', '.join(dict.fromkeys(DIFFUSERS_FOLDERS + SINGLE_FILE_FOLDERS))}) and cannot leave them")
    entry = _entries().get(name)
    if entry is None:
        raise FileNotFoundError(
            f"InstaFlow model '{name}' not found in the model folders {', '.join(dict.fromkeys(DIFFUSERS_FOLDERS + SINGLE_FILE_FOLDERS))}")
    return entry
