"""Live mode (web/instaflow_live.js) in the real frontend: the live template on the reduced SD1.5 stand-in at 64x64,
a 42-key prompt typed key by key into its text box at 100 ms per key, on the classic canvas and on "Nodes 2.0".

Marked `browser`. One browser page serves the module (the renderer is switched in place); the typing happens once
per renderer (the `typed` fixture) and several tests read what it recorded (devtools/live_mode.py: keys and images
with their page times, the server's waiting prompts sampled every 20 ms, the prompts it ran).
"""
from __future__ import annotations

import math
import re
import time

import pytest

from devtools.browser import ComfyPage, screenshot_dir
from devtools.live_mode import (
    INTERRUPT_SETTING, LIVE_COMMAND, LIVE_SETTING, QueueSampler, executed_prompts, linked_live_template_models,
    open_live_template, page_now, prompt_box, set_setting, setting, type_prompt, use_renderer, wait_until_idle,
    wait_until_settled, watch, watched,
)
from devtools.measurements import record

pytestmark = pytest.mark.browser

SIZE = 64
TEXT = "a red fox leaping over a frozen lake, dawn"  # 42 keys
KEY_DELAY_MS = 100  # a fast typist (about 120 words a minute); bench/live_typing.py also times a 40 ms burst
SLACK_MS = 400  # debounce (60 ms), the page's turn from a prompt's end to the next POST, the image drawn
MINIMAP = "Comfy.Minimap.Visible"
STATUS_CHIP = '[data-testid="instaflow-live-status"]'
LIVE_OFF_TOAST = "Live mode is off"
SMALL_VIEWPORT = {"width": 1280, "height": 800}  # less to draw in software on a 2-core machine; fit view keeps the graph in it
NOT_LOOPBACK = re.compile(r"^https?://(?!(127\.0\.0\.1|localhost)[:/])")


@pytest.fixture(scope="module")
def page(browser, comfy_server, scratch_models, reduced_instaflow, tmp_path_factory):
    """One page for the module, the template's model files in place before it opens (the loaders list them)."""
    shots = screenshot_dir(tmp_path_factory)
    record("live mode screenshots", str(shots))
    with linked_live_template_models(scratch_models, reduced_instaflow):
        context = browser.new_context(viewport=SMALL_VIEWPORT)
        context.route(NOT_LOOPBACK, lambda route: route.abort())
        page = ComfyPage(context.new_page(), comfy_server.url, shots, "live").open()
        page.close_dialogs()
        minimap = setting(page, MINIMAP)
        set_setting(page, MINIMAP, False)  # one canvas less to redraw in software while typing
        count_execution_errors(page)
        page.errors.clear()  # what the frontend logs while it loads (404s of optional endpoints) is not Live mode's
        yield page
        set_setting(page, LIVE_SETTING, False)
        set_setting(page, "Comfy.VueNodes.Enabled", False)  # settings live on the server: leave them as found
        set_setting(page, MINIMAP, minimap)
        errors = console_errors(page)
        context.close()
        wait_until_idle(comfy_server)
    assert not errors, "the browser console had errors:\n" + "\n".join(errors)


def console_errors(page) -> list[str]:
    """Page errors and console errors since the page loaded, but the internet requests this module refuses."""
    return [e for e in page.errors if "net::ERR_FAILED" not in e]


def wait_until_stored(server, setting_id: str, value, timeout_s: float = 10) -> None:
    deadline = time.monotonic() + timeout_s
    while server.get_json("/settings").get(setting_id) != value:
        assert time.monotonic() < deadline, f"{setting_id} was not stored as {value}"
        time.sleep(0.05)


def count_execution_errors(page) -> None:
    page.evaluate("""() => { window.__executionErrors = 0;
        window.comfyAPI.api.api.addEventListener('execution_error', () => window.__executionErrors++); }""")


def live_state(page) -> dict:
    return page.evaluate("() => InstaFlowLive.state()")


def wait_for_images(page, count: int, timeout_ms: int = 30_000) -> None:
    page.page.wait_for_function("(n) => window.__liveWatch.images.length >= n", arg=count, timeout=timeout_ms)


def live_on_with_an_image(page, ids) -> None:
    """Live on (it queues the graph at once) and its image shown."""
    watch(page, ids["InstaFlowLivePreview"])
    set_setting(page, LIVE_SETTING, True)
    wait_for_images(page, 1)


def close_error_reports(page) -> None:
    """The frontend's own report of a failed prompt: a dialog, or (1.48+) an overlay."""
    for _ in range(3):
        dialog = page.page.get_by_role("dialog")
        if dialog.count():
            page.page.keyboard.press("Escape")
            dialog.first.wait_for(state="detached", timeout=5_000)
    page.close_toasts()  # "Live mode is off" covers the overlay's dismiss button
    page.close_missing_models()  # closes the error overlay and the side panel it opened


# ------------------------------------------------------------------------------ off by default, a setting


def test_live_mode_is_off_by_default_and_stays_on_across_a_reload(page, comfy_server):
    assert LIVE_SETTING not in comfy_server.get_json("/settings")  # nothing stored yet: the default applies
    assert setting(page, LIVE_SETTING) is False and not live_state(page)["enabled"]
    assert setting(page, INTERRUPT_SETTING) is False  # its interrupt at a pause too
    assert not page.page.locator(STATUS_CHIP).is_visible()
    open_live_template(page, SIZE)  # a graph that runs: one the server refuses would turn Live mode off again
    page.evaluate("(id) => app.extensionManager.command.execute(id)", LIVE_COMMAND)
    page.page.locator(STATUS_CHIP).wait_for()
    wait_until_stored(comfy_server, LIVE_SETTING, True)
    page.page.reload()
    page.page.wait_for_function("() => !!(window.InstaFlowLive && app.graph && app.extensionManager)", timeout=90_000)
    page.errors.clear()  # the frontend's own loading noise again
    count_execution_errors(page)
    assert setting(page, LIVE_SETTING) is True and live_state(page)["enabled"]
    page.page.locator(STATUS_CHIP).wait_for()
    page.shot("on-after-reload")
    page.evaluate("(id) => app.extensionManager.command.execute(id)", LIVE_COMMAND)
    page.page.locator(STATUS_CHIP).wait_for(state="hidden")
    assert setting(page, LIVE_SETTING) is False
    wait_until_idle(comfy_server)


def test_live_has_a_button_beside_run_where_the_frontend_has_an_action_bar(page):
    bar = page.page.locator('[data-testid="action-bar-buttons"]')
    if not bar.count():
        pytest.skip("this frontend has no action bar for extensions (the command is in Edit > InstaFlow)")
    bar.get_by_role("button", name=re.compile("Live mode")).click()
    page.page.locator(STATUS_CHIP).wait_for()
    assert setting(page, LIVE_SETTING) is True
    bar.get_by_role("button", name=re.compile("Live mode")).click()
    page.page.locator(STATUS_CHIP).wait_for(state="hidden")
    assert setting(page, LIVE_SETTING) is False


# ------------------------------------------------------------------------------ typing, on both renderers


@pytest.fixture(scope="module", params=["classic", "nodes_2_0"])
def live_graph(request, page, comfy_server):
    """The live template open in the renderer, Live off; {node type: id}."""
    set_setting(page, LIVE_SETTING, False)
    use_renderer(page, request.param == "nodes_2_0")
    ids = open_live_template(page, SIZE)
    wait_until_idle(comfy_server)
    yield ids
    set_setting(page, LIVE_SETTING, False)
    wait_until_idle(comfy_server)


@pytest.fixture(scope="module")
def typed(page, live_graph, comfy_server):
    """Live on, TEXT typed over the prompt one key every KEY_DELAY_MS, until the server is idle and the page quiet."""
    before = {p["id"] for p in executed_prompts(comfy_server)}
    live_on_with_an_image(page, live_graph)
    type_prompt(page, live_graph["CLIPTextEncode"], "warm up", KEY_DELAY_MS)  # the first new text pays one-off costs
    wait_until_settled(page, comfy_server)
    before = {p["id"] for p in executed_prompts(comfy_server)}
    watch(page, live_graph["InstaFlowLivePreview"])
    with QueueSampler(comfy_server, period_s=0.05) as queue:
        type_prompt(page, live_graph["CLIPTextEncode"], TEXT, KEY_DELAY_MS)
        wait_until_settled(page, comfy_server)
    page.shot(f"typed-{'vue' if page.evaluate('() => !!LiteGraph.vueNodesMode') else 'classic'}")
    return {"prompts": executed_prompts(comfy_server, before), "queue": queue.samples, "page": watched(page),
            "live": live_state(page), "now": page_now(page)}


def test_typing_runs_prompts_while_typing_and_the_last_one_ran_the_final_text(typed):
    ran = [p for p in typed["prompts"] if p["status"] == "success"]
    record("live: prompts run while typing (server ms each)", [p["run_ms"] for p in ran])
    assert ran[-1]["text"] == TEXT
    assert [p for p in ran[:-1] if TEXT.startswith(p["text"])], "no prompt ran while typing"
    assert not [p for p in typed["prompts"] if p["status"] not in ("success", "interrupted")]


def test_only_prompts_of_an_older_text_are_interrupted_and_only_by_live_mode(typed):
    """Live mode interrupts its running prompt at a pause in typing when the text has changed since it was queued
    (a key the browser handled late can look like a pause: Playwright waits for each key's handling, so a stall of
    the software-rendered page delays the next key). The final text's prompt is never interrupted."""
    records = {r["promptId"]: r for r in typed["live"]["records"]}
    interrupted = [p for p in typed["prompts"] if p["status"] == "interrupted"]
    assert all(records[p["id"]]["interruptAsked"] is not None for p in interrupted), interrupted
    assert all(p["text"] != TEXT for p in interrupted)


def test_images_follow_the_typing_and_the_last_one_is_the_final_texts(typed):
    images, keys = typed["page"]["images"], typed["page"]["keys"]
    assert len([i for i in images if i["t"] > keys[0]]) >= 2  # one while typing at least, then the final text's
    assert images[-1]["t"] > keys[-1]
    shown = [r for r in typed["live"]["records"] if r["state"] == "shown"]
    assert shown[-1]["promptId"] == [p for p in typed["prompts"] if p["status"] == "success"][-1]["id"]


def test_final_texts_image_waits_for_at_most_the_running_prompt_and_its_own_run(typed):
    """The image of the final text comes after at most two prompt runs (the one running at the last key, then its
    own) and the debounce and round trips (SLACK_MS): nothing queued in between. The time itself is recorded, not
    asserted against the 1 s target: on a shared 2-core CPU it depends on what else runs (docs/performance.md)."""
    last_key, last_image = typed["page"]["keys"][-1], typed["page"]["images"][-1]["t"]
    slowest = max(p["run_ms"] for p in typed["prompts"] if p["run_ms"] is not None)
    record("live: last key to its image (ms)", round(last_image - last_key))
    assert last_image - last_key <= 2 * slowest + SLACK_MS


def test_never_more_than_one_prompt_waits_while_typing(typed):
    assert len(typed["queue"]) >= 20  # sampled all along the typing
    assert max(typed["queue"]) <= 1, typed["queue"]


def test_status_chip_shows_live_and_the_last_latency(page, typed):
    chip = page.page.locator(STATUS_CHIP)
    assert chip.is_visible()
    latency = re.fullmatch(r"● Live · (\d+) ms", chip.inner_text())
    # Math.round, not Python's round: it rounds half up, and times like 1110.5 ms occur (seen: 1111 against 1110)
    assert latency and int(latency[1]) == math.floor(typed["live"]["lastLatencyMs"] + 0.5)


BURST = " dusk"


@pytest.fixture
def slow_graph(page, live_graph, comfy_server):
    """Live mode's interrupt at a pause turned on, and the live graph on a 128 px latent, so that a prompt still runs
    when a short burst of keys ends; {full_run_ms}.
    On the classic canvas only: the interrupt at a pause is Live mode's own logic, the same in both renderers (typing
    in each is covered above), and each run of this graph costs seconds of CI's budget."""
    if page.evaluate("() => !!LiteGraph.vueNodesMode"):
        pytest.skip("the interrupt at a pause is tested on the classic canvas (the same logic in both renderers)")
    set_setting(page, INTERRUPT_SETTING, True)
    page.set_widgets("EmptyLatentImage", width=2 * SIZE, height=2 * SIZE)  # itself an edit: Live mode runs it
    wait_until_settled(page, comfy_server)
    yield {"full_run_ms": executed_prompts(comfy_server)[-1]["run_ms"]}
    set_setting(page, INTERRUPT_SETTING, False)  # its default
    page.set_widgets("EmptyLatentImage", width=SIZE, height=SIZE)
    wait_until_settled(page, comfy_server)


def type_a_burst(page, ids, server) -> tuple[list[dict], dict, float, str]:
    """BURST typed at the end of the prompt, 40 ms a key, until settled: (its prompts, Live mode's records by prompt
    id, the last key's page time, the text typed to)."""
    before = {p["id"] for p in executed_prompts(server)}
    final_text = page.widgets(ids["CLIPTextEncode"])["text"] + BURST
    prompt_box(page, ids["CLIPTextEncode"]).click()
    page.page.keyboard.press("End")
    watch(page, ids["InstaFlowLivePreview"])
    page.page.keyboard.type(BURST, delay=40)
    wait_until_settled(page, server)
    records = {r["promptId"]: r for r in live_state(page)["records"]}
    return executed_prompts(server, before), records, watched(page)["keys"][-1], final_text


def test_a_pause_in_typing_interrupts_the_stale_running_prompt_and_queues_the_newest_text(page, live_graph, typed,
                                                                                         slow_graph, comfy_server):
    """Turned on: the prompt running when the burst ends (an older text) is interrupted at the pause, and the
    final text is queued then, not after that prompt's run. A stall of the page mid-burst can look like a pause too
    (Playwright waits for each key's handling) and interrupt an earlier prompt of the burst."""
    prompts, records, _, final_text = type_a_burst(page, live_graph, comfy_server)
    *stale, final = prompts
    assert stale and [p["status"] for p in prompts] == ["interrupted"] * len(stale) + ["success"], \
        (prompts, live_state(page)["lastPause"])
    assert final["text"] == final_text and all(p["text"] != final_text for p in stale)
    assert all(records[p["id"]]["interruptAsked"] is not None for p in stale)
    # queued before the stale prompt could have ended on its own
    assert records[final["id"]]["queuedAt"] < records[stale[-1]["id"]]["startedAt"] + slow_graph["full_run_ms"]
    assert live_state(page)["enabled"] and records[final["id"]]["state"] == "shown"


def test_with_interrupt_at_a_pause_off_the_stale_prompt_runs_to_its_end(page, live_graph, typed, slow_graph,
                                                                       comfy_server):
    set_setting(page, INTERRUPT_SETTING, False)
    prompts, records, _, final_text = type_a_burst(page, live_graph, comfy_server)
    assert len(prompts) >= 2 and all(p["status"] == "success" for p in prompts), prompts
    assert prompts[-1]["text"] == final_text
    assert all(records[p["id"]]["interruptAsked"] is None for p in prompts)


def test_toggling_off_stops_queuing(page, live_graph, typed, comfy_server):
    page.evaluate("(id) => app.extensionManager.command.execute(id)", LIVE_COMMAND)
    page.page.locator(STATUS_CHIP).wait_for(state="hidden")
    before = {p["id"] for p in executed_prompts(comfy_server)}
    type_prompt(page, live_graph["CLIPTextEncode"], "typed while off", KEY_DELAY_MS)
    page.set_widgets("InstaFlowSampler", seed=7)
    time.sleep(1.0)
    assert executed_prompts(comfy_server, before) == []
    assert not comfy_server.get_json("/queue")["queue_pending"]


def test_failing_graph_turns_live_mode_off_with_one_message(page, live_graph, comfy_server):
    live_on_with_an_image(page, live_graph)
    errors_before = page.evaluate("() => window.__executionErrors")
    before = {p["id"] for p in executed_prompts(comfy_server)}
    page.set_widgets("InstaFlowSampler", cfg=2.0)  # no negative prompt: InstaFlow Sampler refuses cfg != 1 when run
    page.page.wait_for_function("() => !InstaFlowLive.state().enabled", timeout=30_000)
    page.toast(LIVE_OFF_TOAST).wait_for()
    time.sleep(1.0)
    wait_until_idle(comfy_server)
    page.shot("failed")
    assert page.toast(LIVE_OFF_TOAST).count() == 1
    assert page.evaluate("() => window.__executionErrors") - errors_before == 1
    assert [p["status"] for p in executed_prompts(comfy_server, before)] == ["error"]
    assert setting(page, LIVE_SETTING) is False
    assert "InstaFlowSampler" in live_state(page)["stoppedBy"]
    close_error_reports(page)  # as a user would, then types on: nothing is queued any more
    type_prompt(page, live_graph["CLIPTextEncode"], "more text after the failure", KEY_DELAY_MS)
    time.sleep(1.0)
    assert [p["status"] for p in executed_prompts(comfy_server, before)] == ["error"]
    page.set_widgets("InstaFlowSampler", cfg=1.0)


def test_no_error_in_the_browser_console(page, live_graph):
    assert not console_errors(page)
