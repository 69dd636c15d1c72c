from ..model_loaders.checkpoint import load_checkpoint
from ..model_loaders.model_fingerprint import model_fingerprint
from ..model_loaders.model_folders import PERFLOW, list_models
from ..samplers.comfyui.model_sampling import patch_perflow_official


class PeRFlowLoader:
    DESCRIPTION = ("Loads a PeRFlow checkpoint (SD1.5, SDXL or SD2.x; diffusers folder as published, or single file), "
                   "ready for 4-8 step sampling with KSampler euler + perflow.")
    CATEGORY = "InstaFlow/PeRFlow"
    FUNCTION = "execute"
    RETURN_TYPES = ("MODEL", "CLIP", "VAE")
    OUTPUT_TOOLTIPS = ("The UNet, already patched for PeRFlow sampling with the official prediction type of its "
                       "architecture (SD1.5: diff_eps, SDXL: ddim_eps, SD2.x: velocity).",
                       "The text encoder(s), for CLIPTextEncode (SDXL: both CLIP-L and bigG).",
                       "The VAE, for VAEDecode / VAEEncode.")

    @classmethod
    def INPUT_TYPES(cls):
        return {"required": {"ckpt_name": (list_models(PERFLOW), {
            "tooltip": "Diffusers folders in models/perflow or models/diffusers (e.g. perflow-sd15-dreamshaper, "
                       "perflow-sdxl-base with its v0-fix variant files), or single-file checkpoints in models/perflow "
                       "or models/checkpoints."})}}

    @classmethod
    def IS_CHANGED(cls, ckpt_name):
        return model_fingerprint(ckpt_name, PERFLOW)

    def execute(self, ckpt_name):
        model, clip, vae, architecture = load_checkpoint(ckpt_name, PERFLOW)
        return patch_perflow_official(model, architecture), clip, vae
