from ..samplers.comfyui.architecture_warning import UI_KEY, patch_with_architecture_warning
from ..samplers.comfyui.model_sampling import patch_instaflow_sampling


class ModelSamplingInstaFlow:
    DESCRIPTION = ("Turns an SD1.5-architecture InstaFlow or 2-Rectified-Flow model loaded by any loader into a "
                   "rectified-flow model (timestep = sigma*1000, velocity from noise to image). Place it "
                   "between the loader (or LoRA loaders) and the sampler; a model that is not SD1.5 gets a warning.")
    CATEGORY = "InstaFlow/model"
    FUNCTION = "execute"
    RETURN_TYPES = ("MODEL",)
    OUTPUT_TOOLTIPS = ("The same model, sampling as InstaFlow rectified flow. Place it after LoRA loaders or before; "
                       "do not follow it with ModelSamplingSD3, which flips the velocity sign.",)

    @classmethod
    def INPUT_TYPES(cls):
        return {"required": {"model": ("MODEL", {
            "tooltip": "An InstaFlow / 2-Rectified-Flow model (SD1.5 architecture), e.g. from Load Checkpoint or a LoRA loader."})}}

    def execute(self, model):
        patched, warning = patch_with_architecture_warning(model, "InstaFlow", "ModelSamplingInstaFlow", patch_instaflow_sampling)
        return {"ui": {UI_KEY: [warning]}, "result": (patched,)} if warning else (patched,)
