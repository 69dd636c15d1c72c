"""Test-only node: records, at every model call during sampling, which sampling convention and latent
format the model actually used, so a test can check two model families sharing one prompt.

SamplingProbe passes the MODEL through with a unet function wrapper (ModelPatcher
set_model_unet_function_wrapper, called by comfy.samplers for each model evaluation). The wrapper reads
the model_sampling object in force during that call (object patches such as InstaFlow's are applied
to the model while it samples) and appends one JSON line to <output dir>/sampling_probe.jsonl.
"""
import json
import os

import folder_paths

LOG_NAME = "sampling_probe.jsonl"


def _record(label, base_model, sigma):
    sampling = base_model.model_sampling
    return {
        "label": label,
        "model_class": type(base_model).__name__,
        "model_sampling_mro": [cls.__name__ for cls in type(sampling).__mro__],
        "latent_format": type(base_model.latent_format).__name__,
        "latent_scale_factor": float(base_model.latent_format.scale_factor),
        "sigma": [float(s) for s in sigma.flatten()],
        "timestep": [float(t) for t in sampling.timestep(sigma).flatten()],
    }


class SamplingProbe:
    CATEGORY = "testing"
    FUNCTION = "execute"
    RETURN_TYPES = ("MODEL",)

    @classmethod
    def INPUT_TYPES(cls):
        return {"required": {"model": ("MODEL",), "label": ("STRING", {"default": "probe"})}}

    def execute(self, model, label):
        path = os.path.join(folder_paths.get_output_directory(), LOG_NAME)
        inner = model.model_options.get("model_function_wrapper")

        def probe(apply_model, args):
            with open(path, "a", encoding="utf-8") as log:
                log.write(json.dumps(_record(label, apply_model.__self__, args["timestep"])) + "\n")
            if inner is not None:
                return inner(apply_model, args)
            return apply_model(args["input"], args["timestep"], **args["c"])

        probed = model.clone()
        probed.set_model_unet_function_wrapper(probe)
        return (probed,)
