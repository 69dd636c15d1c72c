"""ComfyUI model_sampling objects for each flow family, the patch that puts one on a model, and the one
wording of "this model is patched for another family".

ComfyUI's samplers see a model only through its model_sampling object (comfy/model_sampling.py):
sigma <-> timestep, calculate_input, calculate_denoised and noise_scaling. FlowModelSampling takes them
from a family's record (flow_math/flows/), whose module documents them; each family gets its own subclass, named
after it (InstaFlowModelSampling, PeRFlowModelSampling), so an object says which family it samples as.
All are CONST subclasses on the shift-1 discrete-flow sigma scale [0, 1]: k-diffusion samplers and
RescaleCFG check isinstance(..., CONST), and CONST's calculate_input (identity) is right for every family.
The patch follows ComfyUI's ModelSamplingSD3 node: clone, then add_object_patch; clone() keeps object
patches, so LoRA / ControlNet nodes downstream keep it.
"""
from __future__ import annotations

import comfy.model_sampling

from ..flow_math.flows import FAMILIES, FlowFamily


class FlowModelSampling(comfy.model_sampling.ModelSamplingDiscreteFlow, comfy.model_sampling.CONST):
    flow: FlowFamily  # set by each family's subclass
    family = ""       # the family's name, for whoever reads a model's sampling without knowing the records

    def __init__(self, prediction_type: str | None = None):
        choices = self.flow.prediction_types
        if choices and prediction_type not in choices:
            raise ValueError(f"{self.flow.name} prediction_type must be one of {', '.join(choices)}, got {prediction_type!r}")
        self.prediction_type = prediction_type if choices else None
        super().__init__(model_config=None)  # shift 1; sigma()/timestep() below define the scale

    def timestep(self, sigma):
        return self.flow.timestep(sigma)

    def sigma(self, timestep):
        return self.flow.sigma(timestep)

    def calculate_denoised(self, sigma, model_output, model_input):
        return self.flow.denoised(model_input, sigma, model_output, self.prediction_type)

    def noise_scaling(self, sigma, noise, latent_image, max_denoise=False):
        return self.flow.noised_latent(latent_image, noise, sigma)


_CLASSES = {f.name: type(f"{f.name}ModelSampling", (FlowModelSampling,), {"flow": f, "family": f.name, "__module__": __name__})
            for f in FAMILIES}


def sampling_class(family: FlowFamily) -> type[FlowModelSampling]:
    return _CLASSES[family.name]


def family_of(model) -> FlowFamily | None:
    """The family a model (ModelPatcher) is patched for by this pack, else None."""
    sampling = model.get_model_object("model_sampling")
    return sampling.flow if isinstance(sampling, FlowModelSampling) else None


def is_patched_for(model, family: FlowFamily) -> bool:
    return family_of(model) is family


def patch_sampling(model, family: FlowFamily, prediction_type: str | None = None):
    """A clone of `model` (a ComfyUI ModelPatcher) that samples as `family`."""
    patched = model.clone()
    patched.add_object_patch("model_sampling", sampling_class(family)(prediction_type))
    return patched


def patch_official(model, family: FlowFamily, architecture: str | None):
    """patch_sampling with the settings the family's releases use for this architecture."""
    return patch_sampling(model, family, **family.model_sampling_settings(architecture))


def samples_as_or_unpatched(model, wanted: FlowFamily, who: str, what: str) -> bool:
    """True when `model` samples as `wanted`; False when no flow convention is on it (an EPS or V model: the caller
    patches or refuses it). Raises for a model patched for another family, or whose sampling another flow convention
    replaced (ModelSamplingSD3 / Flux / AuraFlow placed after the family's node), which would turn it into noise."""
    family = family_of(model)
    if family is wanted:
        return True
    if family is not None:
        raise ValueError(other_family_message(family, wanted, who, what))
    sampling = model.get_model_object("model_sampling")
    if isinstance(sampling, comfy.model_sampling.CONST):
        raise ValueError(
            f"{who}: the model's sampling was replaced by {type(sampling).__name__}, a flow-matching convention that is "
            f"not {wanted.name}'s (a ModelSamplingSD3, ModelSamplingFlux or ModelSamplingAuraFlow node after "
            f"{wanted.patch_node} / {wanted.loader_node}?). Its velocity convention differs (InstaFlow's has the opposite "
            f"sign), so this {wanted.name} model would produce noise. Remove that node, or put {wanted.patch_node} after it.")
    return False


def other_family_message(other: FlowFamily, wanted: FlowFamily, who: str, what: str) -> str:
    """Why a model patched for `other` cannot go into `what`, which is made for `wanted`, and what to do."""
    return (f"{who}: the model is patched for {other.name} ({other.patch_node} / {other.loader_node}), but {what} is made "
            f"for {wanted.name}. Sample {other.name} models with scheduler {other.scheduler} (SamplerCustom: "
            f"{other.scheduler_node}); for {wanted.name} models, put {wanted.patch_node} after the loader or load them with "
            f"{wanted.loader_node}.")
