from comfy_api.v0_0_2 import io

from ..comfyui_glue.instaflow_sampling import sample_instaflow
from .schema_cache import schema_kept_while


class InstaFlowSampler(io.ComfyNode):
    @classmethod
    @schema_kept_while()
    def define_schema(cls):
        return io.Schema(
            node_id="InstaFlowSampler", display_name="InstaFlow Sampler", category="InstaFlow/sampling",
            description="One-node InstaFlow sampling (like KSampler): rectified-flow Euler on the official schedule. "
                        "A model not yet patched by ModelSamplingInstaFlow is patched for the run.",
            inputs=[
                io.Model.Input("model", tooltip="An InstaFlow / 2-Rectified-Flow model, e.g. from InstaFlowLoader."),
                io.Int.Input("seed", default=0, min=0, max=0xffffffffffffffff, control_after_generate=True,
                             tooltip="Seed of the starting noise (same noise as KSampler for the same seed)."),
                io.Int.Input("steps", default=1, min=1, max=10000,
                             tooltip="Euler steps. InstaFlow-0.9B: 1. 2-Rectified Flow: 2-8."),
                io.Float.Input("cfg", default=1.0, min=0.0, max=100.0, step=0.1, round=0.01,
                               tooltip="Classifier-free guidance. 1.0 (off, one model call) for InstaFlow-0.9B; about "
                                       "1.5 for 2-Rectified Flow, which needs a negative prompt."),
                io.Conditioning.Input("positive", tooltip="What the image should show."),
                io.Latent.Input("latent_image", tooltip="Empty Latent Image for text-to-image, or an encoded image with "
                                                        "denoise < 1."),
                io.Float.Input("denoise", default=1.0, min=0.0, max=1.0, step=0.01,
                               tooltip="Starting noise level: 1.0 for text-to-image; lower keeps more of latent_image; 0 "
                                       "returns it unchanged."),
                io.Conditioning.Input("negative", optional=True,
                                      tooltip="What to steer away from; needed when cfg is not 1 (an empty prompt is the "
                                              "official default)."),
            ],
            outputs=[io.Latent.Output(tooltip="The generated latent, for VAEDecode.")])

    @classmethod
    def execute(cls, model, seed, steps, cfg, positive, latent_image, denoise, negative=None):
        return io.NodeOutput(sample_instaflow(model, seed, steps, cfg, positive, negative, latent_image, denoise))
