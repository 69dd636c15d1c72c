"""Independent reference for rectified-flow inversion, on ReferenceInstaFlow's diffusers modules.

The loop of yangxiaofeng/rectified_flow_prior pipeline_rf_inverse.py (RectifiedFlowPipeline.__call__
step 7), with the timestep it intends: latents = VAE latent * 0.18215; for i = 0..N-1, t = 1000 * i / N,
v = unet(latents, t) with the guidance of pipeline_rf.py (v_neg + g * (v_pos - v_neg), only when g > 1),
latents = latents - dt * v, dt = 1 / N. (The script itself passes the UNet `1 - t` with t on the
0..1000 scale; `timestep` exists to express that slip in tests.)

`invert_fixed_point` solves every backward step for the latent whose forward pipeline_rf.py step
(latents + dt * v at t = 1000 * (i + 1) / N) lands on the current one, by the iteration
y <- x - dt * v(y, t_hi) from the explicit guess. `regenerate` is pipeline_rf.py's loop from given
start latents, returning latents.

Only diffusers modules (through ReferenceInstaFlow) are used: nothing from the pack or ComfyUI.
"""
from __future__ import annotations

from typing import Callable, Optional

import torch

from devtools.reference_img2img import _embeddings, integrate_from
from devtools.reference_rf import Prompt, ReferenceInstaFlow


def intended_timestep(i: int, steps: int) -> float:
    return 1000.0 * i / steps


def _guided_velocity(reference: ReferenceInstaFlow, latents, t, embeds, guidance_scale):
    do_cfg = guidance_scale > 1.0
    v = reference.velocity(torch.cat([latents] * 2) if do_cfg else latents, t, embeds)
    if do_cfg:
        v_neg, v_pos = v.chunk(2)
        v = v_neg + guidance_scale * (v_pos - v_neg)
    return v


@torch.no_grad()
def invert_explicit(reference: ReferenceInstaFlow, prompt: Prompt, image_latent: torch.Tensor, steps: int,
                    guidance_scale: float = 1.0, negative_prompt: Optional[Prompt] = None, *,
                    timestep: Callable[[int, int], float] = intended_timestep) -> torch.Tensor:
    """Latents at t = 1000 from scaled image latents (B, 4, h, w) by N explicit backward Euler steps."""
    weight = next(reference.unet.parameters())
    latents = image_latent.to(weight.device, weight.dtype).clone()
    embeds = _embeddings(reference, prompt, latents.shape[0], guidance_scale, negative_prompt)
    dt = 1.0 / steps
    for i in range(steps):
        latents = latents - dt * _guided_velocity(reference, latents, timestep(i, steps), embeds, guidance_scale)
    return latents


@torch.no_grad()
def invert_fixed_point(reference: ReferenceInstaFlow, prompt: Prompt, image_latent: torch.Tensor, steps: int,
                       iterations: int, guidance_scale: float = 1.0,
                       negative_prompt: Optional[Prompt] = None) -> torch.Tensor:
    weight = next(reference.unet.parameters())
    latents = image_latent.to(weight.device, weight.dtype).clone()
    embeds = _embeddings(reference, prompt, latents.shape[0], guidance_scale, negative_prompt)
    dt = 1.0 / steps
    for i in range(steps):
        guess = latents - dt * _guided_velocity(reference, latents, intended_timestep(i, steps), embeds, guidance_scale)
        for _ in range(iterations):
            guess = latents - dt * _guided_velocity(reference, guess, intended_timestep(i + 1, steps), embeds,
                                                    guidance_scale)
        latents = guess
    return latents


@torch.no_grad()
def regenerate(reference: ReferenceInstaFlow, prompt: Prompt, start: torch.Tensor, steps: int,
               guidance_scale: float = 1.0, negative_prompt: Optional[Prompt] = None) -> torch.Tensor:
    """pipeline_rf.py's N-step loop from `start` (scaled latents at t = 1000); returns scaled latents."""
    embeds = _embeddings(reference, prompt, start.shape[0], guidance_scale, negative_prompt)
    return integrate_from(reference, start, embeds, 1.0, steps, guidance_scale)
