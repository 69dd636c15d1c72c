"""Independent reference for InstaFlow image-to-image / partial denoise, on ReferenceInstaFlow's modules.

The official pipeline_rf.py has no img2img; the math follows its noise path (REFERENCE.md section 1,
last bullet): with strength s, the start latent is (1 - s) * x0 + s * noise, where
x0 = vae.encode(image).latent_dist.mode() * scaling_factor (0.18215), and N Euler steps run at UNet
timesteps 1000 * s * (1 - i/N) with dt = s / N, the same update and guidance as pipeline_rf.py.

The posterior mode is what ComfyUI's VAEEncode returns (comfy/ldm/models/autoencoder.py,
DiagonalGaussianRegularizer(sample=False)); ComfyUI keeps VAE latents unscaled and multiplies by the
model's latent_format.scale_factor (0.18215 for SD1.5) inside the sampler (process_latent_in), and
divides it out again at the end (process_latent_out). Images are scaled to [-1, 1] like
diffusers' VaeImageProcessor and ComfyUI's VAE.process_input.

Only diffusers modules (through ReferenceInstaFlow) are used: nothing from the pack or ComfyUI.
`start_mixing` exists to express deliberately wrong variants in tests.
"""
from __future__ import annotations

from typing import Callable, Optional

import numpy as np
import torch

from devtools.reference_rf import Prompt, ReferenceInstaFlow


def rectified_flow_mixing(image_latent: torch.Tensor, noise: torch.Tensor, strength: float) -> torch.Tensor:
    """The start latent on InstaFlow's straight path: (1 - s) * x0 + s * noise."""
    return (1.0 - strength) * image_latent + strength * noise


@torch.no_grad()
def encode_image(reference: ReferenceInstaFlow, images: np.ndarray) -> torch.Tensor:
    """uint8 images (B, H, W, 3) -> scaled latents x0 (B, 4, H/8, W/8): posterior mode * scaling_factor."""
    pixels = torch.from_numpy(np.asarray(images)).float() / 255.0
    pixels = pixels.permute(0, 3, 1, 2) * 2.0 - 1.0
    weight = next(reference.vae.parameters())
    latent = reference.vae.encode(pixels.to(weight.device, weight.dtype)).latent_dist.mode()
    return latent * reference.scaling_factor


def _embeddings(reference, prompt, batch, guidance_scale, negative_prompt):
    prompts = [prompt] * batch if isinstance(prompt, str) else list(prompt)
    embeds = reference.encode_prompt(prompts)
    if guidance_scale > 1.0:
        negative = negative_prompt if negative_prompt is not None else ""
        negatives = [negative] * batch if isinstance(negative, str) else list(negative)
        embeds = torch.cat([reference.encode_prompt(negatives), embeds])
    return embeds


@torch.no_grad()
def integrate_from(reference: ReferenceInstaFlow, latents: torch.Tensor, embeds: torch.Tensor, strength: float,
                   steps: int, guidance_scale: float = 1.0) -> torch.Tensor:
    """pipeline_rf.py's Euler loop started at noise level `strength`: t = 1000 * s * (1 - i/N), dt = s/N.

    With guidance (> 1) `embeds` is cat([negative, positive]) as in pipeline_rf.py.
    """
    weight = next(reference.unet.parameters())
    latents = latents.to(weight.device, weight.dtype).clone()
    do_cfg = guidance_scale > 1.0
    dt = strength / steps
    for i in range(steps):
        t = 1000.0 * strength * (1.0 - i / steps)
        v = reference.velocity(torch.cat([latents] * 2) if do_cfg else latents, t, embeds)
        if do_cfg:
            v_neg, v_pos = v.chunk(2)
            v = v_neg + guidance_scale * (v_pos - v_neg)
        latents = latents + dt * v
    return latents


@torch.no_grad()
def generate_img2img(
    reference: ReferenceInstaFlow,
    prompt: Prompt,
    image_latent: torch.Tensor,
    noise: torch.Tensor,
    strength: float,
    steps: int = 1,
    guidance_scale: float = 1.0,
    negative_prompt: Optional[Prompt] = None,
    *,
    start_mixing: Callable[[torch.Tensor, torch.Tensor, float], torch.Tensor] = rectified_flow_mixing,
) -> torch.Tensor:
    """Images (B, H, W, 3) in [0, 1] from scaled image latents x0 and noise, at strength s in (0, 1]."""
    embeds = _embeddings(reference, prompt, noise.shape[0], guidance_scale, negative_prompt)
    start = start_mixing(image_latent.to(noise).expand_as(noise), noise, strength)
    return reference.decode(integrate_from(reference, start, embeds, strength, steps, guidance_scale))
