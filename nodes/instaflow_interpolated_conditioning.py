from ..samplers.conditioning_interpolation import interpolate_conditioning


class InstaFlowInterpolatedConditioning:
    DESCRIPTION = ("Per-frame prompt interpolation: one conditioning per frame, moving in a straight line from "
                   "one prompt's embedding to another's, for a batch of frames.")
    CATEGORY = "InstaFlow/interpolation"
    FUNCTION = "execute"
    RETURN_TYPES = ("CONDITIONING",)
    OUTPUT_TOOLTIPS = ("A conditioning with one embedding per frame (frame 0 = conditioning_from, last frame = "
                       "conditioning_to), for a latent batch of the same size.",)

    @classmethod
    def INPUT_TYPES(cls):
        return {"required": {
            "conditioning_from": ("CONDITIONING", {"tooltip": "Prompt of the first frame (one CLIP Text Encode)."}),
            "conditioning_to": ("CONDITIONING", {"tooltip": "Prompt of the last frame (one CLIP Text Encode)."}),
            "frames": ("INT", {"default": 8, "min": 1, "max": 4096,
                               "tooltip": "Number of frames; the same number as the latent batch and the interpolated noise."}),
        }}

    def execute(self, conditioning_from, conditioning_to, frames):
        return (interpolate_conditioning(conditioning_from, conditioning_to, frames),)
