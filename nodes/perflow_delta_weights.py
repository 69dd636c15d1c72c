from ..model_loaders.delta_weights import apply_unet_delta
from ..model_loaders.model_fingerprint import model_fingerprint
from ..model_loaders.model_folders import DELTAS, PERFLOW, list_models
from ..samplers.comfyui.model_sampling import patch_perflow_sampling

_WHO = "PeRFlowDeltaWeights"


class PeRFlowDeltaWeights:
    DESCRIPTION = ("Makes any SD1.5 finetune a 4-8 step PeRFlow model: adds PeRFlow's delta weights to its UNet "
                   "(W + strength * dW) and patches it for PeRFlow sampling (diff_eps).")
    CATEGORY = "InstaFlow/PeRFlow"
    FUNCTION = "execute"
    RETURN_TYPES = ("MODEL",)
    OUTPUT_TOOLTIPS = ("The finetune with the delta added, ready for KSampler euler + perflow; keep the finetune's own "
                       "CLIP and VAE.",)

    @classmethod
    def INPUT_TYPES(cls):
        return {"required": {
            "model": ("MODEL", {"tooltip": "An SD1.5 model (any finetune, e.g. DreamShaper from Load Checkpoint), "
                                           "with LoRAs applied before or after as you like."}),
            "delta_name": (list_models(PERFLOW, DELTAS), {
                "tooltip": "PeRFlow delta weights in models/perflow: the hansyan/perflow-sd15-delta-weights folder "
                           "(config.json + diffusion_pytorch_model.v0-1.safetensors; the highest-sorting variant is "
                           "used) or a single .safetensors file."}),
            "strength": ("FLOAT", {"default": 1.0, "min": -2.0, "max": 2.0, "step": 0.01,
                                   "tooltip": "How much of the delta to add: 1.0 is PeRFlow's recipe W_finetune + dW."}),
        }}

    @classmethod
    def IS_CHANGED(cls, model, delta_name, strength):
        return model_fingerprint(delta_name, PERFLOW, DELTAS)

    def execute(self, model, delta_name, strength):
        return (patch_perflow_sampling(apply_unet_delta(model, delta_name, strength, _WHO), "diff_eps"),)
