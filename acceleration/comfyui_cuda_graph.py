"""InstaFlow CUDA Graph: the UNet call as an exact CUDA graph replay (ComfyUI glue for cuda_graph_cache).

The wrapper is ComfyUI's APPLY_MODEL wrapper (comfy/patcher_extension.py WrappersMP, ModelPatcher.add_wrapper_with_key,
in 0.3.52 through 0.33.0): every sampler (KSampler, SamplerCustom, the pack's InstaFlow and PeRFlow nodes) calls
BaseModel.apply_model, which runs the wrappers that sampling copied into transformer_options, with the BaseModel
as `executor.class_obj`. Unlike set_model_unet_function_wrapper it stacks with other packs' wrappers.

A call runs eagerly (one log line per reason) when:
- a ControlNet is attached (the `control` argument; its tensors and strengths vary per call);
- the model has attention patches (transformer_options "patches" / "patches_replace": Python code that may read
  per-step values, which a replay would not see);
- a conditioning input is neither a tensor nor None (it could steer Python code inside the call);
- the model is partly offloaded (BaseModel.model_lowvram: its weights are copied in during the call);
- its tensors are not on a CUDA device.
The graphs are dropped when the weights change: a LoRA or weight delta patched in (BaseModel.
current_weight_patches_uuid, the ModelPatcher's patches_uuid that ComfyUI records when it patches), a reload,
an unload or offload (the weights' addresses).
"""
from __future__ import annotations

import logging

import torch

from .cuda_graph_cache import ExactGraphCache, capture_cuda_graph

WRAPPER_KEY = "instaflow_cuda_graph"
LOG_PREFIX = "InstaFlow CUDA Graph"
log = logging.getLogger("InstaFlow")
LAST_CACHE: dict = {}  # the most recent cache, for the device check's report (bench/device)


def weights_identity(base_model) -> tuple:
    """Changes whenever what the UNet call reads changes: other weights, moved weights, other patches."""
    tensors = [*base_model.diffusion_model.parameters(), *base_model.diffusion_model.buffers()]
    return (id(base_model), getattr(base_model, "current_weight_patches_uuid", None),
            hash(tuple(t.data_ptr() for t in tensors)))


def why_eager(base_model, tensors: dict, control, transformer_options: dict, require_cuda: bool = True) -> str | None:
    """Why this call cannot be a graph replay, or None when it can."""
    if control is not None:
        return "a ControlNet is attached"
    patches = sorted(k for k in ("patches", "patches_replace") if transformer_options.get(k))
    if patches:
        return f"the model has attention patches ({', '.join(patches)})"
    other = sorted(name for name, value in tensors.items() if value is not None and not isinstance(value, torch.Tensor))
    if other:
        return f"conditioning inputs that are not tensors: {', '.join(other)}"
    if getattr(base_model, "model_lowvram", False):
        return "the model is partly offloaded (low-VRAM loading copies its weights in during each call)"
    if require_cuda and not all(t.is_cuda for t in tensors.values() if isinstance(t, torch.Tensor)):
        return "the call's tensors are not on a CUDA device"
    return None


def _log_once(logged: set, why: str) -> None:
    if why not in logged:
        logged.add(why)
        log.info("%s: eager UNet call: %s", LOG_PREFIX, why)


def cuda_graph_wrapper(capture=capture_cuda_graph, require_cuda: bool = True):
    """A new APPLY_MODEL wrapper with its own graph cache. The tests give a stand-in capture and require_cuda=False
    to run this glue inside a CPU server's samplers."""
    logged: set = set()
    cache = ExactGraphCache(capture=capture, on_eager=lambda why: _log_once(logged, why))
    LAST_CACHE["cache"] = cache

    def wrapper(executor, x, t, c_concat=None, c_crossattn=None, control=None, transformer_options={}, **kwargs):
        base_model = executor.class_obj
        tensors = {"x": x, "t": t, "c_concat": c_concat, "c_crossattn": c_crossattn, **kwargs}
        why = why_eager(base_model, tensors, control, transformer_options, require_cuda)
        if why is not None:
            _log_once(logged, why)
            cache.eager_calls += 1
            return executor(x, t, c_concat, c_crossattn, control, transformer_options, **kwargs)
        names = tuple(name for name, value in tensors.items() if value is not None)

        def call(*values):
            given = dict(zip(names, values))
            return executor(given.pop("x"), given.pop("t"), given.pop("c_concat", None), given.pop("c_crossattn", None),
                            None, transformer_options, **given)
        return cache(call, [tensors[n] for n in names], layout=names, weights_identity=weights_identity(base_model))
    return wrapper


def with_cuda_graph(model):
    """A clone of the ModelPatcher whose UNet calls replay exact CUDA graphs; on a CPU the model itself."""
    device = getattr(model, "load_device", None)
    if getattr(device, "type", str(device)) != "cuda":
        log.info("%s: the model runs on %s, not a CUDA device: passed through unchanged", LOG_PREFIX, device)
        return model
    import comfy.patcher_extension

    patched = model.clone()
    patched.add_wrapper_with_key(comfy.patcher_extension.WrappersMP.APPLY_MODEL, WRAPPER_KEY, cuda_graph_wrapper())
    return patched
