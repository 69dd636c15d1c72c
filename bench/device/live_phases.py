"""The device check's phases for issue 25's two nodes (called from device_check.py).

- live_output: InstaFlowLivePreview at each batch of the profile through the server: time from POST /prompt to the
  preview bytes at the websocket client that queued it, beside the SaveImage path (POST /prompt until every PNG is
  fetched) in alternating rounds; which encoder the server used (its log).
- cuda_graph_node: the one-step workflow with InstaFlowCudaGraph before the sampler vs without it, alternating rounds
  on the same seeds. On CUDA it fails unless every image is identical to the eager one, the graph was replayed, no
  replay was refused as inexact, and the graphed prompt is not slower. On a CPU it checks the pass-through.
"""
from __future__ import annotations

import asyncio
import json
import statistics

import numpy as np

from devtools.preview_client import run_prompt_collecting_previews
from bench.run_benchmark import ServerClient, node_id, with_seed, workflow_prompt


def _median(values):
    return round(statistics.median(values), 2) if values else None


def _live_prompt(prompt):
    p = json.loads(json.dumps(prompt))
    save = node_id(p, "SaveImage")
    p[save] = {"class_type": "InstaFlowLivePreview", "inputs": {"images": p[save]["inputs"]["images"], "format": "jpeg",
                                                                  "quality": 90}}
    return p


def live_output(check) -> dict:
    p, rows = check.profile, []
    for batch in p["batches"]:
        base = workflow_prompt(check.object_info(), check.models["instaflow"].name, p["size"], batch)
        live, save = _live_prompt(base), node_id(base, "SaveImage")
        client = ServerClient(check.server.url)
        times = {"live_bytes": [], "live_done": [], "save_pngs": [], "jpeg_bytes": []}
        for i in range(p["warmup"] + p["runs"]):
            seed = 7000 + 10 * batch + 2 * i
            run = asyncio.run(run_prompt_collecting_previews(check.server.url, with_seed(live, seed)))
            if run.error is not None or len(run.frames["queuer"]) != 1 or run.frames["bystander"]:
                raise AssertionError(f"batch {batch}: expected one preview frame for the queuing client only, got "
                                     f"{len(run.frames['queuer'])} (+{len(run.frames['bystander'])} to a bystander), error {run.error}")
            e2e, _ = asyncio.run(client.run_all([with_seed(base, seed + 1)], save, batch))[0]
            if i >= p["warmup"]:
                frame = run.frames["queuer"][0]
                times["live_bytes"].append(frame.received_s * 1000)
                times["live_done"].append(run.done_s * 1000)
                times["save_pngs"].append(e2e)
                times["jpeg_bytes"].append(len(frame.image))
        m = {k: _median(v) for k, v in times.items()}
        rows.append({"batch": batch, "size": p["size"], "live_post_to_bytes_ms": m["live_bytes"],
                     "live_post_to_done_ms": m["live_done"], "saveimage_post_to_pngs_ms": m["save_pngs"],
                     "ratio_live_vs_saveimage": round(m["live_bytes"] / m["save_pngs"], 3), "jpeg_bytes": m["jpeg_bytes"]})
        check.report.data["phases"]["live_output"] = {"rows": rows}
        check.report.write()
    encoders = sorted({line.split("encoding with ", 1)[1].strip() for line in check.server.log_text().splitlines()
                       if "InstaFlow Live Preview: encoding with" in line})
    return {"rows": rows, "encoders": encoders}


def _with_cuda_graph(prompt):
    p = json.loads(json.dumps(prompt))
    sampler = node_id(p, "InstaFlowSampler")
    new = str(max(int(k) for k in p) + 1)
    p[new] = {"class_type": "InstaFlowCudaGraph", "inputs": {"model": p[sampler]["inputs"]["model"]}}
    p[sampler]["inputs"]["model"] = [new, 0]
    return p


def cuda_graph_node(check) -> dict:
    from bench.device.device_check import decode_pngs  # noqa: PLC0415 - device_check imports this module

    p, rows, failures = check.profile, [], []
    for batch in p["option_batches"]:
        base = workflow_prompt(check.object_info(), check.models["instaflow"].name, p["size"], batch)
        graphed, save = _with_cuda_graph(base), node_id(base, "SaveImage")
        plain, fast = ServerClient(check.server.url), ServerClient(check.server.url)
        times, identical = {"eager": [], "graph": []}, True
        for i in range(p["option_warmup"] + p["option_runs"]):
            seed = 9000 + 100 * batch + i  # new each round: neither graph has run it, so both sample
            g_ms, _ = asyncio.run(fast.run_all([with_seed(graphed, seed)], save, batch))[0]
            e_ms, _ = asyncio.run(plain.run_all([with_seed(base, seed)], save, batch))[0]
            identical &= bool(np.array_equal(decode_pngs(fast.last_images), decode_pngs(plain.last_images)))
            if i >= p["option_warmup"]:
                times["graph"].append(g_ms)
                times["eager"].append(e_ms)
        state = check.server.get_json("/instaflow_bench/cuda_graph_state")
        row = {"batch": batch, "eager_ms": _median(times["eager"]), "graph_ms": _median(times["graph"]),
               "speedup": round(_median(times["eager"]) / _median(times["graph"]), 3), "images_identical": identical,
               "cache": state}
        rows.append(row)
        if not identical:
            failures.append(f"batch {batch}: an image with the CUDA graph differs from the eager one")
        if check.cuda:
            if not state.get("replays"):
                failures.append(f"batch {batch}: no graph replay ({state.get('eager_reasons')})")
            if any("differs" in why for why in state.get("eager_reasons", [])):
                failures.append(f"batch {batch}: a replay was not bit-identical: {state['eager_reasons']}")
            if row["graph_ms"] > row["eager_ms"]:
                failures.append(f"batch {batch}: the graphed prompt is slower ({row['graph_ms']} vs {row['eager_ms']} ms)")
        check.report.data["phases"]["cuda_graph_node"] = {"rows": rows}
        check.report.write()
    passed_through = "InstaFlow CUDA Graph: the model runs on cpu" in check.server.log_text()
    if not check.cuda and not passed_through:
        failures.append("on the CPU the node did not log its pass-through")
    if failures:
        raise AssertionError("; ".join(failures))
    return {"rows": rows, "cpu_pass_through_logged": passed_through}
