from ..samplers.comfyui.schedules import instaflow_sigmas_for_model


class InstaFlowScheduler:
    DESCRIPTION = ("The official InstaFlow / 2-Rectified-Flow schedule as SIGMAS for SamplerCustom: N uniform steps "
                   "from sigma = denoise to 0 (use it with KSamplerSelect set to rectified_flow).")
    CATEGORY = "InstaFlow/sampling"
    FUNCTION = "execute"
    RETURN_TYPES = ("SIGMAS",)
    OUTPUT_TOOLTIPS = ("Sigmas [1, 1-1/N, ..., 1/N, 0] scaled by denoise, for SamplerCustom.",)

    @classmethod
    def INPUT_TYPES(cls):
        return {"required": {
            "model": ("MODEL", {"tooltip": "The rectified-flow model the sigmas are for."}),
            "steps": ("INT", {"default": 1, "min": 1, "max": 10000,
                              "tooltip": "Euler steps. InstaFlow-0.9B: 1. 2-Rectified Flow: 2-8 (25 in the paper)."}),
            "denoise": ("FLOAT", {"default": 1.0, "min": 0.0, "max": 1.0, "step": 0.01,
                                  "tooltip": "Starting noise level: 1.0 for text-to-image, lower keeps more of an input image."}),
        }}

    def execute(self, model, steps, denoise):
        return (instaflow_sigmas_for_model(model, steps, denoise, "InstaFlowScheduler"),)
