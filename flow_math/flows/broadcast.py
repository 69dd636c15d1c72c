"""Shaping a scalar or per-sample noise level to broadcast against a batch of latents. Torch only."""
from __future__ import annotations

import torch


def per_sample(sigma: torch.Tensor, like: torch.Tensor) -> torch.Tensor:
    """A scalar stays a scalar; a (B,) sigma becomes (B, 1, ..., 1) to match a (B, C, ...) tensor."""
    if sigma.numel() == 1:
        return sigma.reshape(())
    return sigma.reshape(sigma.shape[:1] + (1,) * (like.ndim - 1))
