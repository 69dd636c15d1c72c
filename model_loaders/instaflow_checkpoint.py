"""Load an InstaFlow / 2-Rectified-Flow model as ComfyUI MODEL, CLIP, VAE, patched for rectified flow.

Both forms are plain SD1.5 weights (REFERENCE.md section 2); ComfyUI's own loaders read them
(safetensors, or torch files with weights_only) and detect them as SD1.5 EPS models, so the patch
from samplers/model_sampling.py is what makes them InstaFlow.
"""
from __future__ import annotations

import os

import comfy.diffusers_load
import comfy.sd
import folder_paths

from ..samplers.model_sampling import patch_instaflow_sampling
from .model_folders import resolve_instaflow_model

_DIFFUSERS_PARTS = ("unet", "vae", "text_encoder")
_WEIGHT_SUFFIXES = (".safetensors", ".bin")


def _embeddings():
    return folder_paths.get_folder_paths("embeddings")


def load_diffusers_folder(path: str):
    """(model, clip, vae) from a diffusers folder such as XCLiu/instaflow_0_9B_from_sd_1_5."""
    for part in _DIFFUSERS_PARTS:
        sub = os.path.join(path, part)
        if not os.path.isdir(sub) or not any(n.endswith(_WEIGHT_SUFFIXES) for n in os.listdir(sub)):
            raise FileNotFoundError(f"{path}: diffusers folder has no {part}/ weights (expected {part}/*.safetensors)")
    return comfy.diffusers_load.load_diffusers(path, output_vae=True, output_clip=True, embedding_directory=_embeddings())


def load_single_file(path: str):
    """(model, clip, vae) from a single-file SD1.5-layout checkpoint."""
    out = comfy.sd.load_checkpoint_guess_config(path, output_vae=True, output_clip=True, embedding_directory=_embeddings())
    model, clip, vae = out[:3]
    if clip is None or vae is None:
        raise ValueError(f"{path}: the checkpoint has no {'text encoder' if clip is None else 'VAE'} weights; "
                         "load a full checkpoint or use a UNet-only loader")
    return model, clip, vae


def architecture_name(model) -> str:
    return type(model.model.model_config).__name__


def require_sd15(model, source: str) -> None:
    """InstaFlow 0.9B and 2-RF are SD1.5 UNets: 320 channels, 768-dim text context, no pooled input."""
    unet = model.model.model_config.unet_config
    if not (unet.get("model_channels") == 320 and unet.get("context_dim") == 768 and not unet.get("adm_in_channels")):
        raise ValueError(f"{source}: found a {architecture_name(model)} model; InstaFlow needs an SD1.5-architecture model")


def load_instaflow(name: str):
    """(model patched for rectified flow, clip, vae) for a name listed by model_folders."""
    kind, path = resolve_instaflow_model(name)
    model, clip, vae = load_diffusers_folder(path) if kind == "diffusers" else load_single_file(path)
    require_sd15(model, path)
    return patch_instaflow_sampling(model), clip, vae
