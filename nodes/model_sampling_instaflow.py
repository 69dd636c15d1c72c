from comfy_api.v0_0_2 import io

from ..samplers.comfyui.architecture_warning import UI_KEY, patch_with_architecture_warning
from ..samplers.comfyui.model_sampling import patch_instaflow_sampling
from .schema_cache import schema_kept_while


class ModelSamplingInstaFlow(io.ComfyNode):
    @classmethod
    @schema_kept_while()
    def define_schema(cls):
        return io.Schema(
            node_id="ModelSamplingInstaFlow", display_name="Model Sampling InstaFlow (Rectified Flow)",
            category="InstaFlow/model",
            description="Turns an SD1.5-architecture InstaFlow or 2-Rectified-Flow model loaded by any loader into a "
                        "rectified-flow model (timestep = sigma*1000, velocity from noise to image). Place it "
                        "between the loader (or LoRA loaders) and the sampler; a model that is not SD1.5 gets a warning.",
            inputs=[io.Model.Input("model", tooltip="An InstaFlow / 2-Rectified-Flow model (SD1.5 architecture), e.g. "
                                                    "from Load Checkpoint or a LoRA loader.")],
            outputs=[io.Model.Output(tooltip="The same model, sampling as InstaFlow rectified flow. Place it after LoRA "
                                             "loaders or before; do not follow it with ModelSamplingSD3, which flips "
                                             "the velocity sign.")])

    @classmethod
    def execute(cls, model):
        patched, warning = patch_with_architecture_warning(model, "InstaFlow", "ModelSamplingInstaFlow", patch_instaflow_sampling)
        return io.NodeOutput(patched, ui={UI_KEY: [warning]} if warning else None)
