"""Which weight files of a diffusers folder are loaded (the file names ComfyUI's diffusers loader tries)."""
from __future__ import annotations

import os

# In ComfyUI's order of preference (comfy/diffusers_load.py).
_UNET_OR_VAE = ("diffusion_pytorch_model.fp16.safetensors", "diffusion_pytorch_model.safetensors",
                "diffusion_pytorch_model.fp16.bin", "diffusion_pytorch_model.bin")
_TEXT_ENCODER = ("model.fp16.safetensors", "model.safetensors", "pytorch_model.fp16.bin", "pytorch_model.bin")
WEIGHT_NAMES = {"unet": _UNET_OR_VAE, "vae": _UNET_OR_VAE, "text_encoder": _TEXT_ENCODER}


def weight_file(folder: str, part: str) -> str | None:
    for name in WEIGHT_NAMES[part]:
        path = os.path.join(folder, part, name)
        if os.path.isfile(path):
            return path
    return None


def weight_files(folder: str) -> dict[str, str]:
    """part -> weights path for unet, vae and text_encoder; raises naming every missing part."""
    found = {part: weight_file(folder, part) for part in WEIGHT_NAMES}
    missing = [part for part, path in found.items() if path is None]
    if missing:
        expected = "; ".join(f"{part}/{WEIGHT_NAMES[part][1]}" for part in missing)
        raise FileNotFoundError(f"{folder}: this diffusers folder has no {' and no '.join(p + '/' for p in missing)} "
                                f"weights (expected {expected}); InstaFlow needs unet/, vae/ and text_encoder/. "
                                "Was the download incomplete?")
    return found
