"""Output time: InstaFlowLivePreview vs SaveImage, measured side by side in one run through a real ComfyUI server.

    source scripts/paths.sh && "$INSTAFLOW_PYTHON" -m bench.live_preview_output [--size 512 --batch 4 --runs 7]

The graph makes a batch once (the reduced SD1.5 stand-in's one-step image, and a smooth picture from LoadImage,
which compresses like a real photo); every measured round then re-runs only the output node: SaveImage with a new
filename prefix (then the PNGs fetched with GET /view, as the frontend does after `executed`), or the live preview
(it always runs: its fingerprint never repeats). Rounds alternate between the two.

Output time = from the `executing` message naming the output node to the client holding the image bytes.
Breakdown: node (`executing` -> the next `executing` / `executed`), fetch (GET /history + /view, SaveImage only),
and, in this process on the same batch, the encoding alone (SaveImage's PNG at compress level 4 per image; the
live preview's tiling and encode).
"""
from __future__ import annotations

import argparse
import asyncio
import io
import json
import statistics
import sys
import tempfile
import time
import uuid
from pathlib import Path

import aiohttp
import numpy as np
import torch
from PIL import Image

REPO = Path(__file__).resolve().parent.parent

from devtools.graphs import Graph, encode  # noqa: E402
from devtools.input_images import input_picture, put_input_image  # noqa: E402
from devtools.pack_identity import PACK_NAME  # noqa: E402
from devtools.preview_client import parse_frame  # noqa: E402
from devtools.server import ComfyServer  # noqa: E402
from live_preview.image_encoding import encode_batch  # noqa: E402

TARGET_SAVING = 0.5  # the fast node should save at least half of SaveImage's output time


def images_node(g: Graph, content: str, model_name: str, size: int, batch: int, server):
    if content == "smooth":
        name = put_input_image(server, "bench_live_preview.png", input_picture(size))
        return g.add("RepeatImageBatch", image=g.add("LoadImage", image=name)[0], amount=batch)
    ckpt = g.add("CheckpointLoaderSimple", ckpt_name=model_name)
    model = g.add("ModelSamplingInstaFlow", model=ckpt[0])
    sampled = g.add("KSampler", model=model[0], seed=3, steps=1, cfg=1.0, sampler_name="rectified_flow", scheduler="instaflow",
                    positive=encode(g, ckpt[1], "a cat")[0], negative=encode(g, ckpt[1], "")[0],
                    latent_image=g.add("EmptyLatentImage", width=size, height=size, batch_size=batch)[0], denoise=1.0)
    return g.add("VAEDecode", samples=sampled[0], vae=ckpt[2])


def output_prompt(base: Graph, images, output: str, round_no: int) -> tuple[dict, str]:
    prompt = base.api()
    out_id = str(max(int(k) for k in prompt) + 1)
    if output == "save":
        prompt[out_id] = {"class_type": "SaveImage", "inputs": {"images": [images.id, 0], "filename_prefix": f"bench_{round_no}"}}
    else:
        prompt[out_id] = {"class_type": "InstaFlowLivePreview", "inputs": {"images": [images.id, 0], "format": "jpeg", "quality": 90}}
    return prompt, out_id


async def one_round(url: str, prompt: dict, out_id: str, output: str) -> dict:
    client_id = uuid.uuid4().hex
    async with aiohttp.ClientSession() as session:
        async with session.ws_connect(f"{url.replace('http', 'ws', 1)}/ws?clientId={client_id}", max_msg_size=0) as ws:
            await ws.send_json({"type": "feature_flags", "data": {"supports_preview_metadata": True}})
            await asyncio.sleep(0.05)
            t0 = time.perf_counter()
            async with session.post(f"{url}/prompt", json={"prompt": prompt, "client_id": client_id}) as r:
                prompt_id = (await r.json())["prompt_id"]
            stamps, image_bytes, done = {}, 0, False
            while not (done and (output == "save" or image_bytes)):
                msg = await ws.receive(timeout=600)
                now = time.perf_counter() - t0
                if msg.type == aiohttp.WSMsgType.BINARY:
                    frame = parse_frame(msg.data)
                    if frame is not None and frame.metadata and frame.metadata.get("prompt_id") == prompt_id:
                        stamps["bytes"], image_bytes = now, len(frame.image)
                    continue
                event = json.loads(msg.data)
                data = event.get("data") or {}
                if data.get("prompt_id") != prompt_id:
                    continue
                if event["type"] == "execution_error":
                    raise RuntimeError(data.get("exception_message"))
                if event["type"] == "executing" and data.get("node") == out_id:
                    stamps["node_start"] = now
                elif event["type"] == "executing" and data.get("node") is None:
                    stamps.setdefault("node_end", now)
                    done = True
                elif event["type"] == "executed" and data.get("node") == out_id:
                    stamps["node_end"] = now
            if output == "save":
                async with session.get(f"{url}/history/{prompt_id}") as r:
                    refs = (await r.json())[prompt_id]["outputs"][out_id]["images"]
                for ref in refs:
                    async with session.get(f"{url}/view", params=ref) as r:
                        image_bytes += len(await r.read())
                stamps["bytes"] = time.perf_counter() - t0
    ms = {k: v * 1000 for k, v in stamps.items()}
    return {"output_ms": ms["bytes"] - ms["node_start"], "node_ms": ms["node_end"] - ms["node_start"],
            "after_node_ms": ms["bytes"] - ms["node_end"], "post_to_bytes_ms": ms["bytes"], "bytes": image_bytes}


def encode_only_ms(images: np.ndarray, repeat: int) -> dict:
    batch = torch.from_numpy(images).float() / 255
    png, jpeg = [], []
    for _ in range(repeat):
        t0 = time.perf_counter()
        for image in images:
            Image.fromarray(image).save(io.BytesIO(), format="PNG", compress_level=4)  # SaveImage's setting
        png.append((time.perf_counter() - t0) * 1000)
        t0 = time.perf_counter()
        encode_batch(batch, "jpeg", 90)
        jpeg.append((time.perf_counter() - t0) * 1000)
    return {"png_encode_ms": statistics.median(png), "preview_encode_ms": statistics.median(jpeg)}


def measure(server, content, model_name, size, batch, runs, warmup):
    g = Graph()
    images = images_node(g, content, model_name, size, batch, server)
    rows = {"save": [], "preview": []}
    first, _ = output_prompt(g, images, "save", -1)
    outputs = server.run(first, timeout=1200)  # computes the batch once; later rounds re-run the output node only
    pngs = server.images(outputs, str(max(int(k) for k in first)))
    for i in range(warmup + runs):
        for output in ("save", "preview"):
            prompt, out_id = output_prompt(g, images, output, i)
            row = asyncio.run(one_round(server.url, prompt, out_id, output))
            if i >= warmup:
                rows[output].append(row)
    med = {o: {k: statistics.median(r[k] for r in rs) for k in rs[0]} for o, rs in rows.items()}
    med["encode_only"] = encode_only_ms(np.stack(pngs), max(3, runs))
    med["ratio_output"] = med["preview"]["output_ms"] / med["save"]["output_ms"]
    med["saving"] = 1 - med["ratio_output"]
    return med


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--size", type=int, default=512)
    p.add_argument("--batch", type=int, default=4)
    p.add_argument("--runs", type=int, default=7)
    p.add_argument("--warmup", type=int, default=2)
    p.add_argument("--content", nargs="+", default=["stand-in", "smooth"], choices=["stand-in", "smooth"])
    args = p.parse_args()
    from devtools.reduced_sd15 import ensure_reduced_instaflow

    model = ensure_reduced_instaflow()
    with tempfile.TemporaryDirectory(prefix="instaflow-live-bench-") as work:
        with ComfyServer([model.models_root], [(PACK_NAME, REPO)], Path(work)) as server:
            results = {c: measure(server, c, model.single_file.name, args.size, args.batch, args.runs, args.warmup)
                       for c in args.content}
    print(f"\nOutput time, {args.size}x{args.size} batch {args.batch}, CPU, medians of {args.runs} alternating rounds "
          f"(ms; output = `executing` of the output node -> image bytes at the client):")
    print("| content | SaveImage output | live preview output | preview / SaveImage | saving | SaveImage node | SaveImage fetch "
          "| preview node | preview after node | PNG encode alone | preview encode alone | PNG bytes | JPEG bytes |")
    print("|" + "---|" * 13)
    for content, m in results.items():
        s, f, e = m["save"], m["preview"], m["encode_only"]
        print(f"| {content} | {s['output_ms']:.1f} | {f['output_ms']:.1f} | {m['ratio_output']:.3f} | {m['saving']:.1%} "
              f"| {s['node_ms']:.1f} | {s['after_node_ms']:.1f} | {f['node_ms']:.1f} | {f['after_node_ms']:.1f} "
              f"| {e['png_encode_ms']:.1f} | {e['preview_encode_ms']:.1f} | {s['bytes']:.0f} | {f['bytes']:.0f} |")
    met = all(m["saving"] >= TARGET_SAVING for m in results.values())
    print(f"\nTarget: the live preview saves >= {TARGET_SAVING:.0%} of SaveImage's output time: {'met' if met else 'NOT met'}.")
    return 0


if __name__ == "__main__":
    sys.exit(main())
