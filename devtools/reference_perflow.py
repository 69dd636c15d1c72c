"""Independent reference for PeRFlow sampling: the official loop on diffusers / transformers modules.

Source: magic-research/piecewise-rectified-flow. Its scripts (scripts/sd15_t2i_merged.py,
sdxl_t2i_merged.py, sd21_t2i_merged.py, README) run diffusers' StableDiffusionPipeline /
StableDiffusionXLPipeline with the scheduler swapped for src/scheduler_perflow.py's
PeRFlowScheduler. The denoising loop of those pipelines, with that scheduler, is:

    latents = noise * init_noise_sigma (1.0)
    for t in scheduler.timesteps:                       # int64, 1000 first
        e = unet(cat([latents] * 2) if cfg else latents, t, <conditioning>).sample
        e = e_neg + g * (e_pos - e_neg) if cfg           # cfg: g > 1
        latents = scheduler.step(e, t, latents).prev_sample
    image = vae.decode(latents / scaling_factor); (image / 2 + 0.5).clamp(0, 1)

scale_model_input is the identity. Image-to-image follows diffusers' img2img pipelines: the loop runs
over the tail of the scheduler's list, from a start latent made by scheduler.add_noise(x0, noise, T)
at its first timestep T (sample_from). The scheduler is devtools/reference_perflow_scheduler.py;
ReferencePeRFlowSD15 runs on ReferenceInstaFlow's SD1.5 modules (devtools/reference_rf.py), and
the SDXL pipeline is in reference_perflow_sdxl.py. Nothing from the pack or ComfyUI is imported.
"""
from __future__ import annotations

from typing import List, Optional, Sequence, Union

import torch

from devtools.reference_perflow_scheduler import OFFICIAL, ReferencePeRFlowScheduler, Variant, official_timesteps
from devtools.reference_rf import ReferenceInstaFlow

Prompt = Union[str, List[str]]


def _as_list(prompt: Prompt, batch: int) -> List[str]:
    return [prompt] * batch if isinstance(prompt, str) else list(prompt)


class PeRFlowLoop:
    """The pipelines' denoising loop; subclasses give conditioning, the UNet call and decoding."""

    def condition(self, prompts: List[str], negatives: Optional[List[str]]):
        raise NotImplementedError

    def model_output(self, latents: torch.Tensor, timestep: torch.Tensor, conditioning) -> torch.Tensor:
        raise NotImplementedError

    def decode(self, latents: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    @property
    def dtype(self) -> torch.dtype:
        return torch.float32

    @torch.no_grad()
    def sample_from(self, prompt: Prompt, start: torch.Tensor, scheduler: ReferencePeRFlowScheduler,
                    first_index: int = 0, guidance_scale: float = 1.0,
                    negative_prompt: Optional[Prompt] = None) -> torch.Tensor:
        """Latents after the loop over scheduler.timesteps[first_index:], from `start`."""
        batch = start.shape[0]
        do_cfg = guidance_scale > 1.0
        negatives = _as_list(negative_prompt if negative_prompt is not None else "", batch) if do_cfg else None
        conditioning = self.condition(_as_list(prompt, batch), negatives)
        latents = start.to(self.dtype).clone()
        for t in scheduler.timesteps[first_index:]:
            e = self.model_output(torch.cat([latents] * 2) if do_cfg else latents, scheduler.unet_timestep(t),
                                  conditioning)
            if do_cfg:
                e_neg, e_pos = e.chunk(2)
                e = e_neg + guidance_scale * (e_pos - e_neg)
            latents = scheduler.step(e, t, latents)
        return latents

    @torch.no_grad()
    def generate(self, prompt: Prompt, noise: torch.Tensor, steps: int = 4, guidance_scale: float = 4.5,
                 negative_prompt: Optional[Prompt] = None, prediction_type: str = "diff_eps",
                 variant: Variant = OFFICIAL) -> torch.Tensor:
        """Text-to-image: images (B, H, W, 3) in [0, 1] from the starting noise (B, 4, H/8, W/8)."""
        scheduler = ReferencePeRFlowScheduler(prediction_type, official_timesteps(steps), variant)
        return self.decode(self.sample_from(prompt, noise, scheduler, 0, guidance_scale, negative_prompt))

    @torch.no_grad()
    def img2img(self, prompt: Prompt, image_latent: torch.Tensor, noise: torch.Tensor, timesteps: Sequence[int],
                first_index: int = 0, guidance_scale: float = 4.5, negative_prompt: Optional[Prompt] = None,
                prediction_type: str = "diff_eps") -> torch.Tensor:
        """Image-to-image: add_noise(x0, noise, timesteps[first_index]), then the loop from there."""
        scheduler = ReferencePeRFlowScheduler(prediction_type, timesteps)
        start = scheduler.add_noise(image_latent.to(noise).expand_as(noise), noise, int(timesteps[first_index]))
        return self.decode(self.sample_from(prompt, start, scheduler, first_index, guidance_scale, negative_prompt))


class ReferencePeRFlowSD15(PeRFlowLoop):
    """StableDiffusionPipeline + PeRFlowScheduler on an SD1.5 diffusers folder (text encoder, UNet, VAE)."""

    def __init__(self, modules: ReferenceInstaFlow):
        self.modules = modules

    @classmethod
    def from_folder(cls, diffusers_dir) -> "ReferencePeRFlowSD15":
        return cls(ReferenceInstaFlow(diffusers_dir))

    def condition(self, prompts, negatives):
        embeds = self.modules.encode_prompt(prompts)
        return embeds if negatives is None else torch.cat([self.modules.encode_prompt(negatives), embeds])

    def model_output(self, latents, timestep, conditioning):
        return self.modules.unet(latents, timestep, encoder_hidden_states=conditioning).sample

    def decode(self, latents):
        return self.modules.decode(latents)
