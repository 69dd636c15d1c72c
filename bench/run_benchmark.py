"""One-step InstaFlow through ComfyUI vs the diffusers reference, measured side by side in one run.

For each resolution (and batch size) on the same weights, device and dtype, every measured round runs,
one after the other: the workflow through a real ComfyUI server (POST /prompt until the PNG is
fetched, only the seed changing), the same workflow in-process without HTTP (ComfyUI's
PromptExecutor), and the reference one-step loop of the official pipeline_rf.py math written with
diffusers modules. Then come the component floors (CLIP encode, one UNet call, one VAE decode, each
alone) of both implementations. Medians over --runs rounds after --warmup rounds.

Run through bench/run.sh (it builds the environment first). Uses a GPU when torch sees one (fp16,
batch 1/8/16 at 512x512), otherwise the CPU (fp32, batch 1 at 256x256 and 512x512).
"""
from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import shlex
import statistics
import sys
import tempfile
import time
import uuid
from pathlib import Path

import aiohttp
import torch

from devtools.comfyui_source import REPO, comfyui_path
from devtools.inprocess_comfy import InProcessComfy
from devtools.pack_identity import PACK_NAME
from devtools.reference_rf import ReferenceInstaFlow
from devtools.server import ComfyServer
from devtools.ui_workflow import ui_to_api

WORKFLOW = REPO / "example_workflows" / "instaflow_one_step_txt2img.json"
PROMPT = "A hyper-realistic photo of a cute cat, golden hour, 85mm"
REAL_MODEL = "instaflow_0_9B_from_sd_1_5"


def parse_args():
    cuda = torch.cuda.is_available()
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--sizes", type=int, nargs="+", default=[512] if cuda else [256, 512])
    p.add_argument("--batches", type=int, nargs="+", default=[1, 8, 16] if cuda else [1])
    p.add_argument("--runs", type=int, default=10 if cuda else 5, help="measured rounds (median)")
    p.add_argument("--warmup", type=int, default=3 if cuda else 1)
    p.add_argument("--models", type=Path, default=None,
                   help=f"models folder with instaflow/{REAL_MODEL} (real weights); default: the random-weight model")
    p.add_argument("--comfy-args", type=shlex.split, default=[],
                   help='extra ComfyUI flags for both ComfyUI runs, e.g. --comfy-args="--use-pytorch-cross-attention"')
    p.add_argument("--json", type=Path, default=None, help="also write the results here")
    return p.parse_args()


def median(values):
    return statistics.median(values)


def sync():
    if torch.cuda.is_available():
        torch.cuda.synchronize()


def elapsed_ms(t0):
    sync()
    return (time.perf_counter() - t0) * 1000


# ---------------------------------------------------------------------------- models and workflow
def choose_models(args):
    if args.models is not None and (args.models / "instaflow" / REAL_MODEL / "unet").is_dir():
        return args.models, REAL_MODEL, args.models / "instaflow" / REAL_MODEL, "real InstaFlow-0.9B"
    from devtools.random_models import ensure_random_instaflow

    m = ensure_random_instaflow()
    return m.models_root, m.name, m.diffusers_dir, "random weights (full-size SD1.5 architecture)"


def workflow_prompt(object_info, model_name, size, batch):
    """The bundled one-step example workflow in API format, set to this size and batch."""
    prompt = ui_to_api(json.loads(WORKFLOW.read_text()), object_info)
    for node in prompt.values():
        inputs = node["inputs"]
        if node["class_type"] == "InstaFlowLoader":
            inputs["ckpt_name"] = model_name
        elif node["class_type"] == "EmptyLatentImage":
            inputs.update(width=size, height=size, batch_size=batch)
        elif node["class_type"] == "CLIPTextEncode":
            inputs["text"] = PROMPT
    return prompt


def node_id(prompt, class_type):
    return next(k for k, v in prompt.items() if v["class_type"] == class_type)


def with_seed(prompt, seed):
    prompt = json.loads(json.dumps(prompt))
    prompt[node_id(prompt, "InstaFlowSampler")]["inputs"]["seed"] = seed
    return prompt


# ---------------------------------------------------------------------------- the three paths
class ServerClient:
    """POST /prompt, wait on the websocket for the end of execution, get every image of the output node.

    Returns (end-to-end ms, execution ms); the latter from the server's own execution_start /
    execution_success timestamps, so the difference is HTTP, queueing and getting the images.
    Images come either from SaveImage (fetched with GET /view after the prompt ends, as the web UI
    does) or, with via="ws", from ComfyUI's SaveImageWebsocket node (custom_nodes/websocket_image_save.py,
    shipped with ComfyUI): binary websocket messages sent while the prompt runs, nothing written to disk.
    """

    def __init__(self, url, via="view", timeout_s=600.0):
        self.url, self.client_id, self.via, self.timeout_s = url, uuid.uuid4().hex, via, timeout_s
        self.last_images: list[bytes] = []

    async def run_all(self, prompts, save_id, batch=1):
        async with aiohttp.ClientSession() as session:
            async with session.ws_connect(f"{self.url.replace('http', 'ws', 1)}/ws?clientId={self.client_id}",
                                          max_msg_size=0) as ws:
                return [await self._one(session, ws, p, save_id, batch) for p in prompts]

    async def _one(self, session, ws, prompt, save_id, batch):
        t0 = time.perf_counter()
        async with session.post(f"{self.url}/prompt", json={"prompt": prompt, "client_id": self.client_id}) as r:
            reply = await r.json()
        if "prompt_id" not in reply:
            raise RuntimeError(f"prompt rejected: {json.dumps(reply)[:2000]}")
        prompt_id = reply["prompt_id"]
        stamps, pushed, done = {}, [], False
        while not done or (self.via == "ws" and len(pushed) < batch):
            msg = await ws.receive(timeout=self.timeout_s)  # a prompt that hangs fails, not the whole run
            if msg.type == aiohttp.WSMsgType.BINARY:
                pushed.append(msg.data[8:])  # 4-byte event type, 4-byte image format, then the PNG
                continue
            if msg.type != aiohttp.WSMsgType.TEXT:
                raise RuntimeError(f"websocket closed ({msg.type})")
            event = json.loads(msg.data)
            data = event.get("data", {})
            if data.get("prompt_id") != prompt_id:
                continue
            if event["type"] == "execution_error":
                raise RuntimeError(f"workflow failed: {data.get('exception_message')}")
            stamps[event["type"]] = data.get("timestamp")
            if event["type"] == "executing" and data.get("node") is None:
                done = True
        if self.via == "ws":
            images = pushed
        else:
            async with session.get(f"{self.url}/history/{prompt_id}") as r:
                refs = (await r.json())[prompt_id]["outputs"][save_id]["images"]
            images = []
            for ref in refs:
                async with session.get(f"{self.url}/view", params=ref) as r:
                    images.append(await r.read())
        e2e = (time.perf_counter() - t0) * 1000
        self.last_images = images
        start, end = stamps.get("execution_start"), stamps.get("execution_success")
        return e2e, (end - start if start and end else float("nan"))


def reference_components(ref, size, batch, seed):
    noise = torch.randn((batch, 4, size // 8, size // 8), generator=torch.Generator().manual_seed(seed))
    t0 = time.perf_counter()
    embeds = ref.encode_prompt([PROMPT] * batch)
    clip_ms = elapsed_ms(t0)
    latents = noise.to(ref.device, ref.dtype)
    t0 = time.perf_counter()
    v = ref.velocity(latents, 1000.0, embeds)
    unet_ms = elapsed_ms(t0)
    t0 = time.perf_counter()
    ref.decode(latents + v)
    return {"clip_ms": clip_ms, "unet_ms": unet_ms, "vae_ms": elapsed_ms(t0)}


def reference_full_ms(ref, size, batch, seed):
    """The whole official one-step call: encode the prompt, one UNet call, decode."""
    noise = torch.randn((batch, 4, size // 8, size // 8), generator=torch.Generator().manual_seed(seed))
    t0 = time.perf_counter()
    ref.generate(PROMPT, noise)
    return elapsed_ms(t0)


# ---------------------------------------------------------------------------- one configuration
def measure(args, server, inproc, ref, model_name, size, batch):
    prompt = workflow_prompt(server.object_info(), model_name, size, batch)
    save_id, loader_id = node_id(prompt, "SaveImage"), node_id(prompt, "InstaFlowLoader")
    client = ServerClient(server.url)
    rows = {k: [] for k in ("server", "server_exec", "inprocess", "reference", "c_clip", "c_unet", "c_vae", "r_clip", "r_unet", "r_vae")}
    for i in range(args.warmup + args.runs):
        seed = 1000 + i
        server_ms, server_exec_ms = asyncio.run(client.run_all([with_seed(prompt, seed)], save_id, batch))[0]
        reply = inproc.ask(cmd="workflow", prompt=with_seed(prompt, seed), outputs=[save_id])
        if not reply["ok"]:
            raise RuntimeError("the in-process workflow failed; see inprocess.log")
        reference_ms = reference_full_ms(ref, size, batch, seed)
        comfy = inproc.ask(cmd="components", loader=loader_id, prompt=PROMPT, size=size, batch=batch)
        refc = reference_components(ref, size, batch, seed)
        if i < args.warmup:
            continue
        for key, value in (("server", server_ms), ("server_exec", server_exec_ms), ("inprocess", reply["ms"]), ("reference", reference_ms),
                           ("c_clip", comfy["clip_ms"]), ("c_unet", comfy["unet_ms"]), ("c_vae", comfy["vae_ms"]),
                           ("r_clip", refc["clip_ms"]), ("r_unet", refc["unet_ms"]), ("r_vae", refc["vae_ms"])):
            rows[key].append(value)
    m = {k: median(v) for k, v in rows.items()}
    # Only the seed changes between prompts, so ComfyUI serves the CLIP encoding from its cache:
    # the floor of a warm prompt is one UNet call plus one VAE decode.
    floor = m["c_unet"] + m["c_vae"]
    reference_cached_prompt = m["r_unet"] + m["r_vae"]
    return {
        "size": size, "batch": batch, **{f"{k}_ms": v for k, v in m.items()},
        "floor_ms": floor, "overhead_ms": m["server"] - floor, "overhead_pct": 100 * (m["server"] - floor) / floor,
        "http_queue_ms": m["server"] - m["server_exec"],
        "ratio_vs_reference": m["server"] / m["reference"],
        "ratio_vs_reference_cached_prompt": m["server"] / reference_cached_prompt,
        "images_per_s": batch * 1000 / m["server"],
    }


def environment(args, models_label, dtype):
    cpu = platform.processor() or platform.machine()
    try:
        cpu = next(l.split(":", 1)[1].strip() for l in open("/proc/cpuinfo") if l.startswith("model name"))
    except (OSError, StopIteration):
        pass
    import diffusers

    version_file = comfyui_path() / "comfyui_version.py"
    comfy_version = version_file.read_text().split('"')[1] if version_file.exists() else "unknown"
    return {
        "device": torch.cuda.get_device_name(0) if torch.cuda.is_available() else f"CPU: {cpu}, {os.cpu_count()} threads",
        "dtype": str(dtype).replace("torch.", ""), "torch": torch.__version__, "diffusers": diffusers.__version__,
        "comfyui": comfy_version, "python": platform.python_version(), "weights": models_label,
        "runs": args.runs, "warmup": args.warmup, "comfy_args": " ".join(args.comfy_args) or "(none)",
        "date": time.strftime("%Y-%m-%d"),
    }


def print_report(env, cold, results):
    print("\n## InstaFlow one-step benchmark")
    for k, v in env.items():
        print(f"- {k}: {v}")
    print(f"- cold first prompt after server start (includes model load): {cold['server_first_ms']:.0f} ms; "
          f"server start {cold['server_start_s']:.1f} s; in-process first prompt {cold['inprocess_first_ms']:.0f} ms")
    print("\n| size | batch | server e2e ms | server exec ms | in-process ms | diffusers ref ms | e2e / ref "
          "| e2e / ref (prompt cached) | floor ms (UNet+VAE) | overhead ms (%) | HTTP+queue ms | img/s |")
    print("|---|---|---|---|---|---|---|---|---|---|---|---|")
    for r in results:
        print(f"| {r['size']} | {r['batch']} | {r['server_ms']:.0f} | {r['server_exec_ms']:.0f} | {r['inprocess_ms']:.0f} "
              f"| {r['reference_ms']:.0f} "
              f"| {r['ratio_vs_reference']:.3f} | {r['ratio_vs_reference_cached_prompt']:.3f} | {r['floor_ms']:.0f} "
              f"| {r['overhead_ms']:.0f} ({r['overhead_pct']:.1f}%) | {r['http_queue_ms']:.0f} | {r['images_per_s']:.2f} |")
    print("\nComponents, each alone (ms): ComfyUI modules vs diffusers modules")
    print("\n| size | batch | CLIP comfy | CLIP diffusers | UNet comfy | UNet diffusers | VAE comfy | VAE diffusers |")
    print("|---|---|---|---|---|---|---|---|")
    for r in results:
        print(f"| {r['size']} | {r['batch']} | {r['c_clip_ms']:.0f} | {r['r_clip_ms']:.0f} | {r['c_unet_ms']:.0f} "
              f"| {r['r_unet_ms']:.0f} | {r['c_vae_ms']:.0f} | {r['r_vae_ms']:.0f} |")


def main():
    args = parse_args()
    cuda = torch.cuda.is_available()
    dtype = torch.float16 if cuda else torch.float32  # what ComfyUI picks for SD1.5 on each
    models_root, model_name, diffusers_dir, label = choose_models(args)
    env = environment(args, label, dtype)
    ref = ReferenceInstaFlow(diffusers_dir, device="cuda" if cuda else "cpu", dtype=dtype)
    with tempfile.TemporaryDirectory(prefix="instaflow-bench-") as tmp:
        tmp = Path(tmp)
        (tmp / "server").mkdir()
        (tmp / "inprocess").mkdir()
        server = ComfyServer(models_root, [(PACK_NAME, REPO)], tmp / "server",
                             extra_args=args.comfy_args, cpu=not cuda)
        inproc = InProcessComfy(models_root, tmp / "inprocess", [*([] if cuda else ["--cpu"]), *args.comfy_args])
        try:
            server.start()
            inproc.wait_ready()
            first = workflow_prompt(server.object_info(), model_name, args.sizes[0], 1)
            cold = {"server_start_s": server.start_seconds,
                    "server_first_ms": asyncio.run(ServerClient(server.url).run_all([first], node_id(first, "SaveImage")))[0][0],
                    "inprocess_first_ms": inproc.ask(cmd="workflow", prompt=first, outputs=[node_id(first, "SaveImage")])["ms"]}
            results = [measure(args, server, inproc, ref, model_name, size, batch)
                       for size in args.sizes for batch in args.batches]
        finally:
            inproc.close()
            server.stop()
    print_report(env, cold, results)
    if args.json:
        args.json.write_text(json.dumps({"environment": env, "cold": cold, "results": results}, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
