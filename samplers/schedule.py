"""The official InstaFlow / 2-Rectified-Flow schedule as ComfyUI sigmas. Torch only.

Conventions: samplers/flow_convention.py.
"""
from __future__ import annotations

import torch


def instaflow_sigmas(steps: int, denoise: float = 1.0) -> torch.Tensor:
    """[1, 1 - 1/N, ..., 1/N, 0] scaled by denoise: N uniform Euler steps of size denoise/N.

    With flow_convention.timestep this gives the official UNet timesteps 1000 * s * (1 - i/N)
    for i = 0..N-1; the final 0 is an end point, never a model call.
    """
    if steps < 1:
        raise ValueError(f"steps must be at least 1, got {steps}")
    if not 0.0 <= denoise <= 1.0:
        raise ValueError(f"denoise must be in [0, 1], got {denoise}")
    i = torch.arange(steps + 1, dtype=torch.float64)
    return ((1.0 - i / steps) * denoise).to(torch.float32)
