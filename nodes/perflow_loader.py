from comfy_api.v0_0_2 import io

from ..model_loaders.checkpoint import load_checkpoint
from ..model_loaders.model_fingerprint import model_fingerprint
from ..model_loaders.model_folders import PERFLOW, list_models, listed_or_reason
from ..samplers.comfyui.model_sampling import patch_perflow_official
from .schema_cache import schema_kept_while


class PeRFlowLoader(io.ComfyNode):
    @classmethod
    @schema_kept_while(lambda: list_models(PERFLOW))
    def define_schema(cls, models):
        return io.Schema(
            node_id="PeRFlowLoader", display_name="Load PeRFlow Checkpoint", category="InstaFlow/PeRFlow",
            description="Loads a PeRFlow checkpoint (SD1.5, SDXL or SD2.x; diffusers folder as published, or single "
                        "file), ready for 4-8 step sampling with KSampler euler + perflow.",
            inputs=[io.Combo.Input("ckpt_name", options=list(models), tooltip=(
                "Diffusers folders in models/perflow or models/diffusers (e.g. perflow-sd15-dreamshaper, "
                "perflow-sdxl-base with its v0-fix variant files), or single-file checkpoints in models/perflow "
                "or models/checkpoints."))],
            outputs=[io.Model.Output(tooltip="The UNet, already patched for PeRFlow sampling with the official "
                                             "prediction type of its architecture (SD1.5: diff_eps, SDXL: ddim_eps, "
                                             "SD2.x: velocity)."),
                     io.Clip.Output(tooltip="The text encoder(s), for CLIPTextEncode (SDXL: both CLIP-L and bigG)."),
                     io.Vae.Output(tooltip="The VAE, for VAEDecode / VAEEncode.")])

    @classmethod
    def validate_inputs(cls, ckpt_name):
        return listed_or_reason(ckpt_name, PERFLOW)

    @classmethod
    def fingerprint_inputs(cls, ckpt_name):
        return model_fingerprint(ckpt_name, PERFLOW)

    @classmethod
    def execute(cls, ckpt_name):
        model, clip, vae, architecture = load_checkpoint(ckpt_name, PERFLOW)
        return io.NodeOutput(patch_perflow_official(model, architecture), clip, vae)
