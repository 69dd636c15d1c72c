"""InstaFlow's rectified-flow convention: the one place it is written down. Torch only.

Source: the official pipeline, gnobitab/InstaFlow code/pipeline_rf.py (RectifiedFlowPipeline),
summarised in REFERENCE.md section 1. In ComfyUI terms a sample at noise level sigma in [0, 1]:

- Timestep: the UNet is called with the float timestep t = sigma * 1000 (one step: t = 1000;
  t = 0 is never evaluated).
- Noise path: x_sigma = (1 - sigma) * x_image + sigma * noise (pure noise at sigma = 1).
- Velocity: the UNet output v points FROM noise TO image (v ~ x_image - noise), and the official
  update is x <- x + dt * v while sigma falls by dt. This is the opposite sign of the SD3/Flux
  flow models in ComfyUI, whose CONST sampling uses denoised = x - sigma * output.
- Hence the image estimate ("denoised" in ComfyUI/k-diffusion terms) is x + sigma * v, and one
  Euler step from sigma = 1 to 0 reproduces the official one-step latents = noise + v exactly.
"""
from __future__ import annotations

import torch

TIMESTEP_MULTIPLIER = 1000.0


def timestep(sigma: torch.Tensor) -> torch.Tensor:
    """UNet timestep for noise level sigma."""
    return sigma * TIMESTEP_MULTIPLIER


def sigma_from_timestep(t: torch.Tensor) -> torch.Tensor:
    """Inverse of timestep()."""
    return t / TIMESTEP_MULTIPLIER


def per_sample(sigma: torch.Tensor, like: torch.Tensor) -> torch.Tensor:
    """Shape a scalar or per-batch sigma to broadcast against a (B, C, ...) tensor."""
    if sigma.numel() == 1:
        return sigma.reshape(())
    return sigma.reshape(sigma.shape[:1] + (1,) * (like.ndim - 1))


def denoised_from_velocity(x: torch.Tensor, sigma: torch.Tensor, velocity: torch.Tensor) -> torch.Tensor:
    """Image estimate at sigma given the predicted velocity (noise -> image)."""
    return x + per_sample(sigma, velocity) * velocity


def noised_latent(image_latent: torch.Tensor, noise: torch.Tensor, sigma: torch.Tensor) -> torch.Tensor:
    """Point on the straight noise path at sigma: pure noise at 1, the image at 0."""
    s = per_sample(sigma, noise)
    return s * noise + (1.0 - s) * image_latent
