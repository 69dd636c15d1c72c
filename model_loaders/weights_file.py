"""Reading a weights file into a state dict: safetensors, or torch pickles strictly as tensors only.

Every failure names the file and says what is wrong with it in words a user can act on; the raw
library message is kept at the end for bug reports. Pickle-based files (.ckpt/.pt/.pth/.bin) go
through torch.load(weights_only=True) whatever the ComfyUI or torch version: a pickle that holds
anything but tensors and plain containers is refused, never executed.
"""
from __future__ import annotations

import os

import comfy.utils

SAFETENSORS_SUFFIXES = (".safetensors", ".sft")


class ModelFileError(ValueError):
    """A model file that cannot be used; the message names the file."""


_SAFETENSORS_REASONS = (  # (fragments of the safetensors message, old and new wordings; what it means)
    (("not fully covered", "incomplete metadata", "metadataincompletebuffer", "invalid header length", "header too small"),
     "the file is shorter than its header says: it is truncated (an interrupted download or copy?)"),
    (("header too large", "headertoolarge", "invalid header", "deserializ"),
     "this is not a safetensors file (a .ckpt/.pt renamed, a saved web page, or another format?)"),
)


def _describe_safetensors_error(message: str) -> str:
    text = message.lower()
    for fragments, reason in _SAFETENSORS_REASONS:
        if any(fragment in text for fragment in fragments):
            return reason
    return "the file could not be read as safetensors"


def _describe_pickle_error(exc: Exception) -> str:
    text = str(exc)
    if "weights only load failed" in text.lower() or "unsupported global" in text.lower():
        found = ""
        for line in text.splitlines():
            if "Unsupported global:" in line:
                found = " (it references " + line.split("Unsupported global:", 1)[1].split(" was not", 1)[0].strip() + ")"
                break
        return ("refused: this pickle-based file contains Python objects other than tensors" + found + "; loading it "
                "would run code from the file. Use a .safetensors version of the model, or convert this file "
                "yourself only if you trust its source")
    if isinstance(exc, EOFError) or any(word in text.lower() for word in ("eof", "truncated", "zip archive")):
        return "the file is cut short or not a torch checkpoint"
    return "the file could not be read as a torch checkpoint (tensors only)"


def read_state_dict(path: str) -> tuple[dict, dict | None]:
    """(state dict, safetensors metadata or None) of the weights file at `path`."""
    if not os.path.isfile(path):
        raise ModelFileError(f"{path}: file not found (moved or deleted while ComfyUI was running?)")
    size = os.path.getsize(path)
    if size == 0:
        raise ModelFileError(f"{path}: the file is empty (0 bytes): an interrupted download or copy?")
    safetensors_file = path.lower().endswith(SAFETENSORS_SUFFIXES)
    try:
        sd, metadata = comfy.utils.load_torch_file(path, safe_load=True, return_metadata=True)
    except MemoryError:
        raise
    except Exception as exc:  # noqa: BLE001 - every reader failure becomes one message naming the file
        reason = _describe_safetensors_error(str(exc)) if safetensors_file else _describe_pickle_error(exc)
        raise ModelFileError(f"{path}: {reason}. File size {size} bytes. ({type(exc).__name__}: "
                             f"{str(exc).strip().splitlines()[0][:300] if str(exc).strip() else ''})") from exc
    if not isinstance(sd, dict) or not sd:
        raise ModelFileError(f"{path}: the file holds no weights")
    return sd, metadata
