"""Spherical interpolation between two noise tensors, for latent-space walks. Torch only.

Two independent standard-Gaussian noises of D values both lie near the sphere of radius sqrt(D)
and are nearly orthogonal. A straight line between them cuts inside the sphere (at t = 0.5 the
values have standard deviation ~0.71), which a model trained on unit-variance noise renders as
washed-out frames; the great-circle arc keeps the norm, so every frame is unit-variance noise.
"""
from __future__ import annotations

import math

import torch

# Below this sin(angle) the two tensors are (anti)parallel and the arc is undefined or unstable.
_PARALLEL_SIN = 1e-6


def frame_positions(frames: int) -> list[float]:
    """Interpolation positions t_i = i / (frames - 1): the first frame is t = 0, the last t = 1."""
    if frames < 1:
        raise ValueError(f"frames must be at least 1, got {frames}")
    if frames == 1:
        return [0.0]
    return [i / (frames - 1) for i in range(frames)]


def slerp(a: torch.Tensor, b: torch.Tensor, t: float) -> torch.Tensor:
    """The point at fraction t of the great-circle arc from a to b (each taken as one vector).

    Exact at the ends: slerp(a, b, 0) == a and slerp(a, b, 1) == b bit for bit. Falls back to the
    straight line when a and b are (anti)parallel or one of them is zero.
    """
    if a.shape != b.shape:
        raise ValueError(f"slerp needs tensors of one shape, got {tuple(a.shape)} and {tuple(b.shape)}")
    if not 0.0 <= t <= 1.0:
        raise ValueError(f"t must be in [0, 1], got {t}")
    a64, b64 = a.to(torch.float64), b.to(torch.float64)
    norms = float(a64.norm() * b64.norm())
    angle = math.acos(max(-1.0, min(1.0, float((a64 * b64).sum()) / norms))) if norms > 0 else 0.0
    if math.sin(angle) < _PARALLEL_SIN:
        weight_a, weight_b = 1.0 - t, t
    else:
        # At t = 0 (1) the weights are sin(angle)/sin(angle) = 1 and sin(0) = 0 exactly, hence exact ends.
        weight_a = math.sin((1.0 - t) * angle) / math.sin(angle)
        weight_b = math.sin(t * angle) / math.sin(angle)
    return (weight_a * a64 + weight_b * b64).to(a.dtype)


def slerp_frames(a: torch.Tensor, b: torch.Tensor, frames: int) -> torch.Tensor:
    """`frames` points from a to b along the arc, concatenated on dim 0 (a and b have batch 1)."""
    return torch.cat([slerp(a, b, t) for t in frame_positions(frames)], dim=0)
