"""The pack as a user meets it: the official ComfyUI frontend in Chromium, on the real test server.

Marked `browser` (run alone: bash scripts/test.sh -m browser). Each test opens a fresh browser
context (a first visit), drives the UI where a user would (node search, template browser, Run
button, canvas and top menus, Ctrl+Z) and saves screenshots of each step (folder printed in the
test summary; INSTAFLOW_SCREENSHOT_DIR chooses it).
"""
from __future__ import annotations

import json
import re
from pathlib import Path
from urllib.parse import urlsplit

import pytest

from devtools.browser import VIEWPORT, ComfyPage, screenshot_dir
from devtools.conversion_corpus import cases as corpus_cases, new_node_ids, renumbered
from devtools.template_models import StandIns, declared_models, linked_template_models
from devtools.measurements import record
from devtools.pack_identity import PACK_NAME
from workflow_conversion.convert_api import convert_api_workflow, load_rules

pytestmark = pytest.mark.browser

REPO_ROOT = Path(__file__).resolve().parent.parent
PACK = PACK_NAME
EXAMPLES = sorted((REPO_ROOT / "example_workflows").glob("*.json"))
ONE_STEP = "instaflow_one_step_txt2img"
TEST_SIZE = 64


@pytest.fixture(scope="module")
def shots(tmp_path_factory) -> Path:
    path = screenshot_dir(tmp_path_factory)
    record("browser screenshots", str(path))
    return path


REGISTRY_API_HOST = "api.comfy.org"  # the Comfy Registry API, which the frontend asks for node-pack information
NOT_LOOPBACK = re.compile(r"^https?://(?!(127\.0\.0\.1|localhost)[:/])")


@pytest.fixture
def comfy_page(browser, comfy_server, shots, request):
    context = browser.new_context(viewport=VIEWPORT)
    external = []  # the page may ask the internet for nothing but what a test expects; all of it is refused
    context.route(NOT_LOOPBACK, lambda route: (external.append((route.request.method, route.request.url)), route.abort()))
    page = ComfyPage(context.new_page(), comfy_server.url, shots, request.node.name.removeprefix("test_")[:40])
    page.external_requests = external
    page.open()
    failed_before = request.session.testsfailed
    yield page
    if request.session.testsfailed > failed_before:
        print(f"screenshot at failure: {page.shot('at-failure')}")
    errors = page.extension_errors()
    context.close()
    assert not errors, "the InstaFlow frontend extension logged errors:\n" + "\n".join(errors)


def strip_titles(prompt: dict) -> dict:
    """API prompt without the frontend's per-node "_meta" titles (not part of what runs)."""
    return {k: {"class_type": v["class_type"], "inputs": v["inputs"]} for k, v in prompt.items()}


def open_template_browser(page: ComfyPage):
    dialog = page.page.get_by_role("dialog")
    if not dialog.count():  # a new user's first visit opens it by itself; otherwise the sidebar button does
        page.page.get_by_role("button", name="Templates", exact=True).click()
    dialog.get_by_text(PACK, exact=True).click()  # the pack's entry under EXTENSIONS
    return dialog


def wait_for_template_graph(page: ComfyPage, name: str) -> None:
    """Until the canvas shows the template's nodes. Their types, not only their number: the default graph the
    page opens with has as many nodes as the one-step template, and a test that went on while it still showed
    set its widgets on the default graph (seen once in a whole run)."""
    template = json.loads((REPO_ROOT / "example_workflows" / f"{name}.json").read_text())
    types = sorted(node["type"] for node in template["nodes"])
    page.page.wait_for_function(
        "(types) => JSON.stringify(app.graph.nodes.map(n => n.type).sort()) === JSON.stringify(types)", arg=types)


def load_template(page: ComfyPage, name: str) -> None:
    dialog = open_template_browser(page)
    dialog.get_by_test_id(f"template-workflow-{name}").click()
    wait_for_template_graph(page, name)


def load_sd15_graph(page: ComfyPage, models) -> dict:
    """A user's SD1.5 txt2img graph (tests/graphs/sd15_txt2img.json; ComfyUI's default graph is no SD1.5 graph from
    frontend 1.48 on), on the test checkpoint at 64x64; returns its API prompt."""
    page.close_dialogs()
    page.load_sd15_graph(models.single_file.name, TEST_SIZE)
    page.fit_view()
    return strip_titles(page.api_prompt())


# ------------------------------------------------------------------------------ node library


def test_node_search_finds_every_instaflow_node_and_adds_one_to_the_canvas(comfy_page, comfy_server):
    page = comfy_page
    display_names = sorted(info["display_name"] for info in comfy_server.object_info().values()
                           if info["category"].startswith("InstaFlow"))
    page.close_dialogs()
    page.evaluate("() => app.graph.clear()")
    point = page.open_node_search()
    options = page.page.get_by_role("option")
    texts = []
    for family, example in (("PeRFlow", "PeRFlow Scheduler"), ("InstaFlow", "Model Sampling InstaFlow")):
        page.page.keyboard.press("Control+A")
        page.page.keyboard.type(family)  # each family's nodes carry its name
        options.filter(has_text=example).first.wait_for()
        texts += options.all_inner_texts()
    page.shot("1-search-results")
    missing = [name for name in display_names if not any(name in text for text in texts)]
    assert not missing, f"not offered by the search: {missing}"
    options.filter(has_text="Model Sampling InstaFlow").first.click()
    page.place_picked_node(point)
    page.page.wait_for_function("() => app.graph.nodes.length === 1")
    assert page.node_types() == ["ModelSamplingInstaFlow"]
    page.shot("2-node-added")

    # The node library sidebar: one InstaFlow folder with a subfolder per category, each node in its own.
    page.open_node_library()
    categories = {info["display_name"]: info["category"].split("/")[1] for info in comfy_server.object_info().values()
                  if info["category"].startswith("InstaFlow/")}
    assert sorted(page.library_folder_children("InstaFlow")) == sorted(set(categories.values()))
    for sub in sorted(set(categories.values())):
        shown = page.library_folder_children("InstaFlow", sub)
        assert sorted(shown) == sorted(name for name, c in categories.items() if c == sub), sub
    page.shot("3-node-library")


@pytest.mark.parametrize("node", ["InstaFlowLoader", "PeRFlowDeltaWeights"])
def test_node_info_button_opens_the_nodes_help_page(comfy_page, comfy_server, node):
    """A node added from the search, selected, then Info in the selection toolbox: the pack's help page for it
    (web/docs/<node>.md) opens. Where it opens differs (1.32.9: the node library's help panel; 1.48+: the right side
    panel's Info tab), so it is found by its text. The Info button is the route all three frontends share: the node
    library of 1.48+ (its new design, the default) has no help button."""
    page = comfy_page
    info = comfy_server.object_info(node)[node]
    # A lost double click and a click that leaves the node unselected (both seen on a loaded 2-core machine) are
    # retried by the page helpers (open_node_search, select_node).
    page.close_dialogs()
    page.close_properties_panel()  # the previous case's help page: seen to keep the canvas from its double click
    page.evaluate("() => app.graph.clear()")
    # Typed up to a parenthesis: the search of 1.48+ finds nothing for a whole name with one.
    page.add_node_by_search(info["display_name"].split(" (")[0], info["display_name"])
    page.page.wait_for_function("(type) => app.graph.nodes.length === 1 && app.graph.nodes[0].type === type", arg=node)
    page.select_node(page.node_id(node))
    page.page.get_by_test_id("info-button").click()
    first_line = (REPO_ROOT / "web" / "docs" / f"{node}.md").read_text().splitlines()[0].lstrip("# ")
    page.page.get_by_text("Settings that work").first.wait_for()
    page.page.get_by_text(first_line, exact=True).first.wait_for()
    page.shot(f"help-{node}")
    page.close_properties_panel()


# ------------------------------------------------------------------------------ templates


def test_pack_templates_are_listed_and_load_from_the_template_browser(comfy_page, comfy_server):
    page = comfy_page
    assert sorted(comfy_server.get_json("/api/workflow_templates")[PACK]) == [p.stem for p in EXAMPLES]
    dialog = open_template_browser(page)
    for example in EXAMPLES:
        card = dialog.get_by_test_id(f"template-workflow-{example.stem}")
        card.scroll_into_view_if_needed()
        # Its own picture, not the generic one. The frontend may show it from its media cache (a blob: URL), so the
        # picture is recognised by its bytes: the image the card shows is example_workflows/<name>.jpg.
        thumbnail = card.locator("img").first
        thumbnail.wait_for()
        page.page.wait_for_function("(img) => img.complete && img.naturalWidth === 512", arg=thumbnail.element_handle())
        shown = page.evaluate("async (img) => (await (await fetch(img.src)).arrayBuffer()).byteLength",
                              thumbnail.element_handle())
        assert shown == example.with_suffix(".jpg").stat().st_size, example.stem
    dialog.get_by_test_id(f"template-workflow-{EXAMPLES[0].stem}").scroll_into_view_if_needed()
    page.shot("1-template-browser")
    dialog.get_by_test_id(f"template-workflow-{ONE_STEP}").click()
    expected = sorted(n["type"] for n in json.loads((REPO_ROOT / "example_workflows" / f"{ONE_STEP}.json").read_text())["nodes"])
    # Wait for the template's own nodes: the default graph has as many nodes (7) as the one-step template.
    page.page.wait_for_function("(types) => JSON.stringify(app.graph.nodes.map(n => n.type).sort()) === "
                                "JSON.stringify(types)", arg=expected)
    assert sorted(page.node_types()) == expected
    assert not page.page.get_by_role("dialog").count()
    page.fit_view()
    page.shot("2-template-loaded")


def test_one_step_template_runs_from_the_run_button_and_shows_the_image(comfy_page, reduced_instaflow):
    page = comfy_page
    load_template(page, ONE_STEP)
    page.set_widgets("InstaFlowLoader", ckpt_name=reduced_instaflow.name)  # the random-weight test model
    page.set_widgets("EmptyLatentImage", width=TEST_SIZE, height=TEST_SIZE)
    page.fit_view()
    page.run_from_ui()
    image = page.wait_for_image_on_node(page.node_id("SaveImage"))
    assert (image["width"], image["height"]) == (TEST_SIZE, TEST_SIZE)
    assert "type=output" in image["src"] and "filename=InstaFlow_" in image["src"]
    page.shot("image-shown")


# ------------------------------------------------------------------------------ convert command


def test_convert_command_turns_an_sd15_graph_into_instaflow_runs_and_undoes(comfy_page, reduced_instaflow):
    page = comfy_page
    original = load_sd15_graph(page, reduced_instaflow)
    original_graph = page.serialized_graph()
    page.shot("1-sd15-graph")
    page.watch_pack_deprecations()

    page.canvas_menu("Convert to InstaFlow (1 step)")
    page.page.wait_for_function("() => app.graph.nodes.some(n => n.type === 'ModelSamplingInstaFlow')")
    page.toast("Converted 1 sampler(s)").wait_for()
    page.shot("2-converted")
    expected, _ = convert_api_workflow(original)  # the Python implementation of the same rules
    assert strip_titles(page.api_prompt()) == expected
    assert page.widgets(page.node_id("KSampler"))["sampler_name"] == "rectified_flow"
    assert not page.pack_deprecations()  # no LiteGraph API this frontend deprecates (input.link from 1.58)

    undo_with_the_keyboard(page)  # one undo step restores the original graph
    page.page.wait_for_function("() => !app.graph.nodes.some(n => n.type === 'ModelSamplingInstaFlow')")
    assert strip_titles(page.api_prompt()) == original
    restored = page.serialized_graph()
    assert restored["links"] == original_graph["links"]
    assert sorted(map(json.dumps, restored["nodes"])) == sorted(map(json.dumps, original_graph["nodes"]))
    page.shot("3-undone")

    page.page.keyboard.press("Control+y")  # redo, then run the converted graph
    page.page.wait_for_function("() => app.graph.nodes.some(n => n.type === 'ModelSamplingInstaFlow')")
    assert strip_titles(page.api_prompt()) == expected
    page.run_from_ui()
    image = page.wait_for_image_on_node(page.node_id("SaveImage"))
    assert (image["width"], image["height"]) == (TEST_SIZE, TEST_SIZE)
    page.shot("4-converted-run")


def test_2rf_command_in_the_edit_menu_sets_four_steps_and_cfg_one_and_a_half(comfy_page, reduced_instaflow):
    page = comfy_page
    original = load_sd15_graph(page, reduced_instaflow)
    label = "Convert to 2-Rectified Flow (4 steps, cfg 1.5)"
    page.top_menu("Edit", "InstaFlow", label)
    page.page.wait_for_function("() => app.graph.nodes.some(n => n.type === 'ModelSamplingInstaFlow')")
    preset = load_rules()["presets"]["2rf"]
    ksampler = page.widgets(page.node_id("KSampler"))
    assert (ksampler["steps"], ksampler["cfg"], ksampler["scheduler"]) == (preset["steps"], preset["cfg"], "instaflow")
    assert strip_titles(page.api_prompt()) == convert_api_workflow(original, "2rf")[0]
    page.shot("converted-2rf")


def test_perflow_command_inserts_model_sampling_perflow_like_the_python_converter_and_runs(comfy_page, reduced_instaflow):
    page = comfy_page
    original = load_sd15_graph(page, reduced_instaflow)  # the random SD1.5 model stands in for a PeRFlow SD1.5 one
    page.canvas_menu("Convert to PeRFlow (4 steps, cfg 4.5)")
    page.page.wait_for_function("() => app.graph.nodes.some(n => n.type === 'ModelSamplingPeRFlow')")
    page.toast("inserted 1 ModelSamplingPeRFlow").wait_for()
    page.fit_view()
    page.shot("1-converted-perflow")
    assert strip_titles(page.api_prompt()) == convert_api_workflow(original, "perflow")[0]
    ksampler = page.widgets(page.node_id("KSampler"))
    assert (ksampler["sampler_name"], ksampler["scheduler"], ksampler["steps"], ksampler["cfg"]) == ("euler", "perflow", 4, 4.5)
    assert page.widgets(page.node_id("ModelSamplingPeRFlow")) == {"prediction_type": "diff_eps"}
    page.run_from_ui()
    image = page.wait_for_image_on_node(page.node_id("SaveImage"))
    assert (image["width"], image["height"]) == (TEST_SIZE, TEST_SIZE)
    page.shot("2-perflow-run")


def graph_differences(got: dict, want: dict) -> str:
    changed = sorted(k for k in got.keys() | want.keys() if got.get(k) != want.get(k))
    return f"{ {k: got.get(k) for k in changed} } where { {k: want.get(k) for k in changed} } was expected"


def convert_corpus_case(page: ComfyPage, case) -> list[str]:
    """Open the case's graph as a user would have it (its saved UI graph, else its API form), check that the frontend
    exports the case's input from it, run the command's conversion (one undo step, as from the menu) and compare the
    export and the report lines with the expected ones. Returns what differs."""
    from playwright.sync_api import TimeoutError as PlaywrightTimeout

    if case.ui is not None:
        page.evaluate("async (graph) => { await app.loadGraphData(graph); }", case.ui)
        count = len(case.ui["nodes"])
    else:
        page.evaluate("async ([api, name]) => { await app.loadApiJson(api, name); }", [case.input, case.name])
        count = len(case.input)
    try:
        page.page.wait_for_function("(n) => app.graph.nodes.length === n", arg=count, timeout=10_000)
    except PlaywrightTimeout:
        return [f"{case.name}: the loaded graph has nodes {page.node_types()}, not the case's {count}"]
    if (loaded := strip_titles(page.api_prompt())) != case.input:
        return [f"{case.name}: the frontend exports, from the loaded graph, {graph_differences(loaded, case.input)}"]
    lines = page.evaluate("async (preset) => InstaFlow.reportLines(await InstaFlow.runConversion(preset))", case.preset)
    exported = strip_titles(page.api_prompt())
    # New nodes compared under the expected ids (devtools/conversion_corpus.py: renumbered says why they may differ).
    exported, lines = renumbered(exported, lines, dict(zip(new_node_ids(exported, case.input),
                                                           new_node_ids(case.expected, case.input))))
    problems = []
    if exported != case.expected:
        problems.append(f"{case.name}: the converted graph has {graph_differences(exported, case.expected)}")
    if lines != case.report:
        problems.append(f"{case.name}: report {lines} != {case.report}")
    return problems


def test_convert_command_agrees_with_the_python_converter_on_every_corpus_case(comfy_page):
    """tests/conversion_corpus: the frontend command gives the Python converter's graph and report lines on every
    case, on the classic canvas and with "Nodes 2.0"; one page for all of it."""
    page = comfy_page
    page.close_dialogs()
    problems = []
    try:
        for renderer in ("classic", "nodes 2.0"):
            if renderer == "nodes 2.0":
                page.evaluate("async () => await app.extensionManager.setting.set('Comfy.VueNodes.Enabled', true)")
            for case in corpus_cases():
                problems += [f"[{renderer}] {p}" for p in convert_corpus_case(page, case)]
            page.shot(f"last-case-{renderer.replace(' ', '-')}")
    finally:
        page.evaluate("async () => await app.extensionManager.setting.set('Comfy.VueNodes.Enabled', false)")
    assert not problems, "\n".join(problems)


# ------------------------------------------------------------------------------ warning on the node


def test_model_sampling_warning_for_a_non_sd15_model_is_shown_on_the_node(comfy_page, tiny_foreign_model):
    page = comfy_page
    page.close_dialogs()
    page.evaluate("(api) => app.loadApiJson(api, 'not-sd15')", {
        "1": {"class_type": "UNETLoader", "inputs": {"unet_name": tiny_foreign_model.name, "weight_dtype": "default"}},
        "2": {"class_type": "ModelSamplingInstaFlow", "inputs": {"model": ["1", 0]}},
        "3": {"class_type": "PreviewAny", "inputs": {"source": ["2", 0]}},
    })
    page.page.wait_for_function("() => app.graph.nodes.length === 3")
    page.fit_view()
    page.run_from_ui()
    node_id = page.node_id("ModelSamplingInstaFlow")
    page.page.wait_for_function("(id) => !!app.graph.getNodeById(id).instaflowWarning", arg=node_id, timeout=120_000)
    warning = page.evaluate("(id) => app.graph.getNodeById(id).instaflowWarning", node_id)
    assert tiny_foreign_model.architecture in warning and "SD1.5" in warning
    shown = page.widgets(node_id).get("instaflow_warning")  # drawn in the node, in either renderer
    assert shown and warning in shown
    assert "instaflow_warning" not in page.api_prompt()[str(node_id)]["inputs"]  # never sent to the server
    page.toast("Model Sampling InstaFlow").wait_for()
    page.shot("warning-on-node")


# ------------------------------------------------------------------------------ the "Nodes 2.0" renderer


@pytest.fixture
def nodes_2_0(comfy_page):
    """The frontend's Vue-based node renderer ("Nodes 2.0", offered by the banner), switched back off afterwards
    (settings are stored on the server, so they would leak into the next test)."""
    comfy_page.close_dialogs()
    comfy_page.evaluate("async () => await app.extensionManager.setting.set('Comfy.VueNodes.Enabled', true)")
    comfy_page.page.wait_for_timeout(500)
    yield comfy_page
    comfy_page.evaluate("async () => await app.extensionManager.setting.set('Comfy.VueNodes.Enabled', false)")


def dom_node(page: ComfyPage, node_id: int):
    return page.page.locator(f'[data-node-id="{node_id}"]')


REDO_STEPS = "() => app.extensionManager.workflow.activeWorkflow.changeTracker.redoQueue.length"


def undo_with_the_keyboard(page: ComfyPage) -> None:
    """Click an empty spot of the canvas (keyboard focus, as after a user's click), press Ctrl+Z. Pressed once more
    only if the first press undid nothing within 5 s (no redo step appeared): in one whole run the key press did
    not reach the canvas of the Vue renderer. Counting redo steps keeps a slow first undo from being doubled."""
    from playwright.sync_api import TimeoutError as PlaywrightTimeout

    before = page.evaluate(REDO_STEPS)
    search = page.node_search()
    for attempt in range(2):
        page.page.mouse.click(*page.empty_canvas_point())
        if search.first.is_visible():
            # Taken for a double click (seen once, after canvas_menu's right-click on the same spot): the node search
            # opened and would take the key press. Closed, and the click made again.
            page.page.keyboard.press("Escape")
            search.first.wait_for(state="hidden")
            page.page.mouse.click(*page.empty_canvas_point())
        page.page.keyboard.press("Control+z")
        try:
            page.page.wait_for_function(f"(n) => ({REDO_STEPS})() > n", arg=before, timeout=5_000)
            return
        except PlaywrightTimeout:
            if attempt:
                raise


def test_nodes_2_0_convert_command_undo_and_warning(nodes_2_0, reduced_instaflow, tiny_foreign_model):
    from playwright.sync_api import expect

    page = nodes_2_0
    original = load_sd15_graph(page, reduced_instaflow)
    dom_node(page, page.node_id("KSampler")).wait_for()  # nodes are DOM elements in this renderer
    page.canvas_menu("Convert to PeRFlow (4 steps, cfg 4.5)")
    page.page.wait_for_function("() => app.graph.nodes.some(n => n.type === 'ModelSamplingPeRFlow')")
    # The command ends (its undo step closed) after the layout settles, then shows its toast: an undo pressed
    # before that finds no step to undo (seen once in a whole run).
    page.toast("Converted 1 sampler(s)").wait_for()
    patch = page.node_id("ModelSamplingPeRFlow")
    dom_node(page, patch).wait_for()
    page.fit_view()
    page.shot("1-converted")
    assert strip_titles(page.api_prompt()) == convert_api_workflow(original, "perflow")[0]
    # The DOM node re-renders after the graph changes (later on a busy machine): wait for it to show the new value.
    expect(dom_node(page, page.node_id("KSampler"))).to_contain_text("perflow", timeout=30_000)

    undo_with_the_keyboard(page)
    page.page.wait_for_function("() => !app.graph.nodes.some(n => n.type === 'ModelSamplingPeRFlow')")
    assert strip_titles(page.api_prompt()) == original
    assert not dom_node(page, patch).count()
    page.shot("2-undone")

    page.evaluate("(api) => app.loadApiJson(api, 'not-sd15')", {
        "1": {"class_type": "UNETLoader", "inputs": {"unet_name": tiny_foreign_model.name, "weight_dtype": "default"}},
        "2": {"class_type": "ModelSamplingPeRFlow", "inputs": {"model": ["1", 0], "prediction_type": "diff_eps"}},
        "3": {"class_type": "PreviewAny", "inputs": {"source": ["2", 0]}},
    })
    page.page.wait_for_function("() => app.graph.nodes.length === 3")
    page.fit_view()
    page.run_from_ui()
    node_id = page.node_id("ModelSamplingPeRFlow")
    page.page.wait_for_function("(id) => !!app.graph.getNodeById(id).instaflowWarning", arg=node_id, timeout=120_000)
    warning = page.evaluate("(id) => app.graph.getNodeById(id).instaflowWarning", node_id)
    assert tiny_foreign_model.architecture in warning
    page.page.wait_for_function("""([id, text]) => { const e = document.querySelector(`[data-node-id="${id}"]`);
        return !!e && [e.innerText, ...[...e.querySelectorAll('textarea')].map(t => t.value)].some(t => t.includes(text)) }""",
                                arg=[node_id, warning[:40]], timeout=30_000)
    page.shot("3-warning-on-node")


# ------------------------------------------------------------------------------ templates and their model files


def load_template_from_browser(page: ComfyPage, name: str) -> None:
    """Template browser -> this pack -> the template's card (as a user opens it)."""
    dialog = open_template_browser(page)
    dialog.get_by_test_id(f"template-workflow-{name}").click()
    wait_for_template_graph(page, name)


def load_template_as_its_card_does(page: ComfyPage, name: str) -> None:
    """What a card of the template browser does (the frontend's loadWorkflowTemplate): fetch the template as the
    server serves it, then app.loadGraphData(..., {openSource: "template"}), which checks the declared models.
    The cards themselves are clicked in test_pack_templates_are_listed_and_load_from_the_template_browser and the
    two "models in place" tests; here this keeps 23 templates from costing 23 openings of the browser dialog."""
    page.evaluate("""async ([pack, name]) => {
        const workflow = await (await fetch(`/api/workflow_templates/${pack}/${name}.json`)).json();
        await app.loadGraphData(workflow, true, true, name, {openSource: "template"}); }""", [PACK, name])
    wait_for_template_graph(page, name)


# Files a template leaves to the user (declared nowhere, nothing to download): the LoRA of instaflow_lora.
USERS_OWN_FILES = {"loras / my_sd15_style_lora.safetensors"}


def test_without_the_models_each_template_opens_the_missing_models_dialog_with_its_files(comfy_page):
    """A new user's state: ComfyUI's missing-models report (the dialog up to 1.32, the Errors tab from 1.48; see
    devtools/browser.py) lists exactly the declared files (folder / name, Hugging Face URL), each downloadable (no
    "invalid directory", no refused source or suffix); templates loading a folder show none."""
    page = comfy_page
    shown = 0
    shown_urls = set()
    page.close_dialogs()  # the template browser a first visit opens
    for example in EXAMPLES:
        declared = declared_models(json.loads(example.read_text()))
        load_template_as_its_card_does(page, example.stem)
        if not declared:
            page.page.wait_for_timeout(500)
            assert not page.missing_models_shown(), example.stem
            continue
        rows = page.missing_models_rows()
        if shown < 3 or "perflow" in example.stem:
            page.shot(f"missing-models-{example.stem}")
        shown += 1
        assert sorted((r["label"], r["url"], r["error"]) for r in rows if r["label"] not in USERS_OWN_FILES) == sorted(
            (f"{e['directory']} / {e['name']}", e["url"], None) for e in declared), example.stem
        # From 1.48 every absent model file a loader names is listed, the user's own LoRA too (without a download);
        # the dialog of 1.32 lists only the declared files.
        assert all(r["error"] for r in rows if r["label"] in USERS_OWN_FILES), example.stem
        shown_urls |= {r["url"] for r in rows if not r["error"]}
        page.close_missing_models()
    declared_urls = {e["url"] for p in EXAMPLES for e in declared_models(json.loads(p.read_text()))}
    assert shown_urls and all(urlsplit(url).hostname == "huggingface.co" for url in shown_urls), shown_urls
    # The frontend asks the Comfy Registry API (api.comfy.org) for node-pack information (per node type, comfy-core,
    # a release check: its workflow-pack lookup). That is its own feature, not a model download, and is left out by
    # host name. Every other request to the internet must be a declared model URL (the dialog's size checks).
    asked = {url for _method, url in page.external_requests if urlsplit(url).hostname != REGISTRY_API_HOST}
    assert asked <= declared_urls, f"the page asked the internet for {asked - declared_urls}"


@pytest.fixture
def template_models(comfy_server, scratch_models, reduced_instaflow, reduced_perflow_sd15, reduced_controlnet,
                    reduced_weight_delta, reduced_perflow_delta, sdxl_refiner_models):
    stand_ins = StandIns(reduced_instaflow, reduced_perflow_sd15, reduced_controlnet, reduced_weight_delta,
                         reduced_perflow_delta, sdxl_refiner_models, comfy_server.models_roots)
    with linked_template_models(scratch_models, stand_ins) as links:
        yield links


@pytest.mark.parametrize("name", ["instaflow_one_step_txt2img_split_files", "perflow_sd15_txt2img_split_files"])
def test_with_the_models_in_place_the_template_opens_without_the_dialog_and_runs(browser, comfy_server, shots,
                                                                                 template_models, name):
    context = browser.new_context(viewport=VIEWPORT)  # a fresh page: the frontend reads the model folders again
    context.route(NOT_LOOPBACK, lambda route: route.abort())
    page = ComfyPage(context.new_page(), comfy_server.url, shots, f"present-{name}"[:40]).open()
    try:
        load_template_from_browser(page, name)
        page.page.wait_for_timeout(800)
        assert not page.missing_models_shown()
        page.set_widgets("EmptyLatentImage", width=TEST_SIZE, height=TEST_SIZE)
        page.fit_view()
        page.shot("1-loaded")
        page.run_from_ui()
        image = page.wait_for_image_on_node(page.node_id("SaveImage"))
        assert (image["width"], image["height"]) == (TEST_SIZE, TEST_SIZE)
        page.shot("2-ran")
    finally:
        context.close()
