"""Deterministic input pictures for LoadImage graphs, written into the test server's input folder."""
from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image


def input_picture(size: int = 64) -> np.ndarray:
    """A size x size RGB uint8 picture with smooth gradients, a disc and stripes (no randomness)."""
    y, x = np.mgrid[0:size, 0:size].astype(np.float64) / max(size - 1, 1)
    red = 0.15 + 0.7 * x
    green = 0.2 + 0.6 * y
    blue = 0.5 + 0.3 * np.sin(6 * np.pi * x) * np.cos(4 * np.pi * y)
    disc = (x - 0.6) ** 2 + (y - 0.4) ** 2 < 0.06
    red[disc], green[disc], blue[disc] = 0.9, 0.8, 0.2
    rgb = np.stack([red, green, blue], axis=-1)
    return np.clip(np.round(rgb * 255), 0, 255).astype(np.uint8)


def transparent_right_half(size: int = 64) -> np.ndarray:
    """Alpha channel: opaque left half, transparent right half. LoadImage's MASK is 1 - alpha, so the
    right half is the region to inpaint."""
    alpha = np.full((size, size), 255, dtype=np.uint8)
    alpha[:, size // 2:] = 0
    return alpha


def put_input_image(server, name: str, rgb: np.ndarray, alpha: np.ndarray | None = None) -> str:
    """Write rgb (and alpha, if given) as a PNG into the server's input folder; returns the name for LoadImage."""
    pixels = rgb if alpha is None else np.dstack([rgb, alpha])
    path = Path(server.work_dir) / "input" / name
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(pixels, "RGB" if alpha is None else "RGBA").save(path)
    return name
