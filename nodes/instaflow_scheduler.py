from comfy_api.v0_0_2 import io

from ..samplers.comfyui.schedules import instaflow_sigmas_for_model
from .schema_cache import schema_kept_while


class InstaFlowScheduler(io.ComfyNode):
    @classmethod
    @schema_kept_while()
    def define_schema(cls):
        return io.Schema(
            node_id="InstaFlowScheduler", display_name="InstaFlow Scheduler", category="InstaFlow/sampling",
            description="The official InstaFlow / 2-Rectified-Flow schedule as SIGMAS for SamplerCustom: N uniform steps "
                        "from sigma = denoise to 0 (use it with KSamplerSelect set to rectified_flow).",
            inputs=[
                io.Model.Input("model", tooltip="The rectified-flow model the sigmas are for."),
                io.Int.Input("steps", default=1, min=1, max=10000,
                             tooltip="Euler steps. InstaFlow-0.9B: 1. 2-Rectified Flow: 2-8 (25 in the paper)."),
                io.Float.Input("denoise", default=1.0, min=0.0, max=1.0, step=0.01,
                               tooltip="Starting noise level: 1.0 for text-to-image, lower keeps more of an input image."),
            ],
            outputs=[io.Sigmas.Output(tooltip="Sigmas [1, 1-1/N, ..., 1/N, 0] scaled by denoise, for SamplerCustom.")])

    @classmethod
    def execute(cls, model, steps, denoise):
        return io.NodeOutput(instaflow_sigmas_for_model(model, steps, denoise, "InstaFlowScheduler"))
