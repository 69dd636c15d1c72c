"""Converting an existing SD1.5 graph to InstaFlow (workflow_conversion/convert_api.py, the rules in
web/instaflow_conversion_rules.json, and `python <pack> convert`).

Unit tests need no server; the last tests run a converted stock workflow on the real server and
compare it with the hand-built InstaFlow graph (InstaFlowLoader + InstaFlowSampler).
"""
from __future__ import annotations

import copy
import json
import re
import subprocess
import sys
from pathlib import Path

import pytest

from devtools.comparison import TOLERANCE, record_difference
from flow_math.flows.perflow import FAMILY as PERFLOW
from workflow_conversion.conversion_rules import rules_text
from workflow_conversion.convert_api import RULES_PATH, ConversionError, convert_api_workflow, load_rules, preset_rules

REPO_ROOT = Path(__file__).resolve().parent.parent
TEST_SIZE = 64


def comfyui_default_api_workflow(comfyui_dir: Path) -> dict:
    """ComfyUI's default graph in API format, as ComfyUI ships it (script_examples/basic_api_example.py)."""
    source = (comfyui_dir / "script_examples" / "basic_api_example.py").read_text(encoding="utf-8")
    return json.loads(re.search(r'prompt_text = """(.*?)"""', source, re.S).group(1))


@pytest.fixture(scope="module")
def default_workflow(comfyui_dir) -> dict:
    workflow = comfyui_default_api_workflow(comfyui_dir)
    assert [workflow[k]["class_type"] for k in sorted(workflow)] == [
        "KSampler", "CheckpointLoaderSimple", "EmptyLatentImage", "CLIPTextEncode", "CLIPTextEncode", "VAEDecode", "SaveImage"]
    return workflow


def only_new(converted: dict, original: dict) -> dict:
    return {k: v for k, v in converted.items() if k not in original}


def sampler_custom_workflow(sigmas_class: str, **sigmas_inputs) -> dict:
    return {
        "1": {"class_type": "CheckpointLoaderSimple", "inputs": {"ckpt_name": "sd15.safetensors"}},
        "2": {"class_type": "CLIPTextEncode", "inputs": {"clip": ["1", 1], "text": "a cat"}},
        "3": {"class_type": "EmptyLatentImage", "inputs": {"width": 64, "height": 64, "batch_size": 1}},
        "4": {"class_type": "KSamplerSelect", "inputs": {"sampler_name": "dpmpp_2m"}},
        "5": {"class_type": sigmas_class, "inputs": sigmas_inputs},
        "6": {"class_type": "SamplerCustom", "inputs": {
            "model": ["1", 0], "add_noise": True, "noise_seed": 1, "cfg": 7.0, "positive": ["2", 0],
            "negative": ["2", 0], "sampler": ["4", 0], "sigmas": ["5", 0], "latent_image": ["3", 0]}},
    }


# ------------------------------------------------------------------------------ the rule set


def test_rules_are_one_json_file_in_the_web_directory_the_frontend_serves():
    assert RULES_PATH == REPO_ROOT / "web" / "instaflow_conversion_rules.json"
    rules = load_rules()
    assert rules["presets"]["instaflow"]["steps"] == 1 and rules["presets"]["instaflow"]["cfg"] == 1.0
    assert rules["presets"]["2rf"]["steps"] == 4 and rules["presets"]["2rf"]["cfg"] == 1.5
    assert rules["presets"]["perflow"]["steps"] == 4 and rules["presets"]["perflow"]["cfg"] == 4.5
    assert "instaflow_conversion_rules.json" in (REPO_ROOT / "web" / "instaflow_convert.js").read_text()


# ------------------------------------------------------------------------------ API-format conversion


def test_default_graph_gets_model_sampling_before_the_ksampler_and_instaflow_settings(default_workflow):
    converted, report = convert_api_workflow(default_workflow)
    (new_id,) = only_new(converted, default_workflow)
    assert converted[new_id] == {"class_type": "ModelSamplingInstaFlow", "inputs": {"model": ["4", 0]}}
    ksampler = converted["3"]["inputs"]
    assert ksampler["model"] == [new_id, 0]
    assert (ksampler["sampler_name"], ksampler["scheduler"], ksampler["steps"], ksampler["cfg"]) == (
        "rectified_flow", "instaflow", 1, 1.0)
    assert report.converted == ["3"] and report.inserted == [new_id] and not report.skipped


def test_everything_else_in_the_graph_is_untouched(default_workflow):
    converted, _ = convert_api_workflow(default_workflow)
    for node_id, node in default_workflow.items():
        if node_id != "3":
            assert converted[node_id] == node
    changed = {k for k, v in converted["3"]["inputs"].items() if default_workflow["3"]["inputs"][k] != v}
    assert changed == {"model", "sampler_name", "scheduler", "steps", "cfg"}
    assert default_workflow["3"]["inputs"]["model"] == ["4", 0]  # the input workflow is not modified


def test_2rf_preset_sets_four_steps_and_cfg_one_and_a_half(default_workflow):
    converted, _ = convert_api_workflow(default_workflow, "2rf")
    ksampler = converted["3"]["inputs"]
    assert (ksampler["sampler_name"], ksampler["scheduler"], ksampler["steps"], ksampler["cfg"]) == (
        "rectified_flow", "instaflow", 4, 1.5)


def test_perflow_preset_inserts_model_sampling_perflow_and_sets_euler_perflow(default_workflow):
    converted, report = convert_api_workflow(default_workflow, "perflow")
    (new_id,) = only_new(converted, default_workflow)
    assert converted[new_id] == {"class_type": "ModelSamplingPeRFlow", "inputs": {"model": ["4", 0], "prediction_type": "diff_eps"}}
    ksampler = converted["3"]["inputs"]
    assert ksampler["model"] == [new_id, 0]
    assert (ksampler["sampler_name"], ksampler["scheduler"], ksampler["steps"], ksampler["cfg"]) == ("euler", "perflow", 4, 4.5)
    for node_id, node in default_workflow.items():
        if node_id != "3":
            assert converted[node_id] == node
    assert report.converted == ["3"] and report.inserted == [new_id] and not report.skipped
    assert f"inserted ModelSamplingPeRFlow as node {new_id}" in report.lines()
    twice, again = convert_api_workflow(converted, "perflow")
    assert twice == converted and not again.inserted


def test_rules_file_is_the_one_generated_from_the_family_records():
    """web/instaflow_conversion_rules.json is written by workflow_conversion/conversion_rules.py, never by hand."""
    assert RULES_PATH.read_text(encoding="utf-8") == rules_text(), \
        "the rules are stale: run `python -m workflow_conversion.conversion_rules` from the repository root"


def test_perflow_preset_takes_its_family_nodes_and_settings_from_the_perflow_record():
    rules = preset_rules(load_rules(), "perflow")
    assert rules["model_sampling_node"] == {"type": PERFLOW.patch_node, "set": {"prediction_type": "diff_eps"}}
    assert rules["scheduler_node"]["type"] == PERFLOW.scheduler_node
    assert set(rules["already_patched"]) == {"ModelSamplingPeRFlow", "PeRFlowLoader", "PeRFlowDeltaWeights"}
    assert set(rules["other_families"]) == {"ModelSamplingInstaFlow", "InstaFlowLoader"}


def test_frontend_commands_are_the_presets_of_the_rules_file():
    script = (REPO_ROOT / "web" / "instaflow_convert.js").read_text()
    assert "Convert to PeRFlow" not in script and "RULES.presets" in script
    commands = {name: p["command"]["label"] for name, p in load_rules()["presets"].items()}
    assert commands == {"instaflow": "Convert to InstaFlow (1 step)", "2rf": "Convert to 2-Rectified Flow (4 steps, cfg 1.5)",
                        "perflow": "Convert to PeRFlow (4 steps, cfg 4.5)"}


def test_perflow_preset_on_sampler_custom_gets_euler_and_perflow_scheduler_keeping_denoise():
    workflow = sampler_custom_workflow("BasicScheduler", model=["1", 0], scheduler="karras", steps=30, denoise=0.6)
    converted, report = convert_api_workflow(workflow, "perflow")
    (new_id,) = only_new(converted, workflow)
    assert converted[new_id]["class_type"] == "ModelSamplingPeRFlow"
    assert converted["6"]["inputs"]["model"] == [new_id, 0] and converted["6"]["inputs"]["cfg"] == 4.5
    assert converted["4"]["inputs"]["sampler_name"] == "euler"
    assert converted["5"] == {"class_type": "PeRFlowScheduler", "inputs": {"model": [new_id, 0], "steps": 4, "denoise": 0.6}}
    assert report.replaced == ["5"] and "replaced sigma source 5 by PeRFlowScheduler" in report.lines()


def test_perflow_loader_and_delta_weights_need_no_model_sampling_node(default_workflow):
    workflow = copy.deepcopy(default_workflow)
    workflow["4"] = {"class_type": "PeRFlowLoader", "inputs": {"ckpt_name": "perflow-sd15-dreamshaper"}}
    converted, report = convert_api_workflow(workflow, "perflow")
    assert not only_new(converted, workflow) and converted["3"]["inputs"]["scheduler"] == "perflow"
    workflow = copy.deepcopy(default_workflow)
    workflow["20"] = {"class_type": "PeRFlowDeltaWeights", "inputs": {"model": ["4", 0], "delta_name": "d", "strength": 1.0}}
    workflow["3"]["inputs"]["model"] = ["20", 0]
    converted, report = convert_api_workflow(workflow, "perflow")
    assert not only_new(converted, workflow) and report.converted == ["3"]


@pytest.mark.parametrize("preset, other", [("perflow", "ModelSamplingInstaFlow"), ("instaflow", "ModelSamplingPeRFlow"),
                                           ("2rf", "PeRFlowDeltaWeights")])
def test_a_graph_set_up_for_the_other_family_is_left_alone(default_workflow, preset, other):
    workflow = copy.deepcopy(default_workflow)
    workflow["20"] = {"class_type": other, "inputs": {"model": ["4", 0]}}
    workflow["3"]["inputs"]["model"] = ["20", 0]
    converted, report = convert_api_workflow(workflow, preset)
    assert converted == workflow
    assert other in report.skipped["3"] and "another flow family" in report.skipped["3"]


def test_converting_twice_changes_nothing_more(default_workflow):
    once, _ = convert_api_workflow(default_workflow)
    twice, report = convert_api_workflow(once)
    assert twice == once and report.converted == ["3"] and not report.inserted


def test_lora_loaders_stay_upstream_of_the_inserted_node(default_workflow):
    workflow = copy.deepcopy(default_workflow)
    workflow["20"] = {"class_type": "LoraLoader", "inputs": {"model": ["4", 0], "clip": ["4", 1], "lora_name": "a.safetensors",
                                                             "strength_model": 1.0, "strength_clip": 1.0}}
    workflow["21"] = {"class_type": "LoraLoaderModelOnly", "inputs": {"model": ["20", 0], "lora_name": "b.safetensors",
                                                                      "strength_model": 0.5}}
    workflow["3"]["inputs"]["model"] = ["21", 0]
    converted, _ = convert_api_workflow(workflow)
    (new_id,) = only_new(converted, workflow)
    assert converted[new_id]["inputs"]["model"] == ["21", 0]
    assert converted["3"]["inputs"]["model"] == [new_id, 0]
    assert converted["20"] == workflow["20"] and converted["21"] == workflow["21"]


def test_existing_model_sampling_instaflow_upstream_is_not_duplicated(default_workflow):
    workflow = copy.deepcopy(default_workflow)
    workflow["20"] = {"class_type": "ModelSamplingInstaFlow", "inputs": {"model": ["4", 0]}}
    workflow["21"] = {"class_type": "LoraLoaderModelOnly", "inputs": {"model": ["20", 0], "lora_name": "b.safetensors",
                                                                      "strength_model": 0.5}}
    workflow["3"]["inputs"]["model"] = ["21", 0]
    converted, report = convert_api_workflow(workflow)
    assert not only_new(converted, workflow) and report.converted == ["3"]
    assert converted["3"]["inputs"]["model"] == ["21", 0] and converted["3"]["inputs"]["sampler_name"] == "rectified_flow"


def test_instaflow_loader_needs_no_model_sampling_node(default_workflow):
    workflow = copy.deepcopy(default_workflow)
    workflow["4"] = {"class_type": "InstaFlowLoader", "inputs": {"ckpt_name": "instaflow_0_9B_from_sd_1_5"}}
    converted, _ = convert_api_workflow(workflow)
    assert not only_new(converted, workflow) and converted["3"]["inputs"]["scheduler"] == "instaflow"


def test_samplers_sharing_one_model_output_share_one_inserted_node(default_workflow):
    workflow = copy.deepcopy(default_workflow)
    workflow["30"] = {"class_type": "KSamplerAdvanced", "inputs": {
        "model": ["4", 0], "add_noise": "enable", "noise_seed": 5, "steps": 20, "cfg": 7.0, "sampler_name": "euler",
        "scheduler": "karras", "positive": ["6", 0], "negative": ["7", 0], "latent_image": ["5", 0],
        "start_at_step": 0, "end_at_step": 10000, "return_with_leftover_noise": "disable"}}
    converted, report = convert_api_workflow(workflow)
    (new_id,) = only_new(converted, workflow)
    assert converted["3"]["inputs"]["model"] == converted["30"]["inputs"]["model"] == [new_id, 0]
    assert report.converted == ["3", "30"]
    advanced = converted["30"]["inputs"]
    assert (advanced["sampler_name"], advanced["scheduler"], advanced["steps"], advanced["cfg"]) == (
        "rectified_flow", "instaflow", 1, 1.0)


def test_sampler_custom_gets_rectified_flow_and_basic_scheduler_becomes_instaflow_scheduler_keeping_denoise():
    workflow = sampler_custom_workflow("BasicScheduler", model=["1", 0], scheduler="karras", steps=30, denoise=0.6)
    converted, report = convert_api_workflow(workflow, "2rf")
    (new_id,) = only_new(converted, workflow)
    assert converted["6"]["inputs"]["model"] == [new_id, 0] and converted["6"]["inputs"]["cfg"] == 1.5
    assert converted["4"]["inputs"]["sampler_name"] == "rectified_flow"
    assert converted["5"] == {"class_type": "InstaFlowScheduler", "inputs": {"model": [new_id, 0], "steps": 4, "denoise": 0.6}}
    assert report.replaced == ["5"]


def test_karras_scheduler_becomes_instaflow_scheduler_at_full_denoise():
    workflow = sampler_custom_workflow("KarrasScheduler", steps=20, sigma_max=14.6, sigma_min=0.03, rho=7.0)
    converted, _ = convert_api_workflow(workflow)
    (new_id,) = only_new(converted, workflow)
    assert converted["5"] == {"class_type": "InstaFlowScheduler", "inputs": {"model": [new_id, 0], "steps": 1, "denoise": 1.0}}


def test_graph_of_another_architecture_is_left_alone(default_workflow):
    workflow = copy.deepcopy(default_workflow)
    workflow["20"] = {"class_type": "ModelSamplingFlux", "inputs": {"model": ["4", 0], "max_shift": 1.15, "base_shift": 0.5,
                                                                    "width": 1024, "height": 1024}}
    workflow["3"]["inputs"]["model"] = ["20", 0]
    converted, report = convert_api_workflow(workflow)
    assert converted == workflow
    assert "ModelSamplingFlux" in report.skipped["3"]


def test_model_from_an_unknown_loader_is_left_alone_with_the_reason(default_workflow):
    workflow = copy.deepcopy(default_workflow)
    workflow["4"]["class_type"] = "SomePackCheckpointLoader"
    converted, report = convert_api_workflow(workflow)
    assert converted == workflow
    assert "SomePackCheckpointLoader" in report.skipped["3"] and "CheckpointLoaderSimple" in report.skipped["3"]


def test_a_value_fed_by_a_link_is_reported_not_overwritten(default_workflow):
    workflow = copy.deepcopy(default_workflow)
    workflow["40"] = {"class_type": "PrimitiveInt", "inputs": {"value": 25}}
    workflow["3"]["inputs"]["steps"] = ["40", 0]
    converted, report = convert_api_workflow(workflow)
    assert converted["3"]["inputs"]["steps"] == ["40", 0]
    assert any("steps is connected to node 40" in note for note in report.notes)


def test_with_the_servers_node_definitions_a_choice_it_lacks_is_noted_not_written(default_workflow):
    """As the frontend command checks a combo's options: here a server without the pack's sampler and scheduler."""
    object_info = {"KSampler": {"input": {"required": {
        "sampler_name": [["euler", "dpmpp_2m"]], "scheduler": ["COMBO", {"options": ["normal", "karras"]}],
        "steps": ["INT", {}], "cfg": ["FLOAT", {}]}}}}
    converted, report = convert_api_workflow(default_workflow, object_info=object_info)
    ksampler = converted["3"]["inputs"]
    assert (ksampler["sampler_name"], ksampler["scheduler"], ksampler["steps"]) == ("euler", "normal", 1)
    assert report.notes == ['node 3 (KSampler): sampler_name has no option "rectified_flow"',
                            'node 3 (KSampler): scheduler has no option "instaflow"']
    del object_info["KSampler"]["input"]["required"]["cfg"]
    _, report = convert_api_workflow(default_workflow, object_info=object_info)
    assert "node 3 (KSampler) has no cfg widget" in report.notes


def test_ui_format_workflow_is_refused_with_a_pointer_to_the_frontend_command():
    ui = json.loads((REPO_ROOT / "example_workflows" / "instaflow_one_step_txt2img.json").read_text())
    with pytest.raises(ConversionError, match="UI-format.*Convert to InstaFlow"):
        convert_api_workflow(ui)


def test_unknown_preset_is_refused_naming_the_choices(default_workflow):
    with pytest.raises(ConversionError, match="instaflow, 2rf, perflow"):
        convert_api_workflow(default_workflow, "lcm")


# ------------------------------------------------------------------------------ the command line


def run_cli(*args, cwd) -> subprocess.CompletedProcess:
    # -I: isolated mode (no PYTHONPATH, no user site, script dir only): the tool must work from the
    # pack's folder alone, without ComfyUI and without the package's relative imports.
    return subprocess.run([sys.executable, "-I", str(REPO_ROOT), *args], cwd=cwd, capture_output=True, text=True, timeout=60)


def test_cli_converts_a_file_without_comfyui(default_workflow, tmp_path):
    source, target = tmp_path / "in.json", tmp_path / "out.json"
    source.write_text(json.dumps(default_workflow))
    result = run_cli("convert", str(source), str(target), "--preset", "2rf", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert json.loads(target.read_text()) == convert_api_workflow(default_workflow, "2rf")[0]
    assert "converted sampler 3" in result.stderr


def test_cli_perflow_preset(default_workflow, tmp_path):
    source, target = tmp_path / "in.json", tmp_path / "out.json"
    source.write_text(json.dumps(default_workflow))
    result = run_cli("convert", str(source), str(target), "--preset", "perflow", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert json.loads(target.read_text()) == convert_api_workflow(default_workflow, "perflow")[0]
    assert "inserted ModelSamplingPeRFlow" in result.stderr


def test_cli_exits_with_an_error_naming_the_file_for_a_ui_workflow(tmp_path):
    source = REPO_ROOT / "example_workflows" / "instaflow_one_step_txt2img.json"
    result = run_cli("convert", str(source), str(tmp_path / "out.json"), cwd=tmp_path)
    assert result.returncode == 2
    assert str(source) in result.stderr and "UI-format" in result.stderr
    assert not (tmp_path / "out.json").exists()


# ------------------------------------------------------------------------------ on the real server


def at_test_size(workflow: dict, models, seed: int) -> dict:
    workflow = copy.deepcopy(workflow)
    for node in workflow.values():
        inputs = node["inputs"]
        if node["class_type"] == "CheckpointLoaderSimple":
            inputs["ckpt_name"] = models.single_file.name
        elif node["class_type"] == "EmptyLatentImage":
            inputs["width"] = inputs["height"] = TEST_SIZE
        elif node["class_type"] == "KSampler":
            inputs["seed"] = seed
    return workflow


def hand_built_instaflow(models, positive: str, negative: str, seed: int, steps: int, cfg: float) -> dict:
    """The graph a user would build for InstaFlow from scratch: Load InstaFlow Checkpoint + InstaFlow Sampler."""
    return {
        "1": {"class_type": "InstaFlowLoader", "inputs": {"ckpt_name": models.single_file.name}},
        "2": {"class_type": "CLIPTextEncode", "inputs": {"clip": ["1", 1], "text": positive}},
        "3": {"class_type": "CLIPTextEncode", "inputs": {"clip": ["1", 1], "text": negative}},
        "4": {"class_type": "EmptyLatentImage", "inputs": {"width": TEST_SIZE, "height": TEST_SIZE, "batch_size": 1}},
        "5": {"class_type": "InstaFlowSampler", "inputs": {"model": ["1", 0], "seed": seed, "steps": steps, "cfg": cfg,
                                                          "positive": ["2", 0], "negative": ["3", 0],
                                                          "latent_image": ["4", 0], "denoise": 1.0}},
        "6": {"class_type": "VAEDecode", "inputs": {"samples": ["5", 0], "vae": ["1", 2]}},
        "7": {"class_type": "SaveImage", "inputs": {"images": ["6", 0], "filename_prefix": "hand_built"}},
    }


@pytest.mark.parametrize("preset", ["instaflow", "2rf"])
def test_converted_stock_workflow_equals_the_hand_built_instaflow_graph(comfy_server, reduced_instaflow, default_workflow,
                                                                         preset):
    seed = 20240501
    converted, _ = convert_api_workflow(at_test_size(default_workflow, reduced_instaflow, seed), preset)
    ours = comfy_server.images(comfy_server.run(converted, timeout=300), "9")[0]
    steps, cfg = (load_rules()["presets"][preset][k] for k in ("steps", "cfg"))
    reference_graph = hand_built_instaflow(reduced_instaflow, default_workflow["6"]["inputs"]["text"],
                                           default_workflow["7"]["inputs"]["text"], seed, steps, cfg)
    expected = comfy_server.images(comfy_server.run(reference_graph, timeout=300), "7")[0]
    assert ours.std() > 0
    assert record_difference(f"converted default workflow ({preset}) vs InstaFlowLoader+InstaFlowSampler", ours, expected) \
        <= TOLERANCE / 4


def hand_built_perflow(models, positive: str, negative: str, seed: int, steps: int, cfg: float) -> dict:
    """The graph a user would build for PeRFlow from scratch: Load PeRFlow Checkpoint + KSampler euler/perflow."""
    return {
        "1": {"class_type": "PeRFlowLoader", "inputs": {"ckpt_name": models.single_file.name}},
        "2": {"class_type": "CLIPTextEncode", "inputs": {"clip": ["1", 1], "text": positive}},
        "3": {"class_type": "CLIPTextEncode", "inputs": {"clip": ["1", 1], "text": negative}},
        "4": {"class_type": "EmptyLatentImage", "inputs": {"width": TEST_SIZE, "height": TEST_SIZE, "batch_size": 1}},
        "5": {"class_type": "KSampler", "inputs": {"model": ["1", 0], "seed": seed, "steps": steps, "cfg": cfg,
                                                  "sampler_name": "euler", "scheduler": "perflow", "positive": ["2", 0],
                                                  "negative": ["3", 0], "latent_image": ["4", 0], "denoise": 1.0}},
        "6": {"class_type": "VAEDecode", "inputs": {"samples": ["5", 0], "vae": ["1", 2]}},
        "7": {"class_type": "SaveImage", "inputs": {"images": ["6", 0], "filename_prefix": "hand_built_perflow"}},
    }


def test_perflow_converted_stock_workflow_runs_and_equals_the_perflow_loader_graph(comfy_server, reduced_instaflow,
                                                                                  default_workflow):
    """The random SD1.5 test model stands in for a PeRFlow SD1.5 checkpoint (same architecture)."""
    seed = 20240425
    converted, _ = convert_api_workflow(at_test_size(default_workflow, reduced_instaflow, seed), "perflow")
    ours = comfy_server.images(comfy_server.run(converted, timeout=300), "9")[0]
    preset = load_rules()["presets"]["perflow"]
    expected = comfy_server.images(comfy_server.run(hand_built_perflow(
        reduced_instaflow, default_workflow["6"]["inputs"]["text"], default_workflow["7"]["inputs"]["text"], seed,
        preset["steps"], preset["cfg"]), timeout=300), "7")[0]
    assert ours.std() > 0
    assert record_difference("converted default workflow (perflow) vs PeRFlowLoader+KSampler euler/perflow", ours, expected) \
        <= TOLERANCE / 4


def test_unconverted_stock_workflow_differs_from_the_instaflow_graph(comfy_server, reduced_instaflow, default_workflow):
    """The comparison above can fail: the same workflow before conversion (euler/normal, EPS) is far away."""
    seed = 20240501
    workflow = at_test_size(default_workflow, reduced_instaflow, seed)
    workflow["3"]["inputs"].update(steps=1, cfg=1.0)
    ours = comfy_server.images(comfy_server.run(workflow, timeout=300), "9")[0]
    expected = comfy_server.images(comfy_server.run(hand_built_instaflow(
        reduced_instaflow, default_workflow["6"]["inputs"]["text"], default_workflow["7"]["inputs"]["text"], seed, 1, 1.0),
        timeout=300), "7")[0]
    assert record_difference("unconverted default workflow (steps 1, cfg 1) vs InstaFlow graph", ours, expected) > 4 * TOLERANCE
