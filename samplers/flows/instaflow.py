"""InstaFlow's rectified-flow convention and schedule: the one place they are written down. Torch only.

Source: the official pipeline, gnobitab/InstaFlow code/pipeline_rf.py (RectifiedFlowPipeline);
docs/conventions.md has the derivation. In ComfyUI terms a sample at noise level sigma in [0, 1]:

- Timestep: the UNet is called with the float timestep t = sigma * 1000 (one step: t = 1000;
  t = 0 is never evaluated).
- Noise path: x_sigma = (1 - sigma) * x_image + sigma * noise (pure noise at sigma = 1).
- Velocity: the UNet output v points FROM noise TO image (v ~ x_image - noise), and the official
  update is x <- x + dt * v while sigma falls by dt. This is the opposite sign of the SD3/Flux
  flow models in ComfyUI, whose CONST sampling uses denoised = x - sigma * output.
- Hence the image estimate ("denoised" in ComfyUI/k-diffusion terms) is x + sigma * v, and one
  Euler step from sigma = 1 to 0 reproduces the official one-step latents = noise + v exactly.
- Schedule: N uniform steps, UNet timesteps (1 - i/N) * 1000 for i = 0..N-1, dt = 1/N.

2-Rectified Flow (XCLiu/2_rectified_flow_from_sd_1_5) uses the same pipeline, so the same convention.
"""
from __future__ import annotations

import torch

from .broadcast import per_sample

TIMESTEP_MULTIPLIER = 1000.0


def timestep(sigma: torch.Tensor) -> torch.Tensor:
    """UNet timestep for noise level sigma."""
    return sigma * TIMESTEP_MULTIPLIER


def sigma_from_timestep(t: torch.Tensor) -> torch.Tensor:
    """Inverse of timestep()."""
    return t / TIMESTEP_MULTIPLIER


def denoised_from_velocity(x: torch.Tensor, sigma: torch.Tensor, velocity: torch.Tensor) -> torch.Tensor:
    """Image estimate at sigma given the predicted velocity (noise -> image)."""
    return x + per_sample(sigma, velocity) * velocity


def moved_along_velocity(x: torch.Tensor, velocity: torch.Tensor, sigma: float, sigma_next: float) -> torch.Tensor:
    """x carried by the velocity from noise level sigma to sigma_next: x + (sigma - sigma_next) * v.

    A falling sigma is the official sampling update x <- x + dt * v (toward the image); a rising sigma
    runs the flow backwards, toward the noise (inversion). Unlike a step through denoised it does not
    divide by sigma, so it also starts at sigma 0.
    """
    return x + (sigma - sigma_next) * velocity


def velocity_from_denoised(x: torch.Tensor, sigma: torch.Tensor, denoised: torch.Tensor) -> torch.Tensor:
    """Inverse of denoised_from_velocity(): the velocity (noise -> image) behind an image estimate at sigma > 0."""
    return (denoised - x) / per_sample(sigma, x)


def noised_latent(image_latent: torch.Tensor, noise: torch.Tensor, sigma: torch.Tensor) -> torch.Tensor:
    """Point on the straight noise path at sigma: pure noise at 1, the image at 0."""
    s = per_sample(sigma, noise)
    return s * noise + (1.0 - s) * image_latent


def instaflow_sigmas(steps: int, denoise: float = 1.0) -> torch.Tensor:
    """[1, 1 - 1/N, ..., 1/N, 0] scaled by denoise: N uniform Euler steps of size denoise/N.

    With timestep() this gives the official UNet timesteps 1000 * s * (1 - i/N) for i = 0..N-1;
    the final 0 is an end point, never a model call.
    """
    if steps < 1:
        raise ValueError(f"steps must be at least 1, got {steps}")
    if not 0.0 <= denoise <= 1.0:
        raise ValueError(f"denoise must be in [0, 1], got {denoise}")
    # Computed in float64 (Python floats) and rounded once to float32, in one tensor operation.
    return torch.tensor([(1.0 - i / steps) * denoise for i in range(steps + 1)], dtype=torch.float32)
