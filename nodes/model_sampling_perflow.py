from functools import partial

from ..samplers.comfyui.architecture_warning import UI_KEY, patch_with_architecture_warning
from ..samplers.comfyui.model_sampling import patch_perflow_sampling
from ..samplers.flows.perflow import PREDICTION_TYPES


class ModelSamplingPeRFlow:
    DESCRIPTION = ("Turns a PeRFlow model loaded by any loader (SD1.5, SDXL, SD2.x) into a piecewise-rectified-flow "
                   "model: sigma = PeRFlow time, timestep = sigma*1000, 4 windows. Sample with KSampler euler + perflow.")
    CATEGORY = "InstaFlow/PeRFlow"
    FUNCTION = "execute"
    RETURN_TYPES = ("MODEL",)
    OUTPUT_TOOLTIPS = ("The same model, sampling as PeRFlow. Use scheduler perflow (or PeRFlowScheduler) with the euler "
                       "or rectified_flow sampler; do not follow it with ModelSamplingSD3 or ModelSamplingInstaFlow.",)

    @classmethod
    def INPUT_TYPES(cls):
        return {"required": {
            "model": ("MODEL", {"tooltip": "A PeRFlow model, e.g. perflow-sd15-dreamshaper from Load Checkpoint, or an "
                                           "SD1.5 finetune with the PeRFlow delta weights merged."}),
            "prediction_type": (list(PREDICTION_TYPES), {
                "default": "diff_eps",
                "tooltip": "What the UNet predicts, as PeRFlow's scheduler names it. diff_eps: SD1.5 models and the "
                           "delta weights (the model card's old name 'epsilon'); ddim_eps: SDXL; velocity: SD2.1 (artius)."}),
        }}

    def execute(self, model, prediction_type):
        patch = partial(patch_perflow_sampling, prediction_type=prediction_type)
        patched, warning = patch_with_architecture_warning(model, "PeRFlow", "ModelSamplingPeRFlow", patch)
        return {"ui": {UI_KEY: [warning]}, "result": (patched,)} if warning else (patched,)
