from comfy_api.v0_0_2 import io

from ..samplers.comfyui.schedules import perflow_sigmas_for_model
from .schema_cache import schema_kept_while


class PeRFlowScheduler(io.ComfyNode):
    @classmethod
    @schema_kept_while()
    def define_schema(cls):
        return io.Schema(
            node_id="PeRFlowScheduler", display_name="PeRFlow Scheduler", category="InstaFlow/PeRFlow",
            description="The official PeRFlow schedule as SIGMAS for SamplerCustom: the steps spread over 4 time windows "
                        "(e.g. 6 steps: 1000, 875, 750, 625, 500, 250), for a model patched by ModelSamplingPeRFlow.",
            inputs=[
                io.Model.Input("model", tooltip="The PeRFlow model the sigmas are for (patched by ModelSamplingPeRFlow "
                                                "or PeRFlowLoader)."),
                io.Int.Input("steps", default=4, min=1, max=1000,
                             tooltip="Sampling steps: 4-8 (SD1.5: 4 at cfg 4.5, 8 at cfg 7.5; SDXL: 6 at cfg 2). Fewer "
                                     "than 4 run 4, one per window, as the official scheduler does."),
                io.Float.Input("denoise", default=1.0, min=0.0, max=1.0, step=0.01,
                               tooltip="1.0 for text-to-image. Lower for img2img: the start snaps to the nearest window "
                                       "boundary (0.75, 0.5 or 0.25), where PeRFlow was trained on DDPM-noised images, "
                                       "and the steps cover the windows left; 0 samples nothing."),
            ],
            outputs=[io.Sigmas.Output(tooltip="Sigmas = PeRFlow's timesteps / 1000 (integer timesteps, as the official "
                                              "scheduler truncates them), then 0; for SamplerCustom with the euler or "
                                              "rectified_flow sampler.")])

    @classmethod
    def execute(cls, model, steps, denoise):
        return io.NodeOutput(perflow_sigmas_for_model(model, steps, denoise, "PeRFlowScheduler"))
