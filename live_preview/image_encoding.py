"""IMAGE batch -> encoded bytes, torch only (plus torchvision's encoder and PIL for WebP).

ComfyUI's IMAGE is float [batch, height, width, channels] in 0..1. The frontend keeps one preview picture
per node, so a batch is tiled into one grid (row-major, near-square, like the frontend lays out a batch of
outputs) and encoded once. Pixels become 8-bit the way SaveImage makes them (clamp to 0..255, then
truncate), so the preview differs from SaveImage's PNG by the encoder's loss alone.
"""
from __future__ import annotations

import io
import math
import warnings

import torch

FORMATS = ("jpeg", "webp")
MIME_TYPES = {"jpeg": "image/jpeg", "webp": "image/webp"}


def grid_shape(batch: int) -> tuple[int, int]:
    """(rows, columns) of the tiled batch: columns = ceil(sqrt(batch))."""
    if batch < 1:
        raise ValueError(f"an image batch needs at least one image, got batch size {batch}")
    columns = math.ceil(math.sqrt(batch))
    return math.ceil(batch / columns), columns


def tiled_uint8_chw(images: torch.Tensor) -> torch.Tensor:
    """[B, H, W, C] floats in 0..1 -> one [3, rows*H, columns*W] uint8 picture on the images' device.

    Empty grid cells are black. One or four channels are taken as grey / RGBA (alpha dropped)."""
    if images.ndim != 4 or images.shape[-1] not in (1, 3, 4):
        raise ValueError(f"expected an IMAGE batch [batch, height, width, 1|3|4 channels], got shape {tuple(images.shape)}")
    batch, height, width, channels = images.shape
    rgb = images[..., :3] if channels >= 3 else images.expand(-1, -1, -1, 3)
    pixels = (rgb * 255.0).clamp_(0, 255).to(torch.uint8)  # SaveImage: np.clip(255 * i, 0, 255).astype(uint8)
    rows, columns = grid_shape(batch)
    if rows * columns != batch:
        pad = pixels.new_zeros((rows * columns - batch, height, width, 3))
        pixels = torch.cat([pixels, pad])
    grid = pixels.reshape(rows, columns, height, width, 3).permute(4, 0, 2, 1, 3)
    return grid.reshape(3, rows * height, columns * width).contiguous()


def _torchvision_jpeg(picture: torch.Tensor, quality: int) -> bytes | None:
    """torchvision's encoder: nvJPEG for a CUDA tensor (torchvision >= 0.19), libjpeg on the CPU; None when
    this torchvision cannot encode a tensor on this device (the caller then uses PIL on the CPU)."""
    try:
        from torchvision.io import encode_jpeg
    except Exception:  # noqa: BLE001 - torchvision missing or broken: PIL does the work
        return None
    try:
        with warnings.catch_warnings():  # torchvision 0.29 deprecates its image codecs for torchcodec; until they go,
            warnings.simplefilter("ignore", DeprecationWarning)  # they are the one GPU encoder ComfyUI ships with
            encoded = encode_jpeg(picture, quality=quality)
    except (RuntimeError, TypeError, NotImplementedError):  # e.g. a torchvision built without nvJPEG
        return None
    if isinstance(encoded, list):
        encoded = encoded[0]
    return encoded.cpu().numpy().tobytes()


def _pil_encode(picture: torch.Tensor, image_format: str, quality: int) -> bytes:
    from PIL import Image

    array = picture.permute(1, 2, 0).cpu().numpy()
    out = io.BytesIO()
    Image.fromarray(array, "RGB").save(out, format=image_format.upper(), quality=quality)
    return out.getvalue()


def encode_picture(picture: torch.Tensor, image_format: str, quality: int) -> tuple[bytes, str]:
    """Encode one [3, H, W] uint8 picture; returns (bytes, which encoder did it)."""
    if image_format not in FORMATS:
        raise ValueError(f"image format must be one of {FORMATS}, got {image_format!r}")
    if not 1 <= int(quality) <= 100:
        raise ValueError(f"quality must be 1..100, got {quality!r}")
    if image_format == "jpeg":
        data = _torchvision_jpeg(picture, int(quality))
        if data is not None:
            return data, f"torchvision ({picture.device.type})"
    return _pil_encode(picture, image_format, int(quality)), "PIL (cpu)"


def encode_batch(images: torch.Tensor, image_format: str = "jpeg", quality: int = 90) -> tuple[bytes, str]:
    """The whole batch as one tiled picture, encoded; returns (bytes, which encoder did it)."""
    return encode_picture(tiled_uint8_chw(images), image_format, quality)
