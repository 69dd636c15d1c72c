from ..samplers.comfyui.interpolated_noise import InterpolatedNoise


class InstaFlowInterpolatedNoise:
    DESCRIPTION = ("Noise for SamplerCustomAdvanced that walks from one seed's noise to another's over a batch of "
                   "frames (spherical interpolation), for InstaFlow latent-interpolation videos.")
    CATEGORY = "InstaFlow/interpolation"
    FUNCTION = "execute"
    RETURN_TYPES = ("NOISE",)
    OUTPUT_TOOLTIPS = ("Noise for SamplerCustomAdvanced: frame 0 is exactly seed_from's noise, the last frame "
                       "exactly seed_to's; the latent's batch size must equal frames.",)

    @classmethod
    def INPUT_TYPES(cls):
        return {"required": {
            "seed_from": ("INT", {"default": 0, "min": 0, "max": 0xffffffffffffffff, "control_after_generate": True,
                                  "tooltip": "Seed of the first frame (the same noise as KSampler / RandomNoise with this seed)."}),
            "seed_to": ("INT", {"default": 1, "min": 0, "max": 0xffffffffffffffff, "control_after_generate": True,
                                "tooltip": "Seed of the last frame."}),
            "frames": ("INT", {"default": 8, "min": 1, "max": 4096,
                               "tooltip": "Number of frames; set the Empty Latent Image batch_size to the same number."}),
        }}

    def execute(self, seed_from, seed_to, frames):
        return (InterpolatedNoise(seed_from, seed_to, frames),)
