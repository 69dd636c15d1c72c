"""ComfyUI model_sampling for InstaFlow, and the patch that puts it on a model.

A CONST subclass (k-diffusion samplers and RescaleCFG check isinstance(..., CONST)) on the
shift-1 discrete-flow sigma scale; only the velocity sign and timestep come from
flow_convention, which documents them.
"""
from __future__ import annotations

import comfy.model_sampling

from . import flow_convention


class InstaFlowModelSampling(comfy.model_sampling.ModelSamplingDiscreteFlow, comfy.model_sampling.CONST):
    def __init__(self):
        super().__init__(model_config=None)  # shift 1; sigma()/timestep() below define the scale

    def timestep(self, sigma):
        return flow_convention.timestep(sigma)

    def sigma(self, timestep):
        return flow_convention.sigma_from_timestep(timestep)

    def calculate_denoised(self, sigma, model_output, model_input):
        return flow_convention.denoised_from_velocity(model_input, sigma, model_output)

    def noise_scaling(self, sigma, noise, latent_image, max_denoise=False):
        return flow_convention.noised_latent(latent_image, noise, sigma)


def is_instaflow_patched(model) -> bool:
    return isinstance(model.get_model_object("model_sampling"), InstaFlowModelSampling)


def patch_instaflow_sampling(model):
    """A clone of `model` (a ComfyUI ModelPatcher) that samples as InstaFlow rectified flow.

    clone() keeps object patches, so LoRA / ControlNet nodes downstream keep this one.
    """
    patched = model.clone()
    patched.add_object_patch("model_sampling", InstaFlowModelSampling())
    return patched
