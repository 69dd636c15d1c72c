"""Independent reference for InstaFlow latent-interpolation frames (seed walk + prompt walk).

Frame i of N sits at t = i / (N - 1). Its starting noise is the spherical interpolation (written
here in float64 NumPy, separately from the pack's flow_math/slerp.py) between ComfyUI's seeded noises
of the two seeds; its text embedding is the straight-line interpolation of the two prompts' CLIP
embeddings. Each frame then runs pipeline_rf.py's loop (devtools.reference_img2img.integrate_from at
strength 1). Nothing from the pack or ComfyUI is used.
"""
from __future__ import annotations

from typing import Optional

import numpy as np
import torch

from devtools.reference_img2img import integrate_from
from devtools.reference_rf import ReferenceInstaFlow


def slerp_float64(a: np.ndarray, b: np.ndarray, t: float) -> np.ndarray:
    """sin((1-t)θ)/sin θ · a + sin(tθ)/sin θ · b, θ the angle between a and b as flat vectors."""
    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    theta = np.arccos(np.clip(np.dot(a.ravel(), b.ravel()) / (np.linalg.norm(a) * np.linalg.norm(b)), -1.0, 1.0))
    return (np.sin((1 - t) * theta) * a + np.sin(t * theta) * b) / np.sin(theta)


def positions(frames: int) -> list[float]:
    return [i / (frames - 1) for i in range(frames)] if frames > 1 else [0.0]


@torch.no_grad()
def frames_from_noise(reference: ReferenceInstaFlow, noise: torch.Tensor, prompt_from: str, prompt_to: str,
                      steps: int = 1, guidance_scale: float = 1.0, negative_prompt: Optional[str] = None) -> torch.Tensor:
    """Images (N, H, W, 3) in [0, 1] from per-frame start noise (N, 4, h, w) and the prompt walk."""
    frames = noise.shape[0]
    ts = positions(frames)
    embeds_from, embeds_to = reference.encode_prompt([prompt_from]), reference.encode_prompt([prompt_to])
    embeds = torch.cat([(1 - t) * embeds_from + t * embeds_to for t in ts])
    if guidance_scale > 1.0:
        negative = reference.encode_prompt([negative_prompt if negative_prompt is not None else ""])
        embeds = torch.cat([negative.expand(frames, -1, -1), embeds])
    return reference.decode(integrate_from(reference, noise, embeds, 1.0, steps, guidance_scale))


def slerp_noise(noise_from: torch.Tensor, noise_to: torch.Tensor, frames: int) -> torch.Tensor:
    """(frames, 4, h, w) start noise from two single latents (1, 4, h, w)."""
    return torch.from_numpy(np.concatenate(
        [slerp_float64(noise_from.numpy(), noise_to.numpy(), t) for t in positions(frames)])).float()


def interpolation_frames(reference: ReferenceInstaFlow, prompt_from: str, prompt_to: str, noise_from: torch.Tensor,
                         noise_to: torch.Tensor, frames: int, steps: int = 1, guidance_scale: float = 1.0,
                         negative_prompt: Optional[str] = None) -> torch.Tensor:
    """Images (frames, H, W, 3) in [0, 1] of the seed + prompt walk."""
    return frames_from_noise(reference, slerp_noise(noise_from, noise_to, frames), prompt_from, prompt_to, steps,
                             guidance_scale, negative_prompt)
