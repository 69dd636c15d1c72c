"""A synthetic depth-map-like control image: a bright disc in front of a sloping background.

Tests write it as an 8-bit PNG into the server's input folder (devtools.input_images.put_input_image),
so that ComfyUI's LoadImage and the reference read exactly the same values (uint8 / 255).
"""
from __future__ import annotations

import numpy as np


def depth_like_image(size: int) -> np.ndarray:
    """uint8 (size, size, 3): a vertical gradient (floor receding) with a near disc and a far box."""
    y, x = np.mgrid[0:size, 0:size].astype(np.float64) / max(size - 1, 1)
    depth = 0.15 + 0.45 * y
    disc = (x - 0.35) ** 2 + (y - 0.55) ** 2 < 0.2 ** 2
    depth[disc] = 0.95 - 0.8 * np.sqrt((x[disc] - 0.35) ** 2 + (y[disc] - 0.55) ** 2)
    box = (x > 0.6) & (x < 0.9) & (y > 0.15) & (y < 0.45)
    depth[box] = 0.4
    gray = np.round(np.clip(depth, 0, 1) * 255).astype(np.uint8)
    return np.repeat(gray[:, :, None], 3, axis=2)
