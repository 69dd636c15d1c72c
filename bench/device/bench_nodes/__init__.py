"""Benchmark-only ComfyUI nodes (loaded by the device check's server, never shipped with the pack).

- InstaFlowBenchChannelsLast (MODEL -> MODEL): the UNet runs from a channels_last copy of its weights
  (made on first use, on the model's device) with channels_last latents.
- InstaFlowBenchCudaGraph (MODEL -> MODEL): each plain UNet call (latent, sigma, text conditioning; no
  ControlNet, no other inputs) is a CUDA graph replay, captured per shape, used only if exact.
Their state is reported by GET /instaflow_bench/speed_state.
"""
import comfy.patcher_extension
import torch

from .speed import GraphedCall, channels_last_copy

STATE = {}


def _weights_identity(base_model):
    first = next(base_model.diffusion_model.parameters())
    return first.data_ptr(), first.device


class InstaFlowBenchChannelsLast:
    CATEGORY = "testing"
    FUNCTION = "execute"
    RETURN_TYPES = ("MODEL",)

    @classmethod
    def INPUT_TYPES(cls):
        return {"required": {"model": ("MODEL",)}}

    def execute(self, model):
        copies = {}

        def wrapper(executor, x, *args, **kwargs):
            base = executor.class_obj
            key = _weights_identity(base)
            if key not in copies:
                copies.clear()
                copies[key] = channels_last_copy(base.diffusion_model)
            original = base.diffusion_model
            base.diffusion_model = copies[key]
            try:
                return executor(x.contiguous(memory_format=torch.channels_last), *args, **kwargs)
            finally:
                base.diffusion_model = original

        patched = model.clone()
        patched.add_wrapper_with_key(comfy.patcher_extension.WrappersMP.APPLY_MODEL, "instaflow_bench_channels_last",
                                     wrapper)
        STATE["channels_last"] = {"used": True}
        return (patched,)


class InstaFlowBenchCudaGraph:
    CATEGORY = "testing"
    FUNCTION = "execute"
    RETURN_TYPES = ("MODEL",)

    @classmethod
    def INPUT_TYPES(cls):
        return {"required": {"model": ("MODEL",)}}

    def execute(self, model):
        calls = {}
        state = STATE.setdefault("cuda_graph", {"graphed_calls": 0, "eager_calls": 0})

        def unet_wrapper(apply_model, args):
            c = args["c"]
            if set(c) - {"c_crossattn", "transformer_options"} or c.get("c_crossattn") is None:
                state["eager_calls"] += 1
                return apply_model(args["input"], args["timestep"], **c)
            options = c.get("transformer_options", {})
            graphed = calls.get(id(apply_model.__self__))
            if graphed is None:
                base = apply_model.__self__
                graphed = calls[id(base)] = GraphedCall(
                    lambda x, t, ctx: apply_model(x, t, c_crossattn=ctx, transformer_options=options),
                    identity=lambda: _weights_identity(base))
            out = graphed(args["input"], args["timestep"], c["c_crossattn"])
            state.update(captured=graphed.captured, why_not=graphed.why_not, max_abs_diff=graphed.max_abs_diff)
            state["graphed_calls" if graphed.captured and graphed.why_not is None else "eager_calls"] += 1
            return out

        patched = model.clone()
        patched.set_model_unet_function_wrapper(unet_wrapper)
        return (patched,)


NODE_CLASS_MAPPINGS = {"InstaFlowBenchChannelsLast": InstaFlowBenchChannelsLast,
                       "InstaFlowBenchCudaGraph": InstaFlowBenchCudaGraph}


def _route():
    try:
        from aiohttp import web
        from server import PromptServer

        routes = PromptServer.instance.routes
    except Exception:  # noqa: BLE001 - the in-process worker has no server
        return

    @routes.get("/instaflow_bench/speed_state")
    async def speed_state(request):
        return web.json_response(STATE)


_route()


def _cuda_graph_route():
    """GET /instaflow_bench/cuda_graph_state: the counters of the pack's latest InstaFlowCudaGraph cache."""
    try:
        import sys

        from aiohttp import web
        from server import PromptServer

        routes = PromptServer.instance.routes
    except Exception:  # noqa: BLE001 - the in-process worker has no server
        return

    @routes.get("/instaflow_bench/cuda_graph_state")
    async def cuda_graph_state(request):
        glue = next((m for name, m in list(sys.modules.items()) if name.endswith("acceleration.comfyui_cuda_graph")), None)
        cache = (getattr(glue, "LAST_CACHE", {}) or {}).get("cache")
        if cache is None:
            return web.json_response({"captures": 0, "replays": 0, "eager_calls": 0, "eager_reasons": [], "graphs": 0})
        return web.json_response({"captures": cache.captures, "replays": cache.replays, "eager_calls": cache.eager_calls,
                                  "eager_reasons": sorted(set(cache.eager.values())), "graphs": len(cache.graphs)})


_cuda_graph_route()
