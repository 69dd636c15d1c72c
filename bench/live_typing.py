"""Live mode as a user feels it: keystroke-to-image latency and updates per second while typing a prompt.

    source scripts/paths.sh && "$INSTAFLOW_PYTHON" -m bench.live_typing [--size 64 --rounds 2 --vue-nodes]

Drives the real frontend in Chromium (devtools/browser.py) on a ComfyUI server with this pack: the live
template (example_workflows/instaflow_live.json) on the reduced SD1.5 stand-in, its latent at --size, Live mode on,
and PROMPT typed over the prompt box one key at a time at a human pace (HUMAN_MS per key) and a fast one (FAST_MS).
The same graph ends in each output node in turn: Live Preview (fast), stock SaveImage, stock PreviewImage, and Live
Preview (fast) again with Live mode's interrupt at a pause turned off (the baseline for it); rounds alternate between
them (one server, one page).

Per key: latency = from its keydown to the first image drawn on the output node whose prompt includes that key (the
key's own prompt, or the next one queued after it when the key came while a prompt ran). Key times come from this script's
keydown listener; which prompt each image belongs to and when it was drawn, from Live mode's records (queued prompt
id, the frame its image was first shown on the node) and the prompt's text from /history. Updates per second =
images drawn from the first key to the last image, over that time. Last key -> final text's image: the issue's
CPU target (within 1 s), per round.

Then where one key's time goes, on Live Preview (fast): single keys typed after a pause (key -> queued -> started ->
shown, and the run by the server's clock), and the same prompt posted by this script with the page open and then
closed (what drawing the run's progress and image in the page costs the run on a shared CPU).
"""
from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

from devtools.browser import VIEWPORT, ComfyPage, launch_chromium
from devtools.live_mode import (
    INTERRUPT_SETTING, LIVE_SETTING, executed_prompts, linked_live_template_models, open_live_template, prompt_box,
    set_setting, type_prompt, use_renderer, wait_until_settled, watch, watched,
)
from devtools.pack_identity import PACK_NAME
from devtools.server import ComfyServer

REPO = Path(__file__).resolve().parent.parent

PROMPT = "a red fox leaping over a frozen lake, dawn"
HUMAN_MS = 175  # per key: about 70 words a minute
FAST_MS = 40  # per key: a fast typist's burst
# label: (output node, Live mode's interrupt at a pause); the second row is the baseline for the interrupt
OUTPUTS = {"Live Preview (fast)": ("InstaFlowLivePreview", True),
           "Live Preview (fast), no interrupt at a pause": ("InstaFlowLivePreview", False),
           "SaveImage": ("SaveImage", True), "PreviewImage": ("PreviewImage", True)}
ONE_KEYS = 6  # single keys after a pause, for the breakdown of one key's time
DIRECT_RUNS = 6  # the same prompt posted by the script, with the page open, then with it closed


def use_output(page, ids: dict, node_type: str) -> int:
    """Put `node_type` where the template's output node is (fed by VAE Decode); returns its id."""
    return page.evaluate("""([decodeId, type]) => {
        const graph = app.graph, decode = graph.getNodeById(decodeId);
        for (const n of [...graph.nodes]) if (['InstaFlowLivePreview', 'SaveImage', 'PreviewImage'].includes(n.type)) graph.remove(n);
        const out = LiteGraph.createNode(type);
        out.pos = [decode.pos[0] + 260, decode.pos[1] - 280];
        graph.add(out);
        decode.connect(0, out, 0);
        return out.id; }""", [ids["VAEDecode"], node_type])


def session(page, server, ids: dict, output_id: int, delay_ms: float) -> dict:
    """Live on, PROMPT typed at delay_ms per key; per-key latencies and updates per second."""
    watch(page, output_id)
    set_setting(page, LIVE_SETTING, True)
    page.page.wait_for_function("() => window.__liveWatch.images.length >= 1", timeout=60_000)
    wait_until_settled(page, server)
    start_records = len(page.evaluate("() => InstaFlowLive.state().records"))
    before = {p["id"] for p in executed_prompts(server)}
    watch(page, output_id)
    type_prompt(page, ids["CLIPTextEncode"], PROMPT, delay_ms)
    wait_until_settled(page, server, timeout_s=300)
    set_setting(page, LIVE_SETTING, False)
    keys = watched(page)["keys"][1:]  # the first keydown is the Ctrl+A before the text (Control's own keydown)
    keys = keys[-len(PROMPT):]
    records = page.evaluate("() => InstaFlowLive.state().records")[start_records:]
    prompts = executed_prompts(server, before)
    texts = {p["id"]: p["text"] for p in prompts}
    shown = sorted((r["shownAt"], texts.get(r["promptId"])) for r in records if r["shownAt"] is not None)
    latencies = []
    for i, key_t in enumerate(keys):
        typed = PROMPT[:i + 1]
        first = next((t for t, text in shown if t >= key_t and text is not None and len(text) > i
                      and PROMPT.startswith(text) and text.startswith(typed)), None)
        if first is not None:
            latencies.append(first - key_t)
    images = [t for t, _ in shown if t >= keys[0]]
    span_s = (images[-1] - keys[0]) / 1000 if images else float("nan")
    final = next((t for t, text in shown if text == PROMPT), None)
    return {"latencies": latencies, "keys": len(keys), "images": len(images), "span_s": span_s,
            "queued": len(records), "ran": len(texts), "final_ok": bool(shown) and shown[-1][1] == PROMPT,
            "interrupted": sum(p["status"] == "interrupted" for p in prompts),
            "last_key_to_final_ms": final - keys[-1] if final is not None else float("nan")}


def one_key(page, server, ids: dict, output_id: int, keys: int) -> list[dict]:
    """Live on and the page quiet, then one key at a time, each after the last one's image: where its time goes
    (ms, page clock): key -> queued (the debounce, building the prompt, POST /prompt), queued -> started (the
    server's execution_start reaching the page), started -> shown (the run, the image's way to the page, its drawing),
    and the run by the server's clock."""
    set_setting(page, LIVE_SETTING, True)
    wait_until_settled(page, server)
    rows = []
    for i in range(keys):
        box = prompt_box(page, ids["CLIPTextEncode"])
        box.click()
        page.page.keyboard.press("End")
        watch(page, output_id)
        before = {p["id"] for p in executed_prompts(server)}
        page.page.keyboard.type("abcdefghij"[i % 10])
        page.page.wait_for_function("() => window.__liveWatch.images.length >= 1", timeout=60_000)
        key_t, shown_t = watched(page)["keys"][-1], watched(page)["images"][0]["t"]
        record = page.evaluate("() => InstaFlowLive.state().records.at(-1)")
        wait_until_settled(page, server)
        (ran,) = executed_prompts(server, before)
        rows.append({"key -> image": shown_t - key_t, "key -> queued": record["queuedAt"] - key_t,
                     "queued -> started": record["startedAt"] - record["queuedAt"],
                     "started -> shown": record["shownAt"] - record["startedAt"], "server run": ran["run_ms"]})
    set_setting(page, LIVE_SETTING, False)
    wait_until_settled(page, server)
    return rows


def direct_runs(server, count: int) -> list[float]:
    """The last prompt Live mode ran, posted again by this script with a new text each time: the server's run (ms)."""
    last = list(server.get_json("/history").values())[-1]["prompt"][2]
    runs = []
    for i in range(count):
        prompt = json.loads(json.dumps(last))
        for node in prompt.values():
            if node["class_type"] == "CLIPTextEncode":
                node["inputs"]["text"] = f"{PROMPT}, take {i} at {time.time()}"
        before = {p["id"] for p in executed_prompts(server)}
        server.wait(server.queue(prompt))
        (ran,) = executed_prompts(server, before)
        runs.append(ran["run_ms"])
    return runs


def percentile(values: list[float], q: float) -> float:
    values = sorted(values)
    if not values:
        return float("nan")
    k = (len(values) - 1) * q
    lo, hi = int(k), min(int(k) + 1, len(values) - 1)
    return values[lo] + (values[hi] - values[lo]) * (k - lo)


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--size", type=int, default=64)
    p.add_argument("--rounds", type=int, default=2)
    p.add_argument("--vue-nodes", action="store_true", help='the "Nodes 2.0" renderer instead of the classic canvas')
    args = p.parse_args()
    from playwright.sync_api import sync_playwright

    from devtools.reduced_sd15 import ensure_reduced_instaflow
    from devtools.scratch_models import ScratchModels

    model = ensure_reduced_instaflow()
    paces = {f"human ({HUMAN_MS} ms/key)": HUMAN_MS, f"fast ({FAST_MS} ms/key)": FAST_MS}
    results = {(o, pace): [] for o in OUTPUTS for pace in paces}
    with tempfile.TemporaryDirectory(prefix="instaflow-live-typing-") as work:
        scratch = ScratchModels.create(Path(work) / "scratch")
        with linked_live_template_models(scratch, model), \
                ComfyServer([model.models_root, scratch.models_root], [(PACK_NAME, REPO)], Path(work) / "server") as server, \
                sync_playwright() as playwright:
            browser = launch_chromium(playwright)
            context = browser.new_context(viewport=VIEWPORT)
            page = ComfyPage(context.new_page(), server.url, Path(work), "bench").open()
            page.close_dialogs()
            use_renderer(page, args.vue_nodes)
            ids = open_live_template(page, args.size)
            for round_no in range(args.rounds):
                for label, (node_type, interrupt) in OUTPUTS.items():
                    set_setting(page, INTERRUPT_SETTING, interrupt)
                    output_id = use_output(page, ids, node_type)
                    for pace, delay in paces.items():
                        r = session(page, server, ids, output_id, delay)
                        results[(label, pace)].append(r)
                        print(f"round {round_no + 1} {label:20s} {pace:22s} images {r['images']:3d} "
                              f"p50 {percentile(r['latencies'], 0.5):6.0f} ms  final text shown: {r['final_ok']}", flush=True)
            set_setting(page, INTERRUPT_SETTING, True)
            output_id = use_output(page, ids, OUTPUTS["Live Preview (fast)"][0])
            keys = one_key(page, server, ids, output_id, ONE_KEYS)
            with_page = direct_runs(server, DIRECT_RUNS)
            page.page.goto("about:blank")  # the frontend gone: nothing draws the run's progress and image
            without_page = direct_runs(server, DIRECT_RUNS)
            browser.close()
    print(f"\nLive mode while typing {len(PROMPT)} keys, {args.size}x{args.size}, one step, reduced SD1.5 stand-in, "
          f"{'Nodes 2.0' if args.vue_nodes else 'classic canvas'}, {args.rounds} round(s) pooled:\n")
    print("| output node | typing pace | keystroke -> image p50 ms | p95 ms | updates / s | prompts queued | prompts run "
          "| interrupted at a pause | images shown | final text shown | last key -> final text's image, ms each round |")
    print("|" + "---|" * 11)
    for (label, pace), runs in results.items():
        lat = [x for r in runs for x in r["latencies"]]
        images, span = sum(r["images"] for r in runs), sum(r["span_s"] for r in runs)
        finals = ", ".join(f"{r['last_key_to_final_ms']:.0f}" for r in runs)
        print(f"| {label} | {pace} | {percentile(lat, 0.5):.0f} | {percentile(lat, 0.95):.0f} | {images / span:.1f} "
              f"| {statistics.mean(r['queued'] for r in runs):.1f} | {statistics.mean(r['ran'] for r in runs):.1f} "
              f"| {statistics.mean(r['interrupted'] for r in runs):.1f} | {statistics.mean(r['images'] for r in runs):.1f} | {sum(r['final_ok'] for r in runs)}/{len(runs)} "
              f"| {finals} |")
    print(f"\nOne key after a pause (Live Preview (fast), {ONE_KEYS} keys; medians, min-max; ms):\n")
    print("| " + " | ".join(keys[0]) + " |")
    print("|" + "---|" * len(keys[0]))
    print("| " + " | ".join(f"{statistics.median(k[c] for k in keys):.0f} ({min(k[c] for k in keys):.0f}-"
                            f"{max(k[c] for k in keys):.0f})" for c in keys[0]) + " |")
    print(f"\nThe same prompt posted by this script, a new text each time ({DIRECT_RUNS} runs; server's run, ms): "
          f"page open {statistics.median(with_page):.0f} ({min(with_page):.0f}-{max(with_page):.0f}), "
          f"page closed {statistics.median(without_page):.0f} ({min(without_page):.0f}-{max(without_page):.0f})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
