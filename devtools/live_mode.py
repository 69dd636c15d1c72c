"""Live mode (web/instaflow_live.js) driven in the real frontend: the live template on the reduced SD1.5 stand-in,
a prompt typed key by key, and what the page and the server saw. Shared by tests/test_live_mode.py and
bench/live_typing.py.

What is recorded where:
- in the page, by this module's own script (not the extension's): each key's time (keydown, performance.now())
  and each change of the image the output node shows (classic canvas: the node's `imgs`; "Nodes 2.0": the <img>
  in the node's DOM element), with its time;
- on the server: GET /queue sampled every 20 ms from a thread here while typing (the prompts waiting), and
  /history (which prompts ran, with which text).
"""
from __future__ import annotations

import contextlib
import json
import os
import threading
import time
from pathlib import Path

from devtools.pack_identity import PACK_NAME
from devtools.template_models import StandIns, declared_models

REPO_ROOT = Path(__file__).resolve().parents[1]
LIVE_TEMPLATE = "instaflow_live"
LIVE_SETTING = "InstaFlow.Live.Enabled"
INTERRUPT_SETTING = "InstaFlow.Live.InterruptAtPause"
LIVE_COMMAND = "InstaFlow.Live.Toggle"
VUE_NODES_SETTING = "Comfy.VueNodes.Enabled"


def live_template() -> dict:
    return json.loads((REPO_ROOT / "example_workflows" / f"{LIVE_TEMPLATE}.json").read_text(encoding="utf-8"))


@contextlib.contextmanager
def linked_live_template_models(scratch, reduced_instaflow):
    """The live template's declared files (InstaFlow-0.9B's split files) as links to the reduced SD1.5 stand-in."""
    stand_ins = StandIns(reduced_instaflow, None, None, None, None, None, [])
    links = []
    try:
        for entry in declared_models(live_template()):
            link = scratch.path(entry["directory"], entry["name"])
            if link.is_symlink() or link.exists():
                link.unlink()
            links.append(scratch.symlink(entry["directory"], entry["name"], Path(stand_ins.source(entry["name"])).resolve()))
        yield links
    finally:
        for link in links:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(link)


def node_ids(page) -> dict:
    return page.evaluate("() => Object.fromEntries(app.graph.nodes.map(n => [n.type, n.id]))")


def set_setting(page, setting: str, value) -> None:
    page.evaluate("async ([id, v]) => await app.extensionManager.setting.set(id, v)", [setting, value])


def setting(page, setting_id: str):
    return page.evaluate("(id) => app.extensionManager.setting.get(id)", setting_id)


def use_renderer(page, vue_nodes: bool) -> None:
    """Classic canvas or "Nodes 2.0" (the Vue node renderer), as test_browser.py's nodes_2_0 fixture switches it."""
    set_setting(page, VUE_NODES_SETTING, vue_nodes)
    page.page.wait_for_function("(on) => !!LiteGraph.vueNodesMode === on", arg=vue_nodes)
    page.page.wait_for_timeout(300)


def open_live_template(page, size: int) -> dict:
    """The template as its card opens it (fetched from the server, app.loadGraphData with openSource "template"),
    its latent set to `size`; returns {node type: id}."""
    page.evaluate("""async ([pack, name]) => {
        const workflow = await (await fetch(`/api/workflow_templates/${pack}/${name}.json`)).json();
        await app.loadGraphData(workflow, true, true, name, {openSource: "template"}); }""", [PACK_NAME, LIVE_TEMPLATE])
    types = sorted(n["type"] for n in live_template()["nodes"])
    page.page.wait_for_function(
        "(types) => JSON.stringify(app.graph.nodes.map(n => n.type).sort()) === JSON.stringify(types)", arg=types)
    page.set_widgets("EmptyLatentImage", width=size, height=size)
    show_prompt_and_output(page)
    ids = node_ids(page)
    if page.evaluate("() => !!LiteGraph.vueNodesMode"):
        page.page.locator(f'[data-node-id="{ids["CLIPTextEncode"]}"] textarea').wait_for()
    return ids


def show_prompt_and_output(page) -> None:
    """Zoom 1, the prompt node at the top left of the canvas, the output node beside it: both drawn in full (the
    classic canvas hides DOM widgets and node images when zoomed out, as "fit view" does in a small window)."""
    page.evaluate("""() => { const prompt = app.graph.nodes.find(n => n.type === 'CLIPTextEncode');
        app.canvas.ds.scale = 1; app.canvas.ds.offset = [20 - prompt.pos[0], 60 - prompt.pos[1]];
        app.canvas.setDirty(true, true); }""")
    page.page.wait_for_timeout(300)


def prompt_box(page, node_id: int):
    """The prompt's textarea on the page, in either renderer."""
    if page.evaluate("() => !!LiteGraph.vueNodesMode"):
        return page.page.locator(f'[data-node-id="{node_id}"] textarea').first
    handle = page.page.evaluate_handle(
        "(id) => app.graph.getNodeById(id).widgets.find(w => w.name === 'text').element", node_id)
    return handle.as_element()


# The page-side recorder: keys and the output node's shown image, each with performance.now().
_WATCH = """(nodeId) => {
    const loaded = (img) => img && img.complete && img.naturalWidth > 0;
    const shown = () => {
        const node = app.graph.getNodeById(nodeId);
        if (LiteGraph.vueNodesMode) {
            const imgs = [...document.querySelectorAll(`[data-node-id="${nodeId}"] img`)].filter(loaded);
            return imgs.length ? imgs[imgs.length - 1].src : null;
        }
        const img = node?.imgs?.[0];
        return loaded(img) ? img.src : null;
    };
    window.__liveWatch?.stop();
    const watch = {keys: [], images: [], running: true, stop() { this.running = false; }};
    watch.onKey = (e) => watch.keys.push(performance.now());
    document.addEventListener('keydown', watch.onKey, true);
    let last = shown();
    const frame = () => {
        if (!watch.running) { document.removeEventListener('keydown', watch.onKey, true); return; }
        const now = shown();
        if (now && now !== last) watch.images.push({t: performance.now(), src: now});
        last = now;
        requestAnimationFrame(frame);
    };
    requestAnimationFrame(frame);
    window.__liveWatch = watch;
}"""


def watch(page, output_node_id: int) -> None:
    page.evaluate(_WATCH, output_node_id)


def watched(page) -> dict:
    """{keys: [ms], images: [{t, src}]} since watch()."""
    return page.evaluate("() => ({keys: window.__liveWatch.keys, images: window.__liveWatch.images})")


def page_now(page) -> float:
    return page.evaluate("() => performance.now()")


class QueueSampler:
    """Samples the server's waiting prompts (GET /queue: queue_pending) every `period_s` from a thread."""

    def __init__(self, server, period_s: float = 0.02):
        self.server, self.period_s = server, period_s
        self.samples: list[int] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self):
        while not self._stop.is_set():
            self.samples.append(len(self.server.get_json("/queue")["queue_pending"]))
            self._stop.wait(self.period_s)

    def __enter__(self):
        self._thread.start()
        return self

    def __exit__(self, *exc):
        self._stop.set()
        self._thread.join()


def wait_until_idle(server, timeout_s: float = 60) -> None:
    """Until nothing runs or waits on the server."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        queue = server.get_json("/queue")
        if not queue["queue_running"] and not queue["queue_pending"]:
            return
        time.sleep(0.05)
    raise AssertionError(f"the server is still busy after {timeout_s} s: {server.get_json('/queue')}")


def wait_until_settled(page, server, timeout_s: float = 60) -> None:
    """Until Live mode has nothing pending (it holds the next prompt in the page while one runs, so the server is
    briefly idle between two of its prompts), the server is idle, and the last image had time to be drawn."""
    page.page.wait_for_function("() => !InstaFlowLive.state().pending", timeout=timeout_s * 1000)
    wait_until_idle(server, timeout_s)
    page.page.wait_for_function("() => !InstaFlowLive.state().pending", timeout=timeout_s * 1000)
    page.page.wait_for_timeout(500)


def executed_prompts(server, since: set | None = None) -> list[dict]:
    """Prompts in /history (not in `since`), in queue order: {id, number, text (the CLIPTextEncode's), status
    (success, error or interrupted), run_ms (execution_start to execution_success, by the server's clock)}."""
    history = server.get_json("/history")
    out = []
    for prompt_id, item in history.items():
        if since is not None and prompt_id in since:
            continue
        number, _, api_prompt = item["prompt"][:3]
        texts = [n["inputs"]["text"] for n in api_prompt.values() if n["class_type"] == "CLIPTextEncode"]
        stamps = {event: data.get("timestamp") for event, data in item.get("status", {}).get("messages", [])}
        run_ms = (stamps["execution_success"] - stamps["execution_start"]
                  if {"execution_start", "execution_success"} <= stamps.keys() else None)
        status = item.get("status", {}).get("status_str")
        if "execution_interrupted" in stamps:  # ComfyUI files an interrupted prompt as an error
            status = "interrupted"
        out.append({"id": prompt_id, "number": number, "text": texts[0] if texts else None, "status": status,
                    "run_ms": run_ms})
    return sorted(out, key=lambda p: p["number"])


def type_prompt(page, node_id: int, text: str, delay_ms: float) -> None:
    """Click the prompt box, select its text, and type `text` over it, one key every `delay_ms`."""
    box = prompt_box(page, node_id)
    box.click()
    page.page.keyboard.press("Control+A")
    page.page.keyboard.type(text, delay=delay_ms)
