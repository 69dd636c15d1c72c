from comfy_api.v0_0_2 import io

from ..comfyui_glue.model_sampling import patch_sampling
from ..flow_math.flows.perflow import FAMILY as PERFLOW
from ..model_loaders.delta_weights import apply_unet_delta
from ..model_loaders.model_fingerprint import model_fingerprint
from ..model_loaders.model_folders import DELTAS, list_models, listed_or_reason
from .schema_cache import schema_kept_while


class PeRFlowDeltaWeights(io.ComfyNode):
    @classmethod
    @schema_kept_while(lambda: list_models(PERFLOW.folder, DELTAS))
    def define_schema(cls, deltas):
        return io.Schema(
            node_id="PeRFlowDeltaWeights", display_name="Apply PeRFlow Delta Weights (any SD1.5 finetune)",
            category="InstaFlow/PeRFlow",
            description="Makes any SD1.5 finetune a 4-8 step PeRFlow model: adds PeRFlow's delta weights to its UNet "
                        "(W + strength * dW) and patches it for PeRFlow sampling (diff_eps).",
            inputs=[
                io.Model.Input("model", tooltip="An SD1.5 model (any finetune, e.g. DreamShaper from Load Checkpoint), "
                                                "with LoRAs applied before or after as you like."),
                io.Combo.Input("delta_name", options=list(deltas), tooltip=(
                    "PeRFlow delta weights in models/perflow: the hansyan/perflow-sd15-delta-weights folder (config.json "
                    "+ diffusion_pytorch_model.v0-1.safetensors; the highest-sorting variant is used) or a single "
                    ".safetensors file.")),
                io.Float.Input("strength", default=1.0, min=-2.0, max=2.0, step=0.01,
                               tooltip="How much of the delta to add: 1.0 is PeRFlow's recipe W_finetune + dW."),
            ],
            outputs=[io.Model.Output(tooltip="The finetune with the delta added, ready for KSampler euler + perflow; "
                                             "keep the finetune's own CLIP and VAE.")])

    @classmethod
    def validate_inputs(cls, delta_name):
        return listed_or_reason(delta_name, PERFLOW.folder, DELTAS)

    @classmethod
    def fingerprint_inputs(cls, model, delta_name, strength):
        return model_fingerprint(delta_name, PERFLOW.folder, DELTAS)

    @classmethod
    def execute(cls, model, delta_name, strength):
        delta = apply_unet_delta(model, delta_name, strength, "PeRFlowDeltaWeights")
        return io.NodeOutput(patch_sampling(delta, PERFLOW, "diff_eps"))
