"""Independent reference for the InstaFlow weight-delta recipe ("InstaFlow + dreamshaper-7").

Mirrors the official gnobitab/InstaFlow code/rf_lora.py load_hf_hub_lora + merge_dW_to_unet
(REFERENCE.md sections 2-3): dW = finetune_unet - base_sd15_unet over the UNet state dict,
unet += alpha * dW, and the pipeline's VAE and text encoder are replaced by the finetune's.

The stand-in checkpoints are single LDM-layout files; they are read with diffusers' own converters
(diffusers.loaders.single_file_utils), so nothing from the pack or ComfyUI is used.
"""
from __future__ import annotations

from pathlib import Path

import torch
from diffusers.loaders.single_file_utils import (
    convert_ldm_clip_checkpoint,
    convert_ldm_unet_checkpoint,
    convert_ldm_vae_checkpoint,
)
from safetensors.torch import load_file

from devtools.reference_rf import ReferenceInstaFlow


@torch.no_grad()
def apply_weight_delta(reference: ReferenceInstaFlow, finetune_file: Path, base_file: Path, alpha: float) -> None:
    """reference.unet += alpha * (finetune UNet - base UNet); text encoder and VAE := the finetune's."""
    finetune = load_file(str(finetune_file))
    finetune_unet = convert_ldm_unet_checkpoint(finetune, dict(reference.unet.config))
    base_unet = convert_ldm_unet_checkpoint(load_file(str(base_file)), dict(reference.unet.config))
    unet = reference.unet.state_dict()
    if set(finetune_unet) != set(unet) or set(base_unet) != set(unet):
        raise KeyError("the finetune / base UNet weights do not match the InstaFlow UNet's names")
    for key, weight in unet.items():
        weight += alpha * (finetune_unet[key].float() - base_unet[key].float())
    del finetune_unet, base_unet
    use_text_encoder_and_vae_of(reference, finetune)


@torch.no_grad()
def use_text_encoder_and_vae_of(reference: ReferenceInstaFlow, checkpoint: dict) -> None:
    """reference's text encoder and VAE := those of an SD1.5 single-file (LDM-layout) state dict."""
    text = reference.text_encoder.load_state_dict(_float(convert_ldm_clip_checkpoint(checkpoint)), strict=False)
    if text.missing_keys or any(not k.endswith("position_ids") for k in text.unexpected_keys):
        raise KeyError(f"finetune text encoder mismatch: {text.missing_keys[:3]} {text.unexpected_keys[:3]}")
    reference.vae.load_state_dict(_float(convert_ldm_vae_checkpoint(checkpoint, dict(reference.vae.config))))


def _float(state: dict) -> dict:
    return {k: v.float() if v.is_floating_point() else v for k, v in state.items()}
