import comfy.samplers
from comfy_api.v0_0_2 import io

from ..training.teacher_pairs import make_pairs
from .schema_cache import schema_kept_while

PAIRS = io.Custom("INSTAFLOW_PAIRS")


class InstaFlowMakePairs(io.ComfyNode):
    @classmethod
    @schema_kept_while(lambda: (list(comfy.samplers.KSampler.SAMPLERS), list(comfy.samplers.KSampler.SCHEDULERS)))
    def define_schema(cls, samplers_and_schedulers):
        return io.Schema(
            node_id="InstaFlowMakePairs", display_name="InstaFlow Make Pairs (teacher noise/latent/prompt)",
            category="InstaFlow/training", is_output_node=True,
            description="Makes (noise, latent, conditioning) training pairs with a teacher model and its usual KSampler "
                        "settings, one safetensors file per pair in output/instaflow_pairs/<name>/, written as soon as "
                        "it is sampled. Running it again with the same name adds only the pairs not on disk yet (resume "
                        "after an interrupt, or append prompts at the end of the list).",
            inputs=[
                io.Model.Input("model", tooltip="The teacher: an SD1.5 checkpoint (any sampling), 2-Rectified Flow, ..."),
                io.Clip.Input("clip", tooltip="The teacher's text encoder; the pairs store its encoding of each prompt."),
                io.String.Input("prompts", multiline=True, default="",
                                tooltip="One prompt per line. Add new prompts at the end to append to a set."),
                io.String.Input("negative_prompt", multiline=True, default="",
                                tooltip="The teacher's negative prompt (used when cfg is not 1)."),
                io.Int.Input("seed", default=0, min=0, max=0xffffffffffffffff,
                             tooltip="First seed: pair i of prompt j uses seed + j * pairs_per_prompt + i, with "
                                     "KSampler's noise for that seed."),
                io.Int.Input("pairs_per_prompt", default=1, min=1, max=100000, tooltip="How many seeds (pairs) per prompt."),
                io.Int.Input("width", default=512, min=64, max=4096, step=8, tooltip="Image width of the pairs (512 for SD1.5)."),
                io.Int.Input("height", default=512, min=64, max=4096, step=8, tooltip="Image height of the pairs (512 for SD1.5)."),
                io.Combo.Input("sampler_name", options=samplers_and_schedulers[0], default="euler",
                               tooltip="The teacher's sampler. Deterministic ones (euler, dpmpp_2m, ...) give the noise -> "
                                       "image map reflow straightens."),
                io.Combo.Input("scheduler", options=samplers_and_schedulers[1], default="normal",
                               tooltip="The teacher's scheduler (instaflow for a 2-RF teacher)."),
                io.Int.Input("steps", default=25, min=1, max=10000, tooltip="The teacher's steps."),
                io.Float.Input("cfg", default=7.0, min=0.0, max=100.0, step=0.1, round=0.01,
                               tooltip="The teacher's classifier-free guidance (SD1.5 ~7, 2-RF 1.5)."),
                io.String.Input("name", default="my_pairs",
                                tooltip="Folder name under output/instaflow_pairs; an existing set is resumed or appended "
                                        "to, never overwritten."),
            ],
            outputs=[PAIRS.Output(display_name="pairs", tooltip="Every pair of the set (older ones included), for the "
                                                                "Train Reflow / Distill LoRA nodes.")])

    @classmethod
    def execute(cls, model, clip, prompts, negative_prompt, seed, pairs_per_prompt, width, height, sampler_name,
                scheduler, steps, cfg, name):
        return io.NodeOutput(make_pairs(model, clip, prompts, negative_prompt, seed, pairs_per_prompt, width, height,
                                        sampler_name, scheduler, steps, cfg, name))
