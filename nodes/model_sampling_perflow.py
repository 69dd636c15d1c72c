from functools import partial

from comfy_api.v0_0_2 import io

from ..samplers.comfyui.architecture_warning import UI_KEY, patch_with_architecture_warning
from ..samplers.comfyui.model_sampling import patch_perflow_sampling
from ..samplers.flows.perflow import PREDICTION_TYPES
from .schema_cache import schema_kept_while


class ModelSamplingPeRFlow(io.ComfyNode):
    @classmethod
    @schema_kept_while()
    def define_schema(cls):
        return io.Schema(
            node_id="ModelSamplingPeRFlow", display_name="Model Sampling PeRFlow (Piecewise Rectified Flow)",
            category="InstaFlow/PeRFlow",
            description="Turns a PeRFlow model loaded by any loader (SD1.5, SDXL, SD2.x) into a piecewise-rectified-flow "
                        "model: sigma = PeRFlow time, timestep = sigma*1000, 4 windows. Sample with KSampler euler + perflow.",
            inputs=[
                io.Model.Input("model", tooltip="A PeRFlow model, e.g. perflow-sd15-dreamshaper from Load Checkpoint, or "
                                                "an SD1.5 finetune with the PeRFlow delta weights merged."),
                io.Combo.Input("prediction_type", options=list(PREDICTION_TYPES), default="diff_eps", tooltip=(
                    "What the UNet predicts, as PeRFlow's scheduler names it. diff_eps: SD1.5 models and the delta "
                    "weights (the model card's old name 'epsilon'); ddim_eps: SDXL; velocity: SD2.1 (artius).")),
            ],
            outputs=[io.Model.Output(tooltip="The same model, sampling as PeRFlow. Use scheduler perflow (or "
                                             "PeRFlowScheduler) with the euler or rectified_flow sampler; do not follow "
                                             "it with ModelSamplingSD3 or ModelSamplingInstaFlow.")])

    @classmethod
    def execute(cls, model, prediction_type):
        patch = partial(patch_perflow_sampling, prediction_type=prediction_type)
        patched, warning = patch_with_architecture_warning(model, "PeRFlow", "ModelSamplingPeRFlow", patch)
        return io.NodeOutput(patched, ui={UI_KEY: [warning]} if warning else None)
