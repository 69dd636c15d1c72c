import comfy.samplers

from ..training.teacher_pairs import make_pairs


class InstaFlowMakePairs:
    DESCRIPTION = ("Makes (noise, latent, conditioning) training pairs with a teacher model and its usual KSampler "
                   "settings, one safetensors file per pair in output/instaflow_pairs/<name>/, written as soon as it "
                   "is sampled. Running it again with the same name adds only the pairs not on disk yet (resume after "
                   "an interrupt, or append prompts at the end of the list).")
    CATEGORY = "InstaFlow/training"
    FUNCTION = "execute"
    OUTPUT_NODE = True
    RETURN_TYPES = ("INSTAFLOW_PAIRS",)
    RETURN_NAMES = ("pairs",)
    OUTPUT_TOOLTIPS = ("Every pair of the set (older ones included), for the Train Reflow / Distill LoRA nodes.",)

    @classmethod
    def INPUT_TYPES(cls):
        return {
            "required": {
                "model": ("MODEL", {"tooltip": "The teacher: an SD1.5 checkpoint (any sampling), 2-Rectified Flow, ..."}),
                "clip": ("CLIP", {"tooltip": "The teacher's text encoder; the pairs store its encoding of each prompt."}),
                "prompts": ("STRING", {"multiline": True, "default": "",
                                       "tooltip": "One prompt per line. Add new prompts at the end to append to a set."}),
                "negative_prompt": ("STRING", {"multiline": True, "default": "",
                                               "tooltip": "The teacher's negative prompt (used when cfg is not 1)."}),
                "seed": ("INT", {"default": 0, "min": 0, "max": 0xffffffffffffffff,
                                 "tooltip": "First seed: pair i of prompt j uses seed + j * pairs_per_prompt + i, "
                                            "with KSampler's noise for that seed."}),
                "pairs_per_prompt": ("INT", {"default": 1, "min": 1, "max": 100000,
                                             "tooltip": "How many seeds (pairs) per prompt."}),
                "width": ("INT", {"default": 512, "min": 64, "max": 4096, "step": 8,
                                  "tooltip": "Image width of the pairs (512 for SD1.5)."}),
                "height": ("INT", {"default": 512, "min": 64, "max": 4096, "step": 8,
                                   "tooltip": "Image height of the pairs (512 for SD1.5)."}),
                "sampler_name": (comfy.samplers.KSampler.SAMPLERS, {"default": "euler",
                                 "tooltip": "The teacher's sampler. Deterministic ones (euler, dpmpp_2m, ...) give the "
                                            "noise -> image map reflow straightens."}),
                "scheduler": (comfy.samplers.KSampler.SCHEDULERS, {"default": "normal",
                              "tooltip": "The teacher's scheduler (instaflow for a 2-RF teacher)."}),
                "steps": ("INT", {"default": 25, "min": 1, "max": 10000, "tooltip": "The teacher's steps."}),
                "cfg": ("FLOAT", {"default": 7.0, "min": 0.0, "max": 100.0, "step": 0.1, "round": 0.01,
                                  "tooltip": "The teacher's classifier-free guidance (SD1.5 ~7, 2-RF 1.5)."}),
                "name": ("STRING", {"default": "my_pairs",
                                    "tooltip": "Folder name under output/instaflow_pairs; an existing set is resumed "
                                               "or appended to, never overwritten."}),
            },
        }

    def execute(self, model, clip, prompts, negative_prompt, seed, pairs_per_prompt, width, height, sampler_name,
                scheduler, steps, cfg, name):
        return (make_pairs(model, clip, prompts, negative_prompt, seed, pairs_per_prompt, width, height,
                           sampler_name, scheduler, steps, cfg, name),)
