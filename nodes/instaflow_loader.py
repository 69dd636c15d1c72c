from comfy_api.v0_0_2 import io

from ..model_loaders.checkpoint import load_checkpoint
from ..model_loaders.model_fingerprint import model_fingerprint
from ..model_loaders.model_folders import INSTAFLOW, list_models, listed_or_reason
from ..samplers.comfyui.model_sampling import patch_instaflow_sampling
from .schema_cache import schema_kept_while


class InstaFlowLoader(io.ComfyNode):
    @classmethod
    @schema_kept_while(lambda: list_models(INSTAFLOW))
    def define_schema(cls, models):
        return io.Schema(
            node_id="InstaFlowLoader", display_name="Load InstaFlow Checkpoint", category="InstaFlow/loaders",
            description="Loads an InstaFlow or 2-Rectified-Flow checkpoint (diffusers folder or single file), ready for "
                        "rectified-flow sampling.",
            inputs=[io.Combo.Input("ckpt_name", options=list(models), tooltip=(
                "Diffusers folders in models/instaflow or models/diffusers (e.g. instaflow_0_9B_from_sd_1_5), "
                "or single-file checkpoints in models/instaflow or models/checkpoints."))],
            outputs=[io.Model.Output(tooltip="The UNet, already patched for rectified-flow sampling."),
                     io.Clip.Output(tooltip="The CLIP text encoder, for CLIPTextEncode."),
                     io.Vae.Output(tooltip="The VAE, for VAEDecode / VAEEncode.")])

    @classmethod
    def validate_inputs(cls, ckpt_name):
        return listed_or_reason(ckpt_name, INSTAFLOW)

    @classmethod
    def fingerprint_inputs(cls, ckpt_name):
        # ComfyUI re-runs the loader when this value changes: a model file replaced on disk is reloaded.
        return model_fingerprint(ckpt_name, INSTAFLOW)

    @classmethod
    def execute(cls, ckpt_name):
        model, clip, vae, _architecture = load_checkpoint(ckpt_name, INSTAFLOW)
        return io.NodeOutput(patch_instaflow_sampling(model), clip, vae)
