"""A lower bound of the memory a UNet forward pass needs for a batch, to refuse hopeless batches. Torch-free.

ComfyUI's own estimate (BaseModel.memory_required) is deliberately generous and is used to plan model
offloading; refusing a batch on it would turn away batches that fit. This bound counts only the
skip-connection activations the UNet must hold at once (the output of every input block, all alive
when the middle block runs), so any batch it refuses cannot fit on the device, and the user gets a
message instead of an allocation failure deep in the model, or the operating system killing the server.
"""
from __future__ import annotations


def skip_activations_per_latent_pixel(model_channels: int, channel_mult, num_res_blocks) -> int:
    """Values held by a UNet's skip connections per latent pixel (SD1.5: 1620)."""
    total = model_channels  # conv_in output, full resolution
    area = 1.0
    levels = len(channel_mult)
    blocks = num_res_blocks if isinstance(num_res_blocks, (list, tuple)) else [num_res_blocks] * levels
    for level, (mult, res_blocks) in enumerate(zip(channel_mult, blocks)):
        channels = model_channels * mult
        total += res_blocks * channels * area
        if level < levels - 1:  # the downsampler's output, at the next resolution
            area /= 4
            total += channels * area
    return int(total)


def unet_activation_lower_bound(batch: int, latent_height: int, latent_width: int, dtype_size: int,
                                per_latent_pixel: int) -> int:
    """Bytes of activations a forward pass over `batch` latents needs at least."""
    return batch * latent_height * latent_width * per_latent_pixel * dtype_size
