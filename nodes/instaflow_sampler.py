from ..samplers.comfyui.instaflow_sampling import sample_instaflow


class InstaFlowSampler:
    DESCRIPTION = ("One-node InstaFlow sampling (like KSampler): rectified-flow Euler on the official schedule. "
                   "A model not yet patched by ModelSamplingInstaFlow is patched for the run.")
    CATEGORY = "InstaFlow/sampling"
    FUNCTION = "execute"
    RETURN_TYPES = ("LATENT",)
    OUTPUT_TOOLTIPS = ("The generated latent, for VAEDecode.",)

    @classmethod
    def INPUT_TYPES(cls):
        return {
            "required": {
                "model": ("MODEL", {"tooltip": "An InstaFlow / 2-Rectified-Flow model, e.g. from InstaFlowLoader."}),
                "seed": ("INT", {"default": 0, "min": 0, "max": 0xffffffffffffffff, "control_after_generate": True,
                                 "tooltip": "Seed of the starting noise (same noise as KSampler for the same seed)."}),
                "steps": ("INT", {"default": 1, "min": 1, "max": 10000,
                                  "tooltip": "Euler steps. InstaFlow-0.9B: 1. 2-Rectified Flow: 2-8."}),
                "cfg": ("FLOAT", {"default": 1.0, "min": 0.0, "max": 100.0, "step": 0.1, "round": 0.01,
                                  "tooltip": "Classifier-free guidance. 1.0 (off, one model call) for InstaFlow-0.9B; "
                                             "about 1.5 for 2-Rectified Flow, which needs a negative prompt."}),
                "positive": ("CONDITIONING", {"tooltip": "What the image should show."}),
                "latent_image": ("LATENT", {"tooltip": "Empty Latent Image for text-to-image, or an encoded image with denoise < 1."}),
                "denoise": ("FLOAT", {"default": 1.0, "min": 0.0, "max": 1.0, "step": 0.01,
                                      "tooltip": "Starting noise level: 1.0 for text-to-image; lower keeps more of latent_image; 0 returns it unchanged."}),
            },
            "optional": {
                "negative": ("CONDITIONING", {"tooltip": "What to steer away from; needed when cfg is not 1 (an empty prompt is the official default)."}),
            },
        }

    def execute(self, model, seed, steps, cfg, positive, latent_image, denoise, negative=None):
        return (sample_instaflow(model, seed, steps, cfg, positive, negative, latent_image, denoise),)
