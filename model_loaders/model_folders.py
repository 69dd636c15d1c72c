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

Cost per prompt: ComfyUI asks for the listing (the loader's schema, three times) and the fingerprint on
every prompt, and a walk of a big model folder takes tens of milliseconds. So each family's listing is kept
with the modification time of every directory its walks looked into, as ComfyUI's folder_paths keeps its file
lists, and a later call stats those directories only, walking again when one changed or the configured
folders changed. One level of cache, plus one measured need (bench/pack_calls_cold.py, docs/performance.md):
a listing checked less than _RECHECK_SECONDS ago is served without the stat pass, since one prompt asks for it
five times within milliseconds; only the loader's menu can lag a change by that much. Two safeguards beyond
folder_paths: a walk that saw a directory modified within the last _RACY_SECONDS is not trusted (coarse
timestamps could hide a change made in the same tick), and a name that is not in the listing, or whose file
or folder has gone, is looked up by a fresh walk before it is refused.
"""
from __future__ import annotations

import os
import time

import folder_paths

from ..flow_math.flows import FAMILIES, family_named
from .diffusers_folder import is_unet_folder

FAMILY_FOLDERS = tuple(family.folder for family in FAMILIES)
SINGLE_FILE_EXTENSIONS = (".safetensors", ".sft", ".ckpt", ".pt", ".pth", ".bin")
_MAX_DEPTH = 4
_RACY_SECONDS = 2.0
_RECHECK_SECONDS = 0.25

DIFFUSERS, SINGLE_FILE, UNET_FOLDER = "diffusers", "single_file", "unet_folder"


def register_model_folders() -> None:
    """Adds each family's models/<folder> after any path extra_model_paths.yaml already gave the key."""
    for key in FAMILY_FOLDERS:
        folder_paths.add_model_folder_path(key, os.path.join(folder_paths.models_dir, key))
        _paths, extensions = folder_paths.folder_names_and_paths[key]
        if isinstance(extensions, set):
            extensions.update(folder_paths.supported_pt_extensions)


def is_diffusers_folder(path: str) -> bool:
    return os.path.isfile(os.path.join(path, "model_index.json")) or os.path.isdir(os.path.join(path, "unet"))


def _mtime(path: str):
    try:
        return os.stat(path).st_mtime_ns
    except OSError:
        return None


def _walk(root: str):
    """({kind: [relative names]} below root, {directory: mtime} of every directory looked into);
    never descends into a model folder."""
    found = {DIFFUSERS: [], SINGLE_FILE: [], UNET_FOLDER: []}
    seen = {}
    for current, dirs, names in os.walk(root, followlinks=True):
        seen[current] = _mtime(current)
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
    return found, seen


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


def _configured(keys) -> tuple:
    out = []
    for key in keys:
        try:
            out.append(tuple(folder_paths.get_folder_paths(key)))
        except KeyError:
            out.append(())
    return tuple(out)


class _Listing:
    """What one family's loader lists, and the directory times it depends on."""

    __slots__ = ("configured", "found", "names", "seen", "trusted", "checked_at")

    def __init__(self, family: str, kinds, configured: tuple, keys: tuple):
        started = time.time_ns()
        paths = dict(zip(keys, configured))
        walks: dict[str, dict] = {}
        seen: dict[str, int | None] = {}
        self.found: dict[str, tuple[str, str]] = {}
        for key, kind in _searched(family, kinds):
            for root in paths[key]:
                if root not in walks:
                    walks[root], visited = _walk(root) if os.path.isdir(root) else ({}, {root: None})
                    seen.update(visited)
                for rel in walks[root].get(kind, ()):
                    self.found.setdefault(rel, (kind, os.path.join(root, rel)))  # the first folder path wins
        self.configured = configured
        self.names = tuple(sorted(self.found))
        self.seen = tuple(seen.items())
        racy = started - int(_RACY_SECONDS * 1e9)
        self.trusted = all(mtime is None or mtime < racy for _path, mtime in self.seen)
        self.checked_at = time.monotonic()

    def current(self, configured: tuple) -> bool:
        """True while the configured folders and every directory it looked into are unchanged (one stat each);
        a configured folder that did not exist must still not exist."""
        if not self.trusted or configured != self.configured:
            return False
        for path, mtime in self.seen:
            if _mtime(path) != mtime:
                return False
        self.checked_at = time.monotonic()
        return True


_listings: dict[tuple, _Listing] = {}


def _entries_and_names(family: str, kinds=CHECKPOINTS) -> tuple[dict[str, tuple[str, str]], tuple[str, ...]]:
    listing = _listings.get((family, kinds))
    if listing is not None and time.monotonic() - listing.checked_at < _RECHECK_SECONDS:
        return listing.found, listing.names  # the same prompt asking again, milliseconds later
    keys = tuple(dict.fromkeys(key for key, _kind in _searched(family, kinds)))
    configured = _configured(keys)
    if listing is None or not listing.current(configured):
        listing = _listings[(family, kinds)] = _Listing(family, kinds, configured, keys)
    return listing.found, listing.names


def _entries(family: str, kinds=CHECKPOINTS) -> dict[str, tuple[str, str]]:
    """name -> (kind, absolute path)."""
    return _entries_and_names(family, kinds)[0]


def searched_folders(family: str, kinds=CHECKPOINTS) -> str:
    return ", ".join(dict.fromkeys(key for key, _kind in _searched(family, kinds)))


def list_models(family: str, kinds=CHECKPOINTS) -> tuple[str, ...]:
    """The names a family's loader lists, sorted: the same tuple object while the listing is unchanged, which is
    how the loader's kept schema (nodes/schema_cache.py) tells "unchanged" without comparing hundreds of names."""
    return _entries_and_names(family, kinds)[1]


def _is_relative_name(name: str) -> bool:
    parts = name.replace("\\", "/").split("/")
    return bool(name) and "\0" not in name and not os.path.isabs(name) and not os.path.splitdrive(name)[0] \
        and ".." not in parts and not name.startswith("/")


def listed_or_reason(name, family: str, kinds=CHECKPOINTS) -> bool | str:
    """True for a listed name, else why not: a node's validate_inputs answer, so that ComfyUI refuses the
    prompt before running it (its own combo check does not cover nodes on the versioned schema)."""
    if isinstance(name, str) and _is_relative_name(name) and (name in _entries(family, kinds)
                                                              or name in _entries_looked_up_again(family, kinds)):
        return True
    return f"{name!r} is not one of the models in {searched_folders(family, kinds)}"


def resolve_model(name: str, family: str, kinds=CHECKPOINTS) -> tuple[str, str]:
    """(kind, path) for a listed name; anything not listed (e.g. a path outside the folders) is refused."""
    label = family_named(family).name
    if not isinstance(name, str) or not _is_relative_name(name):
        raise ValueError(f"{label} model name {name!r} is refused: model names are relative to the model folders "
                         f"({searched_folders(family, kinds)}) and cannot leave them")
    entry = _entries(family, kinds).get(name)
    if entry is None or not _still_there(*entry):  # not cached, or gone since the walk (e.g. a link's target)
        entry = _entries_looked_up_again(family, kinds).get(name)
    if entry is None:
        raise FileNotFoundError(f"{label} model '{name}' not found in the model folders {searched_folders(family, kinds)}")
    return entry


def _entries_looked_up_again(family: str, kinds) -> dict[str, tuple[str, str]]:
    """_entries from fresh walks: before a name is refused (only on this rare path)."""
    _listings.clear()
    return _entries(family, kinds)


def _still_there(kind: str, path: str) -> bool:
    return os.path.isfile(path) if kind == SINGLE_FILE else os.path.isdir(path)
