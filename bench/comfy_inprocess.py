"""In-process ComfyUI worker for the benchmark: the same workflow without HTTP, and the component floor.

Started by bench/run_benchmark.py as a subprocess (ComfyUI reads its command line at import), it
speaks JSON lines on stdin/stdout:
  {"cmd": "workflow", "prompt": {...}, "outputs": ["9"]}  -> {"ms": ...}   (PromptExecutor, no HTTP)
  {"cmd": "components", "loader": id, "prompt": text, "size": S, "batch": B} -> {"clip_ms", "unet_ms", "vae_ms"}
     (after a workflow ran: times the MODEL/CLIP/VAE that its loader node `id` left in the cache)
  {"cmd": "quit"}
"""
from __future__ import annotations

import argparse
import asyncio
import inspect
import json
import sys
import time
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

    return execution.PromptExecutor(_SilentServer(), cache_type=execution.CacheType.CLASSIC,
                                      cache_args={"lru": 0, "ram": 0})  # what main.py passes by default


def _cached_outputs(executor, node_id):
    entry = executor.caches.outputs.get(node_id)
    if entry is None:
        raise RuntimeError(f"node {node_id} has no cached outputs; run the workflow first")
    return getattr(entry, "outputs", entry)  # a CacheEntry on recent ComfyUI, the list before


def components(executor, loader_id, prompt, size, batch):
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
    with torch.no_grad():
        t0 = time.perf_counter()
        model.model.apply_model(x, sigma, c_crossattn=context)
        unet_ms = _sync(t0)
        t0 = time.perf_counter()
        vae.decode(x)
        vae_ms = _sync(t0)
    return {"clip_ms": clip_ms, "unet_ms": unet_ms, "vae_ms": vae_ms, "unet_dtype": str(model.model.get_dtype())}


def main():
    args = parse_args()
    executor = setup(args)
    for line in sys.stdin:
        msg = json.loads(line)
        if msg["cmd"] == "quit":
            break
        if msg["cmd"] == "workflow":
            t0 = time.perf_counter()
            executor.execute(msg["prompt"], uuid.uuid4().hex, {}, msg["outputs"])
            reply = {"ms": _sync(t0), "ok": executor.success}
        else:
            reply = components(executor, msg["loader"], msg["prompt"], msg["size"], msg["batch"])
        print(json.dumps(reply), flush=True)


if __name__ == "__main__":
    main()
