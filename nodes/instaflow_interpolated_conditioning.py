from comfy_api.v0_0_2 import io

from ..flow_math.conditioning_interpolation import interpolate_conditioning
from .schema_cache import schema_kept_while


class InstaFlowInterpolatedConditioning(io.ComfyNode):
    @classmethod
    @schema_kept_while()
    def define_schema(cls):
        return io.Schema(
            node_id="InstaFlowInterpolatedConditioning", display_name="InstaFlow Interpolated Conditioning (prompt A to B)",
            category="InstaFlow/interpolation",
            description="Per-frame prompt interpolation: one conditioning per frame, moving in a straight line from one "
                        "prompt's embedding to another's, for a batch of frames.",
            inputs=[
                io.Conditioning.Input("conditioning_from", tooltip="Prompt of the first frame (one CLIP Text Encode)."),
                io.Conditioning.Input("conditioning_to", tooltip="Prompt of the last frame (one CLIP Text Encode)."),
                io.Int.Input("frames", default=8, min=1, max=4096,
                             tooltip="Number of frames; the same number as the latent batch and the interpolated noise."),
            ],
            outputs=[io.Conditioning.Output(tooltip="A conditioning with one embedding per frame (frame 0 = "
                                                    "conditioning_from, last frame = conditioning_to), for a latent "
                                                    "batch of the same size.")])

    @classmethod
    def execute(cls, conditioning_from, conditioning_to, frames):
        return io.NodeOutput(interpolate_conditioning(conditioning_from, conditioning_to, frames))
