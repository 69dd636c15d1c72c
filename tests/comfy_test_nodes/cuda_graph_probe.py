"""Test-only node: the pack's CUDA-graph wrapper on a CPU model, with a stand-in capture whose "replay" runs the
captured function on the static inputs (as a graph reads its static buffers), so the glue's keying, input copies
and eager rules run inside real samplers on the CPU. After each UNet call it writes the cache's counters to
<output dir>/cuda_graph_probe.json.
"""
import json
import os
import sys

import folder_paths

STATE_NAME = "cuda_graph_probe.json"


def _glue():
    return next(m for name, m in list(sys.modules.items()) if name.endswith("acceleration.comfyui_cuda_graph"))


def _replay_on_static_inputs(fn, static_inputs):
    return lambda: fn(*static_inputs)


class InstaFlowCudaGraphOnCpu:
    CATEGORY = "testing"
    FUNCTION = "execute"
    RETURN_TYPES = ("MODEL",)

    @classmethod
    def INPUT_TYPES(cls):
        return {"required": {"model": ("MODEL",)}}

    def execute(self, model):
        import comfy.patcher_extension

        glue = _glue()
        inner = glue.cuda_graph_wrapper(capture=_replay_on_static_inputs, require_cuda=False)
        cache = glue.LAST_CACHE["cache"]
        path = os.path.join(folder_paths.get_output_directory(), STATE_NAME)

        def wrapper(executor, *args, **kwargs):
            out = inner(executor, *args, **kwargs)
            with open(path, "w") as f:
                json.dump({"captures": cache.captures, "replays": cache.replays, "eager_calls": cache.eager_calls,
                           "eager_reasons": sorted(set(cache.eager.values()))}, f)
            return out

        patched = model.clone()
        patched.add_wrapper_with_key(comfy.patcher_extension.WrappersMP.APPLY_MODEL, glue.WRAPPER_KEY, wrapper)
        return (patched,)
