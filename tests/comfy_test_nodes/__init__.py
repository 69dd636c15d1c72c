"""Test-only ComfyUI nodes: deliberately wrong rectified-flow variants.

They show that the equivalence tests can fail: each takes a model already patched by
ModelSamplingInstaFlow and breaks exactly one part of the convention (flow_math/flows/instaflow.py).
Loaded by the test harness only; never shipped with the pack.
"""
import copy


def _flipped_sign(base):
    class FlippedSign(base):
        def calculate_denoised(self, sigma, model_output, model_input):
            return super().calculate_denoised(sigma, -model_output, model_input)
    return FlippedSign


def _timestep_reversed(base):
    class TimestepReversed(base):  # t = 1000 * (1 - sigma): noise level read the wrong way round
        def timestep(self, sigma):
            return super().timestep(1.0 - sigma)
    return TimestepReversed


def _timestep_unscaled(base):
    class TimestepUnscaled(base):  # t = sigma, forgetting the x1000
        def timestep(self, sigma):
            return sigma
    return TimestepUnscaled


VARIANTS = {"flipped_sign": _flipped_sign, "timestep_reversed": _timestep_reversed, "timestep_unscaled": _timestep_unscaled}


def _start_latent_off_the_path(base):
    class StartLatentOffThePath(base):  # x0 + sigma*noise (the EPS-style mix) instead of (1-sigma)*x0 + sigma*noise
        def noise_scaling(self, sigma, noise, latent_image, max_denoise=False):
            return latent_image + super().noise_scaling(sigma, noise, latent_image * 0, max_denoise)
    return StartLatentOffThePath


VARIANTS["start_latent_off_the_path"] = _start_latent_off_the_path  # for img2img / partial denoise


def _timestep_public_inversion_slip(base):
    class TimestepPublicInversionSlip(base):  # t = 1000 * sigma - 999: the public inversion script's `1 - t`
        def timestep(self, sigma):
            return super().timestep(sigma) - 999.0
    return TimestepPublicInversionSlip


VARIANTS["timestep_public_inversion_slip"] = _timestep_public_inversion_slip  # for inversion


class InstaFlowBrokenVariant:
    CATEGORY = "testing"
    FUNCTION = "execute"
    RETURN_TYPES = ("MODEL",)

    @classmethod
    def INPUT_TYPES(cls):
        return {"required": {"model": ("MODEL",), "variant": (list(VARIANTS),)}}

    def execute(self, model, variant):
        sampling = copy.copy(model.get_model_object("model_sampling"))
        sampling.__class__ = VARIANTS[variant](type(sampling))
        broken = model.clone()
        broken.add_object_patch("model_sampling", sampling)
        return (broken,)


NODE_CLASS_MAPPINGS = {"InstaFlowBrokenVariant": InstaFlowBrokenVariant}


def _register_another_packs_sampler():
    """Stands in for another node pack that extends the same sampler list after ours."""
    import comfy.k_diffusion.sampling
    import comfy.samplers

    comfy.k_diffusion.sampling.sample_other_pack_euler = comfy.k_diffusion.sampling.sample_euler
    if "other_pack_euler" not in comfy.samplers.SAMPLER_NAMES:
        comfy.samplers.SAMPLER_NAMES.append("other_pack_euler")


_register_another_packs_sampler()

from .robustness_nodes import NODE_CLASS_MAPPINGS as _ROBUSTNESS_NODES  # noqa: E402 - test-only nodes, additive

NODE_CLASS_MAPPINGS.update(_ROBUSTNESS_NODES)

from .sampling_probe import SamplingProbe  # noqa: E402 - test-only node for the refiner chain, additive

NODE_CLASS_MAPPINGS["SamplingProbe"] = SamplingProbe


from .broken_controlnet import InstaFlowBrokenControlNet  # noqa: E402

NODE_CLASS_MAPPINGS["InstaFlowBrokenControlNet"] = InstaFlowBrokenControlNet

from .harness_nodes import NODE_CLASS_MAPPINGS as _HARNESS_NODES  # noqa: E402 - for tests/test_server_harness.py
from .harness_nodes import NODE_DISPLAY_NAME_MAPPINGS  # noqa: E402

NODE_CLASS_MAPPINGS.update(_HARNESS_NODES)

from .cuda_graph_probe import InstaFlowCudaGraphOnCpu  # noqa: E402 - for tests/test_cuda_graph.py

NODE_CLASS_MAPPINGS["InstaFlowCudaGraphOnCpu"] = InstaFlowCudaGraphOnCpu
