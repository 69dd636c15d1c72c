"""In-process ComfyUI worker for the benchmark: the same workflow without HTTP, and the component floor.

Started by devtools/inprocess_comfy.py (InProcessComfy) as a subprocess (ComfyUI reads its command line at
import), it speaks JSON lines on stdin/stdout:
  {"cmd": "ping"}                                          -> {"ok": true, "device": ...}
  {"cmd": "workflow", "prompt": {...}, "outputs": ["9"]}   -> {"ms": ..., "ok": ...}   (PromptExecutor, no HTTP)
  {"cmd": "components", "loader": id, "prompt": text, "size": S, "batch": B, "variants": [...]}
      -> {"clip_ms", "unet_ms", "vae_ms", ...}  (after a workflow ran: times the MODEL/CLIP/VAE that its
         loader node `id` left in the cache; "variants" adds UNet timings with channels_last and a CUDA graph)
  {"cmd": "pack_cost", "prompt": {...}, "outputs": [...], "seed_node": id, "runs": N}
      -> for N warm prompts (validation + execution, only the seed changing): the pack's time measured by
         devtools/pack_meter.py (perf_counter at the pack's entry points), then devtools/pack_cost.py's cProfile figures
  {"cmd": "quit"}
A command that fails answers {"error": "..."} and the worker goes on.
"""
from __future__ import annotations

import argparse
import asyncio
import contextlib
import copy
import inspect
import json
import os
import statistics
import sys
import time
import traceback
import uuid

def parse_args():
    p = argparse.ArgumentParser()
    p.add_argument("--comfyui", required=True)
    p.add_argument("--pack", required=True, help="folder holding the pack (custom_nodes folder)")
    p.add_argument("--paths-config", required=True, help="extra_model_paths yaml for the models")
    p.add_argument("--output", required=True)
    p.add_argument("comfy_args", nargs="*", help="ComfyUI command-line flags, e.g. --cpu")
    return p.parse_args()


class _SilentServer:
    """What PromptExecutor needs of PromptServer when nobody listens."""
    client_id = None
    last_node_id = None
    last_prompt_id = None

    def send_sync(self, *args, **kwargs):
        pass


def _sync(t0):
    import torch

    if torch.cuda.is_available():
        torch.cuda.synchronize()
    return (time.perf_counter() - t0) * 1000


def setup(args):
    sys.path.insert(0, args.comfyui)
    sys.argv = ["main.py", *args.comfy_args]
    import comfy.options

    comfy.options.enable_args_parsing()
    from utils import extra_config  # ComfyUI's yaml loader; first, as in main.py (later imports shadow `utils`)
    import folder_paths
    import nodes

    folder_paths.set_output_directory(args.output)
    extra_config.load_extra_path_config(args.paths_config)
    result = nodes.init_extra_nodes(init_custom_nodes=True)
    if inspect.isawaitable(result):
        asyncio.run(result)
    import execution

    # The classic output cache (main.py's default up to 0.3.75, --cache-classic on 0.33.0); 0.33.0 reads
    # "ram_inactive" from cache_args whatever the cache type, older versions ignore it.
    return execution.PromptExecutor(_SilentServer(), cache_type=execution.CacheType.CLASSIC,
                                    cache_args={"lru": 0, "ram": 0, "ram_inactive": 0})


def _cached_outputs(executor, node_id):
    entry = executor.caches.outputs.get(node_id)
    if entry is None:
        raise RuntimeError(f"node {node_id} has no cached outputs; run the workflow first")
    return getattr(entry, "outputs", entry)  # a CacheEntry on recent ComfyUI, the list before


def _median_ms(fn, repeat):
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        times.append(_sync(t0))
    return statistics.median(times)


def components(executor, loader_id, prompt, size, batch, variants=(), repeat=1):
    """CLIP encode, one UNet call and one VAE decode, each alone, on the workflow's own models."""
    import torch

    import comfy.model_management as mm

    (model,), (clip,), (vae,) = _cached_outputs(executor, loader_id)[:3]
    t0 = time.perf_counter()
    cond = clip.encode_from_tokens(clip.tokenize(prompt))
    clip_ms = _sync(t0)
    mm.load_models_gpu([model])
    device = model.load_device
    x = torch.randn(batch, 4, size // 8, size // 8, device=device)
    sigma = torch.ones(batch, device=device)
    context = cond.to(device).repeat(batch, 1, 1)
    base = model.model
    out = {}
    with torch.no_grad():
        results = []
        out["unet_ms"] = _median_ms(lambda: results.append(base.apply_model(x, sigma, c_crossattn=context)), repeat)
        eager = results[-1]
        out["vae_ms"] = _median_ms(lambda: vae.decode(x), repeat)
        for variant in variants:
            try:
                out.update(_unet_variant(variant, base, x, sigma, context, eager, repeat))
            except Exception as e:  # a variant that cannot run here is reported, not fatal
                out[f"unet_{variant}_error"] = f"{type(e).__name__}: {e}"
    return {"clip_ms": clip_ms, **out, "unet_dtype": str(base.get_dtype()).replace("torch.", ""),
            "vae_dtype": str(getattr(vae, "vae_dtype", "?")).replace("torch.", ""), "device": str(device)}


def _unet_variant(variant, base, x, sigma, context, eager, repeat):
    from bench.device.bench_nodes import speed  # the benchmark's speed options, asked for by the benchmark only

    if variant == "channels_last":
        unet = speed.channels_last_copy(base.diffusion_model)
        original = base.diffusion_model
        try:
            base.diffusion_model = unet
            run = lambda: base.apply_model(x.contiguous(memory_format=speed.channels_last_format()), sigma,  # noqa: E731
                                           c_crossattn=context)
            result = run()
            ms = _median_ms(run, repeat)
        finally:
            base.diffusion_model = original
            del unet
    elif variant == "cuda_graph":
        graphed = speed.GraphedCall(lambda a, b, c: base.apply_model(a, b, c_crossattn=c))
        run = lambda: graphed(x, sigma, context)  # noqa: E731
        result = run()
        ms = _median_ms(run, repeat)
        if not graphed.captured:
            return {f"unet_{variant}_error": graphed.why_not or "not captured"}
    else:
        raise ValueError(f"unknown variant {variant}")
    diff = (result.float() - eager.float()).abs().max().item()
    return {f"unet_{variant}_ms": ms, f"unet_{variant}_max_abs_diff": diff}


@contextlib.contextmanager
def _synchronous_model_calls():
    """On a GPU: every UNet call waits for its own kernels, so code after it never waits for them."""
    import torch

    import comfy.model_base

    if not torch.cuda.is_available():
        yield
        return
    original = comfy.model_base.BaseModel.apply_model

    def apply_model(self, *args, **kwargs):
        out = original(self, *args, **kwargs)
        torch.cuda.synchronize()
        return out

    comfy.model_base.BaseModel.apply_model = apply_model
    try:
        yield
    finally:
        comfy.model_base.BaseModel.apply_model = original


_meter = None


def pack_cost(executor, msg, pack_dirs, comfy_dir):
    """N warm prompts timed by devtools/pack_meter.py (no profiler), then N more under cProfile (devtools/pack_cost.py),
    with the meter's wrappers in place so that the profile also shows whether they cover every entry into the pack."""
    import cProfile

    import execution

    from devtools import pack_meter
    from devtools.pack_cost import analyse

    global _meter
    if _meter is None:
        _meter = pack_meter.PackMeter()
        _meter.wrapped = pack_meter.install(_meter, pack_dirs)
    meter = _meter
    prompt, outputs, seed_node, runs = msg["prompt"], msg["outputs"], msg["seed_node"], msg.get("runs", 5)

    def one(seed, profile=None):
        p = copy.deepcopy(prompt)
        p[seed_node]["inputs"]["seed"] = seed
        pid = uuid.uuid4().hex
        meter.reset()
        t0 = time.perf_counter()
        meter.active = True
        if profile is not None:
            profile.enable()
        try:
            valid = asyncio.run(execution.validate_prompt(pid, p, None))
            if not valid[0]:
                raise RuntimeError(f"prompt invalid: {valid[1]} {valid[3]}")
            executor.execute(p, pid, {}, outputs)
        finally:
            if profile is not None:
                profile.disable()
            meter.active = False
        ms = _sync(t0)
        if not executor.success:
            raise RuntimeError("the prompt failed")
        return ms, meter.seconds * 1000, dict(meter.by_entry), dict(meter.calls)

    one(9000)  # warm: everything but the seed-dependent nodes is cached from here on
    profile = cProfile.Profile()
    # Model calls made synchronous in both passes: on a GPU, the first sync in pack code would otherwise wait for
    # the queued UNet work and charge it to the pack (on a CPU the calls are synchronous anyway).
    with _synchronous_model_calls():
        metered = [one(9001 + i) for i in range(runs)]
        profiled = [one(9101 + i, profile) for i in range(runs)]
    result = analyse(profile, pack_dirs, comfy_dir, prompts=runs, transparent_files=(pack_meter.__file__,),
                     not_pack=pack_meter.NOT_PACK)
    median_run = sorted(metered, key=lambda m: m[1])[len(metered) // 2]
    result.update(
        prompt_ms=statistics.median(m[0] for m in metered), prompt_profiled_ms=statistics.median(m[0] for m in profiled),
        pack_ms=[m[1] for m in metered], pack_ms_median=median_run[1],
        pack_ms_by_entry={k: round(v * 1000, 4) for k, v in sorted(median_run[2].items(), key=lambda kv: -kv[1])},
        pack_calls_per_prompt=median_run[3], metered_entries=meter.wrapped,
        unmetered_entries=pack_meter.uncovered_entries(profile, pack_dirs))
    return result


def main():
    args = parse_args()
    executor = setup(args)
    repo = os.path.realpath(os.path.join(os.path.dirname(os.path.abspath(__file__)), os.pardir))
    pack_dirs = [os.path.join(args.pack, name) for name in os.listdir(args.pack)  # the pack, under its registry id
                 if os.path.realpath(os.path.join(args.pack, name)) == repo]
    for line in sys.stdin:
        msg = json.loads(line)
        try:
            if msg["cmd"] == "quit":
                break
            if msg["cmd"] == "ping":
                import comfy.model_management as mm

                reply = {"ok": True, "device": str(mm.get_torch_device())}
            elif msg["cmd"] == "workflow":
                t0 = time.perf_counter()
                executor.execute(msg["prompt"], uuid.uuid4().hex, {}, msg["outputs"])
                reply = {"ms": _sync(t0), "ok": executor.success}
            elif msg["cmd"] == "components":
                reply = components(executor, msg["loader"], msg["prompt"], msg["size"], msg["batch"],
                                   msg.get("variants", ()), msg.get("repeat", 1))
            elif msg["cmd"] == "pack_cost":
                reply = pack_cost(executor, msg, pack_dirs, args.comfyui)
            else:
                reply = {"error": f"unknown command {msg['cmd']}"}
        except Exception as e:
            reply = {"error": f"{type(e).__name__}: {e}", "traceback": traceback.format_exc()[-3000:]}
        print(json.dumps(reply), flush=True)


if __name__ == "__main__":
    main()
