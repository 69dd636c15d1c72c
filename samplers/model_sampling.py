"""ComfyUI model_sampling for InstaFlow, and the patch that puts it on a model.

A CONST subclass (k-diffusion samplers and RescaleCFG check isinstance(..., CONST)) on the
shift-1 discrete-flow sigma scale; only the velocity sign and timestep come from
flow_convention, which documents them.
"""
from __future__ import annotations

import logging

import comfy.model_sampling

from . import flow_convention
from .schedule import instaflow_sigmas


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


def check_schedule_target(model_sampling, who: str) -> None:
    """The uniform InstaFlow schedule [1, ..., 0] only means something for a rectified-flow model.

    An EPS / v-prediction model here is almost always an InstaFlow checkpoint loaded by a stock loader
    without ModelSamplingInstaFlow: refused, since it would silently give a wrong image. Another flow
    model (SD3, Flux, ...) may legitimately use uniform sigmas: allowed, with a warning in the log.
    """
    if isinstance(model_sampling, InstaFlowModelSampling):
        return
    if not isinstance(model_sampling, comfy.model_sampling.CONST):
        raise ValueError(
            f"{who}: the model samples as {type(model_sampling).__name__} (noise prediction), not as rectified flow. "
            "For an InstaFlow / 2-Rectified-Flow checkpoint loaded by a stock loader, add ModelSamplingInstaFlow "
            "after the loader (or use InstaFlowLoader); for other models pick another scheduler.")
    logging.warning("%s: the model uses %s, not InstaFlow's sampling; the instaflow schedule (uniform, no shift) is "
                    "applied as is. If this is an InstaFlow model, a ModelSamplingSD3/Flux node after "
                    "ModelSamplingInstaFlow has flipped its velocity sign: remove it.", who, type(model_sampling).__name__)


def instaflow_sigmas_for_model(model, steps: int, denoise: float, who: str):
    """The official schedule for `model` (a ModelPatcher), after check_schedule_target."""
    check_schedule_target(model.get_model_object("model_sampling"), who)
    return instaflow_sigmas(steps, denoise)
