"""Teacher pairs on disk: the format, and reading and writing it safely.

A pairs set is a folder, `<ComfyUI output>/instaflow_pairs/<name>/`, with one safetensors file per
(noise, latent, conditioning) triplet, named `<seed>_<prompt hash>.safetensors`:

    tensors   noise         float32 (1, C, H, W)  the exact starting noise, unit variance, in the model's own
                                                  latent space (the teacher's sampler scaled it to its first sigma)
              latent        float32 (1, C, H, W)  the teacher's final latent for that noise and prompt, as a
                                                  ComfyUI LATENT (what KSampler returns and VAEDecode takes); the
                                                  model's space is process_latent_in(latent) (x 0.18215 for SD1.5)
              conditioning  float32 (1, T, D)     the prompt's text-encoder output (cross-attention context)
    metadata  format        "instaflow-pairs/1"
              architecture  ComfyUI model config class of the teacher, e.g. "SD15"
              latent_shape  "C,H,W" (latent channels and size)
              context_dim   D, the text-context width the UNet takes (768 for SD1.5)
              teacher       JSON: sampler_name, scheduler, steps, cfg, negative_prompt, model_sampling
              prompt, seed  what made this pair

Every file of a folder has the same architecture, latent_shape, context_dim and teacher; a file
that disagrees, or a student model of another architecture, is refused with a message, and nothing
is ever overwritten: each file is written under a hidden temporary name and renamed into place when
complete, so a server stopped mid-run leaves only whole pairs (and a hidden partial file that is
ignored and replaced on the next run). Files are read as tensors only (safetensors), never unpickled.
"""
from __future__ import annotations

import hashlib
import json
import os
import re
from dataclasses import dataclass, field

import torch
from safetensors import safe_open
from safetensors.torch import save_file

FORMAT = "instaflow-pairs/1"
SUBFOLDER = "instaflow_pairs"
HEADER_KEYS = ("architecture", "latent_shape", "context_dim", "teacher")
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._ -]{0,99}$")


class PairsError(ValueError):
    """A pairs set that cannot be used here (wrong folder name, foreign model, damaged file)."""


@dataclass
class FlowPairs:
    """A loaded pairs set (the PAIRS type between the pairs and training nodes)."""
    folder: str
    header: dict
    noise: torch.Tensor                      # (N, C, H, W)
    latent: torch.Tensor                     # (N, C, H, W)
    conditioning: list[torch.Tensor]         # N tensors (1, T, D); T may differ between prompts
    prompts: list[str] = field(default_factory=list)
    seeds: list[int] = field(default_factory=list)

    def __len__(self) -> int:
        return self.noise.shape[0]


def model_header(architecture: str, latent_shape: tuple[int, int, int], context_dim: int, teacher: dict) -> dict:
    return {"architecture": architecture, "latent_shape": ",".join(str(int(n)) for n in latent_shape),
            "context_dim": str(int(context_dim)), "teacher": json.dumps(teacher, sort_keys=True)}


def pairs_folder(root: str, name: str) -> str:
    """<root>/instaflow_pairs/<name>, refusing names that could leave it."""
    if not isinstance(name, str) or not _NAME.match(name) or ".." in name:
        raise PairsError(f"pairs name {name!r} is not a plain folder name (letters, digits, '.', '_', '-', spaces; "
                         "no slashes, not starting with '.')")
    return os.path.join(root, SUBFOLDER, name)


def list_pairs_sets(root: str) -> list[str]:
    base = os.path.join(root, SUBFOLDER)
    if not os.path.isdir(base):
        return []
    return sorted(n for n in os.listdir(base) if _NAME.match(n) and os.path.isdir(os.path.join(base, n)))


def pair_file_name(prompt: str, seed: int) -> str:
    digest = hashlib.sha256(prompt.encode("utf-8")).hexdigest()[:12]
    return f"{int(seed):020d}_{digest}.safetensors"


def _pair_files(folder: str) -> list[str]:
    if not os.path.isdir(folder):
        return []
    return sorted(n for n in os.listdir(folder) if n.endswith(".safetensors") and not n.startswith("."))


def folder_signature(folder: str) -> str:
    """Changes whenever a pair file is added, removed or replaced (for ComfyUI's IS_CHANGED)."""
    entries = []
    for name in _pair_files(folder):
        st = os.stat(os.path.join(folder, name))
        entries.append(f"{name}:{st.st_size}:{st.st_mtime_ns}")
    return hashlib.sha256("\n".join(entries).encode()).hexdigest()


def read_metadata(path: str) -> dict:
    try:
        with safe_open(path, framework="pt") as f:
            metadata = f.metadata() or {}
    except Exception as e:  # safetensors raises its own error types for truncated / foreign files
        raise PairsError(f"{path} is not a readable safetensors pairs file ({e})") from None
    if metadata.get("format") != FORMAT:
        raise PairsError(f"{path} is not an InstaFlow pairs file (format {metadata.get('format')!r}, expected {FORMAT!r})")
    return metadata


def _describe(header: dict) -> str:
    return (f"{header['architecture']} model, latent {header['latent_shape'].replace(',', 'x')}, "
            f"text context {header['context_dim']}")


def require_same_header(found: dict, expected: dict, where: str, fix: str) -> None:
    for key in HEADER_KEYS:
        if found.get(key) != expected.get(key):
            if key == "teacher":
                raise PairsError(f"{where} was made with other teacher settings ({found.get(key)}) than these "
                                 f"({expected.get(key)}). {fix}")
            raise PairsError(f"{where} holds pairs of a {_describe(found)}; this is a {_describe(expected)}. {fix}")


def folder_header(folder: str) -> dict | None:
    """The header of the pairs already in `folder` (None when empty); every file must agree."""
    names = _pair_files(folder)
    if not names:
        return None
    first = read_metadata(os.path.join(folder, names[0]))
    return {key: first.get(key) for key in HEADER_KEYS}


def existing_pair(folder: str, prompt: str, seed: int, header: dict) -> bool:
    """Whether the pair for (prompt, seed) is already on disk, made with the same header."""
    path = os.path.join(folder, pair_file_name(prompt, seed))
    if not os.path.exists(path):
        return False
    metadata = read_metadata(path)
    require_same_header(metadata, header, path, "Use another pairs name.")
    if metadata.get("prompt") != prompt or metadata.get("seed") != str(int(seed)):
        raise PairsError(f"{path} holds the pair of another prompt/seed (a hash collision?); use another pairs name")
    return True


def write_pair(folder: str, prompt: str, seed: int, header: dict, noise, latent, conditioning) -> str:
    """Writes one triplet atomically; never replaces an existing pair file."""
    os.makedirs(folder, exist_ok=True)
    name = pair_file_name(prompt, seed)
    path = os.path.join(folder, name)
    if os.path.exists(path):
        raise PairsError(f"{path} exists already; pair files are never overwritten")
    tensors = {"noise": noise.detach().to("cpu", torch.float32).contiguous(),
               "latent": latent.detach().to("cpu", torch.float32).contiguous(),
               "conditioning": conditioning.detach().to("cpu", torch.float32).contiguous()}
    metadata = dict(header, format=FORMAT, prompt=prompt, seed=str(int(seed)))
    partial = os.path.join(folder, f".{name}.partial")
    save_file(tensors, partial, metadata=metadata)
    os.replace(partial, path)
    return path


def load_pairs(folder: str) -> FlowPairs:
    names = _pair_files(folder)
    if not names:
        raise PairsError(f"{folder} holds no pairs (*.safetensors); make them with InstaFlow Make Pairs first")
    header, noise, latent, cond, prompts, seeds = None, [], [], [], [], []
    for name in names:
        path = os.path.join(folder, name)
        metadata = read_metadata(path)
        if header is None:
            header = {key: metadata.get(key) for key in HEADER_KEYS}
        require_same_header(metadata, header, path, f"Every file of {folder} must come from the same teacher.")
        with safe_open(path, framework="pt") as f:
            missing = {"noise", "latent", "conditioning"} - set(f.keys())
            if missing:
                raise PairsError(f"{path} lacks the tensor(s) {', '.join(sorted(missing))}")
            n, x, c = f.get_tensor("noise"), f.get_tensor("latent"), f.get_tensor("conditioning")
        shape = tuple(int(v) for v in header["latent_shape"].split(","))
        if tuple(n.shape) != (1,) + shape or tuple(x.shape) != (1,) + shape or c.ndim != 3 \
                or c.shape[-1] != int(header["context_dim"]):
            raise PairsError(f"{path} has tensors of shapes noise {tuple(n.shape)}, latent {tuple(x.shape)}, "
                             f"conditioning {tuple(c.shape)}, not what its metadata says ({_describe(header)})")
        noise.append(n)
        latent.append(x)
        cond.append(c)
        prompts.append(metadata.get("prompt", ""))
        seeds.append(int(metadata.get("seed", "0")))
    return FlowPairs(folder, header, torch.cat(noise), torch.cat(latent), cond, prompts, seeds)
