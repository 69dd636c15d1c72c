"""Shared pieces of ours-vs-reference comparisons: ComfyUI's seeded noise and 8-bit image differences.

One definition for every test module.
"""
from __future__ import annotations

import numpy as np
import torch

from devtools.measurements import record

TOLERANCE = 2 / 255  # mean absolute pixel difference allowed between our graph and the reference
WIDE_MARGIN = 4 * TOLERANCE  # how far a deliberately broken variant must be from the reference


def comfy_noise(seed: int, batch: int = 1, size: int = 64) -> torch.Tensor:
    """ComfyUI's KSampler noise (comfy.sample.prepare_noise): torch.manual_seed(seed), then randn of the
    latent shape on the CPU."""
    return torch.randn((batch, 4, size // 8, size // 8), generator=torch.Generator().manual_seed(seed))


def mean_abs_difference(ours, expected) -> float:
    ours = np.stack(ours).astype(np.float64) if isinstance(ours, list) else np.asarray(ours, dtype=np.float64)
    expected = np.asarray(expected, dtype=np.float64)
    assert ours.shape == expected.shape, (ours.shape, expected.shape)
    return float(np.abs(ours - expected).mean() / 255)


def max_abs_difference(ours, expected) -> int:
    ours = np.stack(ours) if isinstance(ours, list) else np.asarray(ours)
    return int(np.abs(ours.astype(np.int16) - np.asarray(expected).astype(np.int16)).max())


def record_difference(label: str, ours, expected) -> float:
    diff = mean_abs_difference(ours, expected)
    record(label, f"mean {diff * 255:.4f}/255, max {max_abs_difference(ours, expected)}/255")
    return diff
