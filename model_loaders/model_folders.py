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

Cost per prompt: ComfyUI asks for the listing (INPUT_TYPES) and the fingerprint (IS_CHANGED) on every
prompt. Each folder's walk is cached with the modification time of every directory it visited, as
ComfyUI's folder_paths caches its file lists: a later call stats those directories only (a handful
for flat model folders, whatever the number of files) and walks again when one changed (a file added,
removed or renamed in it). Two additions to what folder_paths does: a walk that saw a directory modified
within the last _RACY_SECONDS is not trusted (coarse timestamps could hide a change made in the same
tick), and a name that is not in the cached listing, or whose file or folder has gone since the walk,
is looked up again by a fresh walk before it is refused.

One prompt asks for the same listing four times within milliseconds (the loader's INPUT_TYPES three
times, validate_inputs; IS_CHANGED reads the cached listing through resolve_listed), so a listing
checked less than _RECHECK_SECONDS ago is served without its stats or the folder paths. Only what the
loader's menu shows can lag a change (of the files or of the configured folders) by that much: a name
missing from the listing, or whose file has gone, is still looked up afresh before it is refused.
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


class _Listing:
    """One folder's walk and the directory times it depends on."""

    __slots__ = ("found", "seen", "trusted")

    def __init__(self, root: str):
        started = time.time_ns()
        self.found, seen = _walk(root)
        self.seen = tuple(seen.items())
        racy = started - int(_RACY_SECONDS * 1e9)
        self.trusted = all(mtime is not None and mtime < racy for _path, mtime in self.seen)

    def current(self) -> bool:
        """True while no directory it looked into has changed (one stat each)."""
        if not self.trusted:
            return False
        stat = os.stat
        try:
            for path, mtime in self.seen:
                if stat(path).st_mtime_ns != mtime:
                    return False
        except OSError:
            return False
        return True


_listings: dict[str, _Listing] = {}


def _listing(root: str) -> _Listing:
    listing = _listings.get(root)
    if listing is None or not listing.current():
        listing = _listings[root] = _Listing(root)
    return listing


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


class _Combined:
    """What one family's loader lists, from the walks of the folders it searches, and how to check it."""

    __slots__ = ("configured", "listings", "missing", "found", "names", "checked_at")

    def checked_lately(self) -> bool:
        """Checked less than _RECHECK_SECONDS ago: served as it is, without asking for the folder paths again."""
        return time.monotonic() - self.checked_at < _RECHECK_SECONDS

    def current(self, configured) -> bool:
        if configured != self.configured:
            return False
        fresh = all(listing.current() for listing in self.listings) and not any(os.path.isdir(p) for p in self.missing)
        if fresh:
            self.checked_at = time.monotonic()
        return fresh


_combined: dict[tuple, _Combined] = {}


def _configured(keys) -> tuple:
    out = []
    for key in keys:
        try:
            out.append(tuple(folder_paths.get_folder_paths(key)))
        except KeyError:
            out.append(())
    return tuple(out)


def _entries(family: str, kinds=CHECKPOINTS) -> dict[str, tuple[str, str]]:
    """name -> (kind, absolute path); the first folder path that has a name wins, as in folder_paths."""
    return _entries_and_names(family, kinds)[0]


def _entries_and_names(family: str, kinds=CHECKPOINTS) -> tuple[dict[str, tuple[str, str]], tuple[str, ...]]:
    cached = _combined.get((family, kinds))
    if cached is not None and cached.checked_lately():  # the hot path: the same prompt asking again
        return cached.found, cached.names
    pairs = _searched(family, kinds)
    keys = tuple(dict.fromkeys(key for key, _kind in pairs))
    configured = _configured(keys)
    if cached is not None and cached.current(configured):  # the warm path: one stat per directory
        return cached.found, cached.names
    paths = dict(zip(keys, configured))
    searched = [(kind, root) for key, kind in pairs for root in paths[key] if os.path.isdir(root)]
    listings = {root: _listing(root) for root in dict.fromkeys(root for _kind, root in searched)}
    found: dict[str, tuple[str, str]] = {}
    for kind, root in searched:
        for rel in listings[root].found[kind]:
            found.setdefault(rel, (kind, os.path.join(root, rel)))
    entry = _Combined()
    entry.configured, entry.listings, entry.found = configured, tuple(listings.values()), found
    entry.names = tuple(sorted(found))
    entry.checked_at = time.monotonic()
    entry.missing = tuple(dict.fromkeys(p for paths_ in configured for p in paths_ if p not in listings))
    _combined[(family, kinds)] = entry
    return found, entry.names


def searched_folders(family: str, kinds=CHECKPOINTS) -> str:
    return ", ".join(dict.fromkeys(key for key, _kind in _searched(family, kinds)))


def list_models(family: str, kinds=CHECKPOINTS) -> tuple[str, ...]:
    """The names a family's loader lists, sorted: the same tuple object while the listing is unchanged, so a
    caller can tell "unchanged" by identity (nodes/schema_cache.py) without comparing hundreds of names."""
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


def resolve_listed(name: str, family: str, kinds=CHECKPOINTS) -> tuple[str, str]:
    """resolve_model for a name the listing already offered, without checking the folders again.

    For IS_CHANGED: ComfyUI validates a prompt (INPUT_TYPES, which checks the folders) before it runs it,
    so the cached listing is as fresh as the prompt; a name missing from it, or whose file has gone, takes
    the full path (resolve_model)."""
    cached = _combined.get((family, kinds))
    entry = cached.found.get(name) if cached is not None and isinstance(name, str) else None
    if entry is not None and _still_there(*entry):
        return entry
    return resolve_model(name, family, kinds)


def _entries_looked_up_again(family: str, kinds) -> dict[str, tuple[str, str]]:
    """_entries from fresh walks: before a name is refused (only on this rare path)."""
    _listings.clear()
    _combined.clear()
    return _entries(family, kinds)


def _still_there(kind: str, path: str) -> bool:
    return os.path.isfile(path) if kind == SINGLE_FILE else os.path.isdir(path)
