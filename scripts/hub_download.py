"""Fetch the files Load InstaFlow Checkpoint reads from a Hugging Face diffusers repository, and check them.

Used by scripts/demo.py --download. What is fetched: model_index.json and, for each of unet/, text_encoder/
and vae/, the one weights file the loader would pick (model_loaders/diffusers_folder.py: safetensors before
.bin, so the .bin twins, the safety checker, the feature extractor, the tokenizer and the scheduler config
are never downloaded). Downloads go through huggingface_hub (HF_ENDPOINT selects the hub) with its progress
bars; an interrupted download is resumed from its `.incomplete` file with an HTTP Range request. Xet
transfers are switched off (HF_HUB_DISABLE_XET) so every file comes over plain HTTPS, the path the tests
cover. Every file is checked against the hub's record (size, and sha256 for LFS files or the git blob id
for small files) plus a safetensors header check; a truncated or corrupt file already on disk is reported
and fetched again, and a download that does not match is reported and refused.
"""
from __future__ import annotations

import hashlib
import json
import os
import struct
import threading
import time
from dataclasses import dataclass
from pathlib import Path

os.environ.setdefault("HF_HUB_DISABLE_XET", "1")
os.environ.setdefault("HF_HUB_DISABLE_TELEMETRY", "1")
os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")  # our own progress lines work in logs and pipes too

from model_loaders.diffusers_folder import REQUIRED_PARTS, weight_name_choice  # noqa: E402 - after the hub settings

INDEX_FILE = "model_index.json"


class DownloadError(RuntimeError):
    """A file could not be fetched, or what was fetched does not match the hub's record."""


@dataclass(frozen=True)
class HubFile:
    path: str  # path in the repository, e.g. "unet/diffusion_pytorch_model.safetensors"
    size: int
    sha256: str | None  # LFS files
    blob_id: str | None  # git blob sha1 (small files)


def plan(siblings: list[HubFile]) -> list[HubFile]:
    """The files the loader reads, chosen from the repository listing as the loader chooses on disk."""
    by_path = {f.path: f for f in siblings}
    chosen = [by_path[INDEX_FILE]] if INDEX_FILE in by_path else []
    for part in REQUIRED_PARTS:
        listed = [p.split("/", 1)[1] for p in by_path if p.startswith(part + "/") and p.count("/") == 1]
        name = weight_name_choice(listed, part)
        if name is None:
            raise DownloadError(f"the repository has no {part}/ weights (files under {part}/: {sorted(listed) or 'none'})")
        chosen.append(by_path[f"{part}/{name}"])
    return chosen


def _hash(path: Path, algorithm: str, prefix: bytes = b"") -> str:
    digest = hashlib.new(algorithm)
    digest.update(prefix)
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 24), b""):
            digest.update(block)
    return digest.hexdigest()


def safetensors_problem(path: Path) -> str | None:
    """Why `path` is not a whole safetensors file (header length, JSON header, data size), or None."""
    size = path.stat().st_size
    with open(path, "rb") as handle:
        head = handle.read(8)
        if len(head) < 8:
            return f"{size} bytes: too short for a safetensors header"
        (header_length,) = struct.unpack("<Q", head)
        if header_length > size - 8:
            return f"the header says {header_length} header bytes but the file has {size}"
        try:
            header = json.loads(handle.read(header_length))
        except ValueError:
            return "the safetensors header is not valid JSON"
    ends = [entry["data_offsets"][1] for key, entry in header.items() if key != "__metadata__"]
    expected = 8 + header_length + max(ends, default=0)
    if expected != size:
        return f"the tensors need {expected} bytes but the file has {size}"
    return None


def problem(path: Path, record: HubFile) -> str | None:
    """Why the local file does not match the hub's record, or None when it does."""
    size = path.stat().st_size
    if size != record.size:
        kind = "truncated" if size < record.size else "too long"
        return f"{kind}: {size} bytes, the hub has {record.size}"
    if path.suffix == ".safetensors":
        why = safetensors_problem(path)
        if why:
            return f"corrupt: {why}"
    if record.sha256:
        actual = _hash(path, "sha256")
        if actual != record.sha256:
            return f"corrupt: sha256 {actual}, the hub has {record.sha256}"
    elif record.blob_id:
        actual = _hash(path, "sha1", f"blob {size}\0".encode())
        if actual != record.blob_id:
            return f"corrupt: git blob id {actual}, the hub has {record.blob_id}"
    return None


def _forget(folder: Path, record: HubFile) -> None:
    """Remove a bad local copy and huggingface_hub's record of it, so the next call downloads it again."""
    (folder / record.path).unlink(missing_ok=True)
    (folder / ".cache" / "huggingface" / "download" / f"{record.path}.metadata").unlink(missing_ok=True)


def _partial_bytes(folder: Path, record: HubFile) -> int:
    """Bytes of an interrupted download of `record` that huggingface_hub kept (its `.incomplete` file)."""
    staging = folder / ".cache" / "huggingface" / "download" / Path(record.path).parent
    return sum(p.stat().st_size for p in staging.glob("*.incomplete")) if staging.is_dir() else 0


class Progress:
    """Prints "<file>: <done> of <total> (<percent>), <rate>" every few seconds while a file downloads."""

    def __init__(self, folder: Path, record: HubFile, log, every: float = 3.0):
        self.folder, self.record, self.log, self.every = folder, record, log, every
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._start = (time.monotonic(), _partial_bytes(folder, record))

    def line(self, done: int) -> str:
        seconds = max(time.monotonic() - self._start[0], 1e-6)
        rate = (done - self._start[1]) / seconds
        return (f"    {self.record.path}: {_human(done)} of {_human(self.record.size)} "
                f"({100 * done / max(self.record.size, 1):.0f}%), {_human(rate)}/s")

    def _run(self) -> None:
        while not self._stop.wait(self.every):
            self.log(self.line(_partial_bytes(self.folder, self.record)))

    def __enter__(self) -> "Progress":
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join()
        if exc[0] is None:
            self.log(self.line(self.record.size))


def _human(size: float) -> str:
    for unit in ("B", "KB", "MB", "GB"):
        if size < 1000 or unit == "GB":
            return f"{size:.0f} {unit}" if unit == "B" else f"{size:.2f} {unit}"
        size /= 1000
    return f"{size} B"


def download(repo_id: str, folder: Path, revision: str = "main", log=print) -> list[Path]:
    """Fetch what the loader reads from `repo_id` into `folder` (a diffusers folder); returns the verified paths."""
    from huggingface_hub import HfApi, constants, hf_hub_download  # only when downloading

    try:
        info = HfApi().model_info(repo_id, revision=revision, files_metadata=True)
    except Exception as e:  # no network, unknown repository, hub error
        raise DownloadError(f"cannot read {repo_id} from {constants.ENDPOINT}: {type(e).__name__}: {e}") from e
    siblings = [HubFile(s.rfilename, s.size, s.lfs.sha256 if s.lfs else None, s.blob_id) for s in info.siblings]
    files = plan(siblings)
    total = sum(f.size for f in files)
    log(f"{repo_id} ({constants.ENDPOINT}): {len(files)} of its {len(siblings)} files are needed, "
        f"{_human(total)}: {', '.join(f.path for f in files)}")
    folder.mkdir(parents=True, exist_ok=True)
    done = []
    for i, record in enumerate(files, 1):
        path = folder / record.path
        label = f"[{i}/{len(files)}] {record.path} ({_human(record.size)})"
        if path.is_file():
            why = problem(path, record)
            if why is None:
                log(f"{label}: already here, verified")
                done.append(path)
                continue
            log(f"{label}: the copy on disk is {why}; downloading it again")
            _forget(folder, record)
        else:
            kept = _partial_bytes(folder, record)
            log(f"{label}: " + (f"resuming an interrupted download ({_human(kept)} already here)" if kept else "downloading"))
        try:
            with Progress(folder, record, log):
                hf_hub_download(repo_id, record.path, revision=info.sha or revision, local_dir=folder)
        except Exception as e:  # network errors of any kind: keep the partial file for the next run
            kept = _partial_bytes(folder, record)
            raise DownloadError(f"{record.path}: the download stopped ({type(e).__name__}: {e}). {_human(kept)} of "
                                f"{_human(record.size)} are kept; run the same command again to resume") from e
        why = problem(path, record)
        if why is not None:
            _forget(folder, record)
            raise DownloadError(f"{record.path} from {repo_id} is {why} after downloading; it was deleted. "
                                "Run the command again; if this repeats, the hub or a proxy is serving a broken file")
        log(f"{label}: verified")
        done.append(path)
    return done


def has_verified_layout(folder: Path) -> bool:
    """A cheap check that a folder has the weights the loader reads (complete safetensors files)."""
    for part in REQUIRED_PARTS:
        names = [p.name for p in (folder / part).glob("*")] if (folder / part).is_dir() else []
        name = weight_name_choice(names, part)
        if name is None:
            return False
        path = folder / part / name
        if path.suffix == ".safetensors" and safetensors_problem(path):
            return False
    return True
