"""Faults and load on a long-running server: interrupts, model files replaced on disk, many prompts.

The load test queues INSTAFLOW_LOAD_PROMPTS prompts back to back (15 by default, for CI; the full
check is INSTAFLOW_LOAD_PROMPTS=200) and compares the server's resident memory (VmRSS) and its live
torch tensors before and after.
"""
from __future__ import annotations

import os
import time

import numpy as np
import pytest

from devtools import robustness_models as rm
from devtools.measurements import record
from devtools.progress_listener import ProgressListener
from devtools.robustness_graphs import instaflow_graph
from devtools.server import PromptFailed
from devtools.server_checks import assert_next_prompt_succeeds, names_a_value_not_offered, rejection

LOAD_PROMPTS = int(os.environ.get("INSTAFLOW_LOAD_PROMPTS", "15"))
RSS_GROWTH_BOUND = 200 * 2**20  # bytes, over the whole run, after warm-up
TENSOR_GROWTH_BOUND = 0  # live tensors: none may accumulate


def sampler_id(api: dict) -> str:
    return next(node_id for node_id, node in api.items() if node["class_type"] == "InstaFlowSampler")


def test_interrupt_stops_a_long_run_within_one_step(comfy_server, reduced_instaflow):
    # Far more than can finish: only the interrupt ends it. Not more: ComfyUI 0.33.0 sends progress only after
    # each 0.5 % of the steps (comfy/utils.py ProgressBar), and the interrupt waits for the second report.
    steps = 2000
    g, _ = instaflow_graph(reduced_instaflow.name, steps=steps, prefix="interrupted")
    api = g.api()
    node = sampler_id(api)
    with ProgressListener(comfy_server) as events:
        prompt_id = comfy_server.queue(api)

        def progress(m):
            return m["type"] == "progress" and m["data"].get("prompt_id") == prompt_id and m["data"]["node"] == node

        events.wait_for(lambda m: progress(m) and m["data"]["value"] >= 2, timeout=300)
        sent = time.monotonic()
        comfy_server.interrupt()
        with pytest.raises(PromptFailed) as stopped:
            comfy_server.wait(prompt_id, timeout=120)
        stopped_message = events.wait_for(lambda m: m["type"] == "execution_interrupted"
                                          and m["data"].get("prompt_id") == prompt_id)
    assert stopped.value.interrupted and stopped.value.node_id == node
    reported = [m for m in events.messages if progress(m)]
    before = [m["data"]["value"] for m in reported if m["received"] <= sent]
    after = [m["data"]["value"] for m in reported if m["received"] > sent]
    step_seconds = ((reported[-1]["received"] - reported[0]["received"])
                    / max(1, reported[-1]["data"]["value"] - reported[0]["data"]["value"]))
    latency = stopped_message["received"] - sent
    record("interrupt", f"sent after step {max(before)} of {steps}; steps reported after it: {len(after)}; "
                        f"stopped {latency:.3f} s later (one step takes {step_seconds:.3f} s)")
    assert len(after) <= 1  # at most the step already under way when the interrupt arrived
    assert latency < 2 * step_seconds + 1.0
    assert_next_prompt_succeeds(comfy_server, reduced_instaflow.name)


def test_model_file_replaced_on_disk_is_reloaded_not_served_stale(comfy_server, reduced_instaflow, robustness_models,
                                                                   scratch_models):
    name = "replace-me.safetensors"
    path = scratch_models.add("instaflow", name, reduced_instaflow.single_file)
    g, save = instaflow_graph(name, prefix="replaced")
    api = g.api()
    loader = next(i for i, n in api.items() if n["class_type"] == "InstaFlowLoader")

    def run():
        entry = comfy_server.wait(comfy_server.queue(api), timeout=300)
        cached = {node for event, data in entry["status"]["messages"] if event == "execution_cached" for node in data["nodes"]}
        return comfy_server.images(entry["outputs"], save.id)[0], loader in cached

    original, _ = run()
    again, cached = run()
    assert cached and np.array_equal(original, again)  # unchanged file: ComfyUI's cache serves the loaded model

    scratch_models.replace("instaflow", name, robustness_models.instaflow(rm.FLIPPED_MODEL))
    replaced, cached = run()
    assert not cached, "the loader was served from the cache although its file was replaced"
    direct_g, direct_save = instaflow_graph(rm.FLIPPED_MODEL, prefix="replaced_direct")
    [direct] = comfy_server.images(comfy_server.run(direct_g.api()), direct_save.id)
    assert np.array_equal(replaced, direct)
    assert np.abs(replaced.astype(int) - original.astype(int)).mean() > 5

    os.remove(path)  # a file deleted while the server runs: the name is no longer offered
    [error] = rejection(comfy_server, api, loader)
    assert names_a_value_not_offered(error, api[loader]["inputs"]["ckpt_name"])
    assert_next_prompt_succeeds(comfy_server, reduced_instaflow.name)


def server_rss(server) -> int:
    with open(f"/proc/{server.proc.pid}/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    raise RuntimeError("no VmRSS")


def live_tensors(server, model_name: str, nonce: int) -> tuple[int, int]:
    g, save = instaflow_graph(model_name, seed=nonce, prefix="load_probe")
    api = g.api()
    api["probe"] = {"class_type": "RobustnessLiveTensors", "inputs": {"images": api[save.id]["inputs"]["images"], "nonce": nonce}}
    out = server.run(api, timeout=300)["probe"]
    return out["tensors"][0], out["storage_bytes"][0]


@pytest.mark.skipif(not os.path.exists("/proc/self/status"), reason="reads VmRSS from /proc")
def test_many_prompts_back_to_back_complete_without_leaking(comfy_server, reduced_instaflow):
    for seed in range(3):  # warm-up: model loaded, caches and allocator pools filled
        live_tensors(comfy_server, reduced_instaflow.name, 10**6 + seed)
    tensors_before, bytes_before = live_tensors(comfy_server, reduced_instaflow.name, 1)
    rss_before = server_rss(comfy_server)

    start = time.monotonic()
    ids = []
    for i in range(LOAD_PROMPTS):
        g, _ = instaflow_graph(reduced_instaflow.name, seed=1000 + i, prefix="load")
        ids.append(comfy_server.queue(g.api()))
    for prompt_id in ids:  # raises PromptFailed on the first error
        comfy_server.wait(prompt_id, timeout=600)
    seconds = time.monotonic() - start

    rss_after = server_rss(comfy_server)
    tensors_after, bytes_after = live_tensors(comfy_server, reduced_instaflow.name, 2)
    record(f"load: {LOAD_PROMPTS} prompts (64x64, 1 step)",
           f"{seconds:.1f} s; server VmRSS {rss_before / 2**20:.0f} MiB -> {rss_after / 2**20:.0f} MiB "
           f"({(rss_after - rss_before) / 2**20:+.0f} MiB); live tensors {tensors_before} -> {tensors_after}, "
           f"storage {bytes_before / 2**20:.1f} -> {bytes_after / 2**20:.1f} MiB")
    assert tensors_after - tensors_before <= TENSOR_GROWTH_BOUND
    assert bytes_after <= bytes_before
    assert rss_after - rss_before <= RSS_GROWTH_BOUND
