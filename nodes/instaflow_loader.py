from ..model_loaders.checkpoint import load_checkpoint
from ..model_loaders.model_fingerprint import model_fingerprint
from ..model_loaders.model_folders import INSTAFLOW, list_models
from ..samplers.comfyui.model_sampling import patch_instaflow_sampling


class InstaFlowLoader:
    DESCRIPTION = "Loads an InstaFlow or 2-Rectified-Flow checkpoint (diffusers folder or single file), ready for rectified-flow sampling."
    CATEGORY = "InstaFlow/loaders"
    FUNCTION = "execute"
    RETURN_TYPES = ("MODEL", "CLIP", "VAE")
    OUTPUT_TOOLTIPS = ("The UNet, already patched for rectified-flow sampling.",
                       "The CLIP text encoder, for CLIPTextEncode.",
                       "The VAE, for VAEDecode / VAEEncode.")

    @classmethod
    def INPUT_TYPES(cls):
        return {"required": {"ckpt_name": (list_models(INSTAFLOW), {
            "tooltip": "Diffusers folders in models/instaflow or models/diffusers (e.g. instaflow_0_9B_from_sd_1_5), "
                       "or single-file checkpoints in models/instaflow or models/checkpoints."})}}

    @classmethod
    def IS_CHANGED(cls, ckpt_name):
        # ComfyUI re-runs the loader when this value changes: a model file replaced on disk is reloaded.
        return model_fingerprint(ckpt_name, INSTAFLOW)

    def execute(self, ckpt_name):
        model, clip, vae, _architecture = load_checkpoint(ckpt_name, INSTAFLOW)
        return patch_instaflow_sampling(model), clip, vae
