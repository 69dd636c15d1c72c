"""A NOISE object for stock SamplerCustomAdvanced: one frame per latent in the batch, on the arc
between the noises of two seeds (ComfyUI glue over flow_math/slerp.py).

ComfyUI's NOISE protocol (comfy_extras/nodes_custom_sampler.py, Noise_RandomNoise): an object with a
`.seed` attribute and `generate_noise(input_latent) -> tensor` on the CPU in the latent's shape.
The end frames are exactly ComfyUI's seeded noise for each seed (comfy.sample.prepare_noise on a
one-image latent), so frame 0 and the last frame reproduce the single-seed images.
"""
from __future__ import annotations

import comfy.sample

from ..flow_math.slerp import slerp_frames


class InterpolatedNoise:
    def __init__(self, seed_from: int, seed_to: int, frames: int):
        if frames < 1:
            raise ValueError(f"frames must be at least 1, got {frames}")
        # Samplers with randomness of their own (ancestral, SDE) and inpainting seed from this, as
        # with stock RandomNoise.
        self.seed = seed_from
        self.seed_from = seed_from
        self.seed_to = seed_to
        self.frames = frames

    def generate_noise(self, input_latent: dict):
        latent = input_latent["samples"]
        if getattr(latent, "is_nested", False):
            raise ValueError("InstaFlow Interpolated Noise does not support nested (multi-part) latents")
        if latent.shape[0] != self.frames:
            raise ValueError(f"InstaFlow Interpolated Noise: frames is {self.frames} but the latent batch has "
                             f"{latent.shape[0]} images; set the latent's batch_size to {self.frames}")
        one_frame = latent[:1]
        noise_from = comfy.sample.prepare_noise(one_frame, self.seed_from)
        noise_to = comfy.sample.prepare_noise(one_frame, self.seed_to)
        return slerp_frames(noise_from, noise_to, self.frames)
