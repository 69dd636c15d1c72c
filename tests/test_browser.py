"""The pack as a user meets it: the official ComfyUI frontend in Chromium, on the real test server.

Marked `browser` (run alone: bash scripts/test.sh -m browser). Each test opens a fresh browser
context (a first visit), drives the UI where a user would (node search, template browser, Run
button, canvas and top menus, Ctrl+Z) and saves screenshots of each step (folder printed in the
test summary; INSTAFLOW_SCREENSHOT_DIR chooses it).
"""
from __future__ import annotations

import json
import os
import re
from pathlib import Path

import pytest

from harness.browser import CHROMIUM, VIEWPORT, ComfyPage, launch_chromium, screenshot_dir
from harness.measurements import record
from workflow_conversion.convert_api import convert_api_workflow, load_rules

pytestmark = pytest.mark.browser

REPO_ROOT = Path(__file__).resolve().parent.parent
PACK = "comfyui-instaflow"
EXAMPLES = sorted((REPO_ROOT / "example_workflows").glob("*.json"))
ONE_STEP = "instaflow_one_step_txt2img"
TEST_SIZE = 64


@pytest.fixture(scope="module")
def browser():
    if not CHROMIUM.exists():
        message = f"{CHROMIUM} not found: install Debian's chromium (scripts/bootstrap.sh does) or set INSTAFLOW_CHROMIUM"
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        chromium = launch_chromium(playwright)
        yield chromium
        chromium.close()


@pytest.fixture(scope="module")
def shots(tmp_path_factory) -> Path:
    path = screenshot_dir(tmp_path_factory)
    record("browser screenshots", str(path))
    return path


@pytest.fixture
def comfy_page(browser, comfy_server, shots, request):
    context = browser.new_context(viewport=VIEWPORT)
    page = ComfyPage(context.new_page(), comfy_server.url, shots, request.node.name.removeprefix("test_")[:40])
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


def load_template(page: ComfyPage, name: str) -> None:
    dialog = open_template_browser(page)
    dialog.get_by_test_id(f"template-workflow-{name}").click()
    page.page.wait_for_function("(n) => app.graph.nodes.length === n", arg=len(json.loads(
        (REPO_ROOT / "example_workflows" / f"{name}.json").read_text())["nodes"]))


def load_default_graph(page: ComfyPage, models) -> dict:
    """ComfyUI's default SD1.5 graph, pointed at the test checkpoint at 64x64; returns its API prompt."""
    page.close_dialogs()
    page.evaluate("async () => { await app.loadGraphData(); }")
    page.page.wait_for_function("() => app.graph.nodes.some(n => n.type === 'KSampler')")
    page.set_widgets("CheckpointLoaderSimple", ckpt_name=models.single_file.name)
    page.set_widgets("EmptyLatentImage", width=TEST_SIZE, height=TEST_SIZE)
    page.fit_view()
    return strip_titles(page.api_prompt())


# ------------------------------------------------------------------------------ node library


def test_node_search_finds_every_instaflow_node_and_adds_one_to_the_canvas(comfy_page, comfy_server):
    page = comfy_page
    display_names = sorted(info["display_name"] for info in comfy_server.object_info().values()
                           if info["category"].startswith("InstaFlow"))
    page.close_dialogs()
    page.evaluate("() => app.graph.clear()")
    page.page.mouse.dblclick(*page.empty_canvas_point())
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
    page.page.wait_for_function("() => app.graph.nodes.length === 1")
    assert page.node_types() == ["ModelSamplingInstaFlow"]
    page.shot("2-node-added")

    # The node library sidebar: one InstaFlow folder with a subfolder per category.
    page.page.get_by_role("button", name=re.compile(r"^Node Library")).click()
    folder = page.page.locator('.side-bar-panel [role=treeitem][aria-label="InstaFlow"]')
    folder.locator(".p-tree-node-content").first.click()
    subfolders = sorted({info["category"].split("/")[1] for info in comfy_server.object_info().values()
                         if info["category"].startswith("InstaFlow/")})
    for sub in subfolders:
        folder.locator(f'[role=treeitem][aria-label="{sub}"] .p-tree-node-content').first.click()
    folder.evaluate("e => e.scrollIntoView({block: 'start'})")
    for name in display_names:
        folder.get_by_text(name).wait_for()
    page.shot("3-node-library")


# ------------------------------------------------------------------------------ templates


def test_pack_templates_are_listed_and_load_from_the_template_browser(comfy_page, comfy_server):
    page = comfy_page
    assert sorted(comfy_server.get_json("/api/workflow_templates")[PACK]) == [p.stem for p in EXAMPLES]
    dialog = open_template_browser(page)
    for example in EXAMPLES:
        dialog.get_by_test_id(f"template-workflow-{example.stem}").wait_for()
    page.shot("1-template-browser")
    dialog.get_by_test_id(f"template-workflow-{ONE_STEP}").click()
    expected = sorted(n["type"] for n in json.loads((REPO_ROOT / "example_workflows" / f"{ONE_STEP}.json").read_text())["nodes"])
    page.page.wait_for_function("(n) => app.graph.nodes.length === n", arg=len(expected))
    assert sorted(page.node_types()) == expected
    assert not page.page.get_by_role("dialog").count()
    page.fit_view()
    page.shot("2-template-loaded")


def test_one_step_template_runs_from_the_run_button_and_shows_the_image(comfy_page, instaflow_models):
    page = comfy_page
    load_template(page, ONE_STEP)
    page.set_widgets("InstaFlowLoader", ckpt_name=instaflow_models.name)  # the random-weight test model
    page.set_widgets("EmptyLatentImage", width=TEST_SIZE, height=TEST_SIZE)
    page.fit_view()
    page.run_from_ui()
    image = page.wait_for_image_on_node(page.node_id("SaveImage"))
    assert (image["width"], image["height"]) == (TEST_SIZE, TEST_SIZE)
    assert "type=output" in image["src"] and "filename=InstaFlow_" in image["src"]
    page.shot("image-shown")


# ------------------------------------------------------------------------------ convert command


def test_convert_command_turns_the_default_graph_into_instaflow_runs_and_undoes(comfy_page, instaflow_models):
    page = comfy_page
    original = load_default_graph(page, instaflow_models)
    original_graph = page.serialized_graph()
    page.shot("1-default-graph")

    page.canvas_menu("Convert to InstaFlow (1 step)")
    page.page.wait_for_function("() => app.graph.nodes.some(n => n.type === 'ModelSamplingInstaFlow')")
    page.page.get_by_text("Converted 1 sampler(s)").wait_for()  # the toast
    page.shot("2-converted")
    expected, _ = convert_api_workflow(original)  # the Python implementation of the same rules
    assert strip_titles(page.api_prompt()) == expected
    assert page.widgets(page.node_id("KSampler"))["sampler_name"] == "rectified_flow"

    page.page.keyboard.press("Control+z")  # one undo step restores the original graph
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


def test_2rf_command_in_the_edit_menu_sets_four_steps_and_cfg_one_and_a_half(comfy_page, instaflow_models):
    page = comfy_page
    original = load_default_graph(page, instaflow_models)
    label = "Convert to 2-Rectified Flow (4 steps, cfg 1.5)"
    page.top_menu("Edit", "InstaFlow", label)
    page.page.wait_for_function("() => app.graph.nodes.some(n => n.type === 'ModelSamplingInstaFlow')")
    preset = load_rules()["presets"]["2rf"]
    ksampler = page.widgets(page.node_id("KSampler"))
    assert (ksampler["steps"], ksampler["cfg"], ksampler["scheduler"]) == (preset["steps"], preset["cfg"], "instaflow")
    assert strip_titles(page.api_prompt()) == convert_api_workflow(original, "2rf")[0]
    page.shot("converted-2rf")


def test_perflow_command_inserts_model_sampling_perflow_like_the_python_converter_and_runs(comfy_page, instaflow_models):
    page = comfy_page
    original = load_default_graph(page, instaflow_models)  # the random SD1.5 model stands in for a PeRFlow SD1.5 one
    page.canvas_menu("Convert to PeRFlow (4 steps, cfg 4.5)")
    page.page.wait_for_function("() => app.graph.nodes.some(n => n.type === 'ModelSamplingPeRFlow')")
    page.page.get_by_text("inserted 1 ModelSamplingPeRFlow").wait_for()  # the toast
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
    page.page.locator(".p-toast-message", has_text="Model Sampling InstaFlow").wait_for()
    page.shot("warning-on-node")
