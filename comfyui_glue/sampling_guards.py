"""What InstaFlow sampling checks before it starts (ComfyUI glue), each failure a message naming the cause.

- The model: patched for InstaFlow; an SD1.5 model not yet patched is patched here; a model whose
  sampling was replaced by ANOTHER flow convention (ModelSamplingSD3 / ModelSamplingFlux /
  ModelSamplingAuraFlow placed after ModelSamplingInstaFlow) is refused: that convention has the
  opposite velocity sign (flow_math/flows/instaflow.py) and would turn an InstaFlow model into noise.
- The latent: 4 channels like SD1.5's, and finite.
- The batch: not hopelessly beyond the device's memory (flow_math/memory_estimate.py).
"""
from __future__ import annotations

import logging

import comfy.model_management

from ..model_loaders.architecture import require_sd15_model
from ..flow_math.finite_checks import require_finite_latent
from ..flow_math.memory_estimate import skip_activations_per_latent_pixel, unet_activation_lower_bound
from ..flow_math.flows.instaflow import FAMILY as INSTAFLOW
from .model_sampling import patch_sampling, samples_as_or_unpatched


class NotEnoughMemory(MemoryError):
    """A batch that cannot fit in the device's memory; raised before anything is allocated."""


def patched_for_instaflow(model, who: str):
    """`model` (an SD1.5-architecture ModelPatcher) patched for InstaFlow rectified flow."""
    require_sd15_model(model, who)
    return patch_sampling(model, INSTAFLOW)


def instaflow_model_for_sampling(model, who: str):
    if samples_as_or_unpatched(model, INSTAFLOW, who, "the InstaFlow sampler"):
        return model
    logging.info("%s: model is not patched for rectified flow; patching it for this run", who)
    return patched_for_instaflow(model, who)


def _latent_channels(model) -> int:
    latent_format = model.get_model_object("latent_format")
    return getattr(latent_format, "latent_channels", 4)


def check_latent(model, latent_image, who: str) -> None:
    channels = _latent_channels(model)
    if latent_image.ndim != 4 or latent_image.shape[1] != channels:
        raise ValueError(
            f"{who}: latent_image has shape {tuple(latent_image.shape)}; this SD1.5 model works on "
            f"(batch, {channels}, height/8, width/8) latents. Was it made for another model (SD3 and Flux latents have "
            "16 channels, video latents 5 dimensions)? Use Empty Latent Image, or VAE Encode with this model's VAE.")
    require_finite_latent(latent_image, "latent_image", who)


_total_memory_by_device: dict = {}


def _total_memory(device) -> int:
    """comfy.model_management.get_total_memory(device), asked once per device: a device's total memory does not
    change while the process runs, and the query (psutil on CPU, a driver call on a GPU) is a visible part of the
    pack's per-prompt time (docs/performance.md)."""
    total = _total_memory_by_device.get(device)  # torch.device is hashable; str() of it costs more than the lookup
    if total is None:
        total = _total_memory_by_device[device] = comfy.model_management.get_total_memory(device)
    return total


def check_memory(model, latent_shape, who: str) -> None:
    unet = model.model.model_config.unet_config
    per_pixel = skip_activations_per_latent_pixel(unet["model_channels"], unet["channel_mult"], unet["num_res_blocks"])
    dtype = model.model.manual_cast_dtype or model.model.get_dtype()
    batch, _channels, height, width = latent_shape
    needed = unet_activation_lower_bound(batch, height, width, comfy.model_management.dtype_size(dtype), per_pixel)
    device = model.load_device
    total = _total_memory(device)
    if needed > total:
        raise NotEnoughMemory(
            f"{who}: a batch of {batch} latents of {width * 8}x{height * 8} pixels needs at least {needed / 2**30:.1f} GiB "
            f"for the UNet's activations alone, more than the {total / 2**30:.1f} GiB of memory of {device}. "
            "Lower batch_size or the resolution.")
