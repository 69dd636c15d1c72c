"""Which architecture a state dict or a loaded model is, and which architectures each flow family needs.

ComfyUI recognises architectures from key names and tensor shapes (comfy/model_detection.py). The
InstaFlow loader asks it BEFORE building a model: building an SDXL or Flux model just to find out
that it is not SD1.5 would allocate gigabytes first.
"""
from __future__ import annotations

import comfy.model_detection

from ..flow_math.flows.instaflow import FAMILY as INSTAFLOW

SD15, SDXL, SD2 = "SD1.5", "SDXL", "SD2.x"

# ComfyUI's model config class names that are not self-explanatory.
_FRIENDLY_NAMES = {"SD15": "SD1.5", "SD20": "SD2.x", "SDXLRefiner": "SDXL refiner", "SD15_instructpix2pix": "SD1.5 InstructPix2Pix",
                   "SDXL_instructpix2pix": "SDXL InstructPix2Pix", "SD21UnclipL": "SD2.1 unCLIP", "SD21UnclipH": "SD2.1 unCLIP",
                   "SD3": "SD3", "BASE": "unrecognised UNet"}


def architecture_name(model_config) -> str:
    name = type(model_config).__name__
    return _FRIENDLY_NAMES.get(name, name)


def is_sd15_unet(unet_config: dict) -> bool:
    """InstaFlow 0.9B and 2-RF are SD1.5 UNets: 320 channels, 768-dim text context, no pooled input."""
    return (unet_config.get("model_channels") == 320 and unet_config.get("context_dim") == 768
            and not unet_config.get("adm_in_channels"))


def unet_family(unet_config: dict) -> str | None:
    """SD15, SDXL or SD2 for the UNets the straight-flow families were trained from, else None.

    SDXL: 2048-dim context (CLIP-L + bigG) and a 2816-dim pooled/size input; SD2.x: 1024-dim OpenCLIP-H
    context. Channel counts beyond model_channels are not checked, as ComfyUI's own detector does not.
    """
    if is_sd15_unet(unet_config):
        return SD15
    if unet_config.get("model_channels") != 320:
        return None
    if unet_config.get("context_dim") == 2048 and unet_config.get("adm_in_channels") == 2816:
        return SDXL
    if unet_config.get("context_dim") == 1024 and not unet_config.get("adm_in_channels"):
        return SD2
    return None


def _quietly(detect, state_dict, *args):
    # A copy: model_config_from_unet pops a scaled-fp8 marker key from the dict it is given, and the
    # real load that follows must still see it. Odd files can make detection itself raise.
    try:
        return detect(dict(state_dict), *args)
    except Exception:  # noqa: BLE001 - "not recognised" is the answer for any file detection chokes on
        return None


def detect_layout(state_dict: dict) -> tuple[str, object]:
    """(layout, model_config or None); layout is "checkpoint", "unet_only", "diffusers_unet" or "unknown".

    "checkpoint": a full single-file checkpoint (UNet under model.diffusion_model., VAE, text encoder);
    "unet_only": LDM-layout diffusion model without prefix (as in models/diffusion_models);
    "diffusers_unet": a diffusers-layout UNet (unet/diffusion_pytorch_model.safetensors).
    """
    prefix = comfy.model_detection.unet_prefix_from_state_dict(state_dict)
    config = _quietly(comfy.model_detection.model_config_from_unet, state_dict, prefix)
    if config is not None:
        return "checkpoint", config
    config = _quietly(comfy.model_detection.model_config_from_unet, state_dict, "")
    if config is not None:
        return "unet_only", config
    config = _quietly(comfy.model_detection.model_config_from_diffusers_unet, state_dict)
    if config is not None:
        return "diffusers_unet", config
    return "unknown", None


def require_config(model_config, source: str, allowed, needs: str) -> str:
    """The architecture (one of `allowed`) of a detected model config; raises naming `source` otherwise."""
    if model_config is None:
        raise ValueError(f"{source}: ComfyUI does not recognise a diffusion model in this file (is it a LoRA, VAE, "
                         f"text encoder or ControlNet? Those belong in their own model folders). {needs}.")
    family = unet_family(model_config.unet_config)
    if family not in allowed:
        raise ValueError(f"{source}: this is a {architecture_name(model_config)} model (detected by ComfyUI from its "
                         f"weights); {needs}.")
    return family


def require_sd15_config(model_config, source: str) -> None:
    """The InstaFlow family's architecture check (its sampler, inversion and training are SD1.5-only)."""
    require_config(model_config, source, INSTAFLOW.architectures, INSTAFLOW.needs)


def require_sd15_model(model, source: str) -> None:
    """The same check on a loaded ComfyUI MODEL (a ModelPatcher), e.g. one from a stock loader."""
    require_sd15_config(model.model.model_config, source)
