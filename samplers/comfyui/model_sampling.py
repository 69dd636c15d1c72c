"""ComfyUI model_sampling objects for each flow family, and the patches that put them on a model.

ComfyUI's samplers see a model only through its model_sampling object (comfy/model_sampling.py):
sigma <-> timestep, calculate_input, calculate_denoised and noise_scaling. Each class here takes
those from its family's torch-only convention module (samplers/flows), which documents them. Both
are CONST subclasses on the shift-1 discrete-flow sigma scale [0, 1]: k-diffusion samplers and
RescaleCFG check isinstance(..., CONST), and CONST's calculate_input (identity) is right for both.
The patch follows ComfyUI's ModelSamplingSD3 node: clone, then add_object_patch; clone() keeps
object patches, so LoRA / ControlNet nodes downstream keep it.
"""
from __future__ import annotations

import comfy.model_sampling

from ..flows import instaflow, perflow


class _FlowSampling(comfy.model_sampling.ModelSamplingDiscreteFlow, comfy.model_sampling.CONST):
    family = ""

    def __init__(self):
        super().__init__(model_config=None)  # shift 1; sigma()/timestep() of the subclass define the scale


class InstaFlowModelSampling(_FlowSampling):
    family = "InstaFlow"

    def timestep(self, sigma):
        return instaflow.timestep(sigma)

    def sigma(self, timestep):
        return instaflow.sigma_from_timestep(timestep)

    def calculate_denoised(self, sigma, model_output, model_input):
        return instaflow.denoised_from_velocity(model_input, sigma, model_output)

    def noise_scaling(self, sigma, noise, latent_image, max_denoise=False):
        return instaflow.noised_latent(latent_image, noise, sigma)


class PeRFlowModelSampling(_FlowSampling):
    family = "PeRFlow"

    def __init__(self, prediction_type: str):
        if prediction_type not in perflow.PREDICTION_TYPES:
            raise ValueError(f"PeRFlow prediction_type must be one of {', '.join(perflow.PREDICTION_TYPES)}, "
                             f"got {prediction_type!r}")
        super().__init__()
        self.prediction_type = prediction_type

    def timestep(self, sigma):
        return perflow.timestep(sigma)

    def sigma(self, timestep):
        return perflow.sigma_from_timestep(timestep)

    def calculate_denoised(self, sigma, model_output, model_input):
        return perflow.denoised(model_input, model_output, sigma, self.prediction_type)

    def noise_scaling(self, sigma, noise, latent_image, max_denoise=False):
        # One noise level per call in ComfyUI (the start, or each step's inpainting mask).
        return perflow.noised_latent(latent_image, noise, float(sigma.reshape(-1)[0]))


def flow_family(model) -> str | None:
    """"InstaFlow" / "PeRFlow" for a model (ModelPatcher) patched by this pack, else None."""
    return getattr(model.get_model_object("model_sampling"), "family", None) or None


def is_instaflow_patched(model) -> bool:
    return isinstance(model.get_model_object("model_sampling"), InstaFlowModelSampling)


def _patched(model, sampling):
    patched = model.clone()
    patched.add_object_patch("model_sampling", sampling)
    return patched


def patch_instaflow_sampling(model):
    """A clone of `model` (a ComfyUI ModelPatcher) that samples as InstaFlow rectified flow."""
    return _patched(model, InstaFlowModelSampling())


def patch_perflow_sampling(model, prediction_type: str):
    """A clone of `model` that samples as PeRFlow with the given prediction type."""
    return _patched(model, PeRFlowModelSampling(prediction_type))


def patch_perflow_official(model, architecture: str):
    """patch_perflow_sampling with the prediction type PeRFlow's own scripts use for this architecture."""
    return patch_perflow_sampling(model, perflow.OFFICIAL_PREDICTION_TYPE[architecture])
