"""Which weight files of a diffusers folder are loaded.

ComfyUI's own diffusers loader (comfy/diffusers_load.py) tries fixed names; published pipelines
also ship variant files (`diffusion_pytorch_model.<variant>.safetensors`, as diffusers'
`variant=` argument names them: PeRFlow's SDXL UNets are `...v0-fix.safetensors`, its SD1.5 delta
weights `...v0-1` and `...v0-0`). The plain and fp16 names come first, in ComfyUI's order; then any
other safetensors variant, the highest-sorting name first (the newest of v0-0 / v0-1); pickles last.
"""
from __future__ import annotations

import os

_UNET_OR_VAE = ("diffusion_pytorch_model", (".fp16.safetensors", ".safetensors"), (".fp16.bin", ".bin"))
_TEXT_ENCODER = ("model", (".fp16.safetensors", ".safetensors"), ("pytorch_model.fp16.bin", "pytorch_model.bin"))
_NAMES = {"unet": _UNET_OR_VAE, "vae": _UNET_OR_VAE, "text_encoder": _TEXT_ENCODER, "text_encoder_2": _TEXT_ENCODER}
REQUIRED_PARTS = ("unet", "vae", "text_encoder")
OPTIONAL_PARTS = ("text_encoder_2",)  # SDXL's OpenCLIP bigG


def _candidates(folder: str, stem: str, suffixes, pickles) -> list[str]:
    names = [stem + suffix for suffix in suffixes]
    try:
        listed = os.listdir(folder)
    except OSError:
        listed = []
    variants = sorted((n for n in listed if n.startswith(stem + ".") and n.endswith(".safetensors") and n not in names),
                      reverse=True)
    bins = [(stem + p) if p.startswith(".") else p for p in pickles]
    return names + variants + bins


def weight_file_in(folder: str, part: str = "unet") -> str | None:
    """The weights file of a model part stored directly in `folder` (as a UNet folder is)."""
    stem, suffixes, pickles = _NAMES[part]
    for name in _candidates(folder, stem, suffixes, pickles):
        path = os.path.join(folder, name)
        if os.path.isfile(path):
            return path
    return None


def weight_file(folder: str, part: str) -> str | None:
    return weight_file_in(os.path.join(folder, part), part)


def is_unet_folder(path: str) -> bool:
    """A folder holding one UNet in diffusers form (config.json + weights), such as PeRFlow's delta weights."""
    return os.path.isfile(os.path.join(path, "config.json")) and weight_file_in(path) is not None


def weight_files(folder: str) -> dict[str, str]:
    """part -> weights path for unet, vae, text_encoder (and text_encoder_2 when present); raises naming every missing part."""
    found = {part: weight_file(folder, part) for part in REQUIRED_PARTS + OPTIONAL_PARTS}
    missing = [part for part in REQUIRED_PARTS if found[part] is None]
    if missing:
        expected = "; ".join(f"{part}/{_NAMES[part][0]}.safetensors" for part in missing)
        raise FileNotFoundError(f"{folder}: this diffusers folder has no {' and no '.join(p + '/' for p in missing)} "
                                f"weights (expected {expected}); a pipeline needs unet/, vae/ and text_encoder/. "
                                "Was the download incomplete?")
    return {part: path for part, path in found.items() if path is not None}


def weight_file_parts() -> tuple[str, ...]:
    return REQUIRED_PARTS + OPTIONAL_PARTS
