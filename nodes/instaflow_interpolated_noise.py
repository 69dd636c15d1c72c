from comfy_api.v0_0_2 import io

from ..comfyui_glue.interpolated_noise import InterpolatedNoise
from .schema_cache import schema_kept_while


class InstaFlowInterpolatedNoise(io.ComfyNode):
    @classmethod
    @schema_kept_while()
    def define_schema(cls):
        return io.Schema(
            node_id="InstaFlowInterpolatedNoise", display_name="InstaFlow Interpolated Noise (slerp between seeds)",
            category="InstaFlow/interpolation",
            description="Noise for SamplerCustomAdvanced that walks from one seed's noise to another's over a batch of "
                        "frames (spherical interpolation), for InstaFlow latent-interpolation videos.",
            inputs=[
                io.Int.Input("seed_from", default=0, min=0, max=0xffffffffffffffff, control_after_generate=True,
                             tooltip="Seed of the first frame (the same noise as KSampler / RandomNoise with this seed)."),
                io.Int.Input("seed_to", default=1, min=0, max=0xffffffffffffffff, control_after_generate=True,
                             tooltip="Seed of the last frame."),
                io.Int.Input("frames", default=8, min=1, max=4096,
                             tooltip="Number of frames; set the Empty Latent Image batch_size to the same number."),
            ],
            outputs=[io.Noise.Output(tooltip="Noise for SamplerCustomAdvanced: frame 0 is exactly seed_from's noise, "
                                             "the last frame exactly seed_to's; the latent's batch size must equal frames.")])

    @classmethod
    def execute(cls, seed_from, seed_to, frames):
        return io.NodeOutput(InterpolatedNoise(seed_from, seed_to, frames))
