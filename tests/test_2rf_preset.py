"""2-Rectified Flow as a first-class preset: the bundled example_workflows/instaflow_2rf_multistep.json
carries the documented settings (steps 2-8, cfg 1.5, a negative prompt) and, run on the real server
with the random-weight model, equals the official pipeline_rf.py loop with exactly its settings."""
import copy
import json
from pathlib import Path

import pytest

from devtools.comparison import TOLERANCE, comfy_noise, record_difference
from devtools.reference_rf import ReferenceInstaFlow, to_uint8
from devtools.ui_workflow import ui_to_api

EXAMPLE = Path(__file__).resolve().parent.parent / "example_workflows" / "instaflow_2rf_multistep.json"
SIZE = 64


@pytest.fixture(scope="module")
def preset(comfy_server) -> dict:
    """The example in API form, with its sampler, prompts and loader picked out."""
    api = ui_to_api(json.loads(EXAMPLE.read_text()), comfy_server.object_info())
    (sampler_id, sampler), = [(k, n) for k, n in api.items() if n["class_type"] == "InstaFlowSampler"]
    inputs = sampler["inputs"]
    return {"api": api, "sampler_id": sampler_id, "sampler": inputs,
            "positive": api[inputs["positive"][0]]["inputs"]["text"],
            "negative": api[inputs["negative"][0]]["inputs"]["text"] if "negative" in inputs else None,
            "loader": api[inputs["model"][0]]}


def test_preset_uses_the_documented_2rf_settings(preset):
    assert preset["loader"]["class_type"] == "InstaFlowLoader"
    assert preset["loader"]["inputs"]["ckpt_name"] == "2_rectified_flow_from_sd_1_5"
    assert 2 <= preset["sampler"]["steps"] <= 8
    assert preset["sampler"]["cfg"] == 1.5
    assert preset["sampler"]["denoise"] == 1.0
    assert preset["negative"], "2-RF with cfg 1.5 needs a negative prompt"


def test_preset_example_equals_the_reference_2rf_loop(comfy_server, reduced_instaflow, preset):
    api = copy.deepcopy(preset["api"])
    for node in api.values():  # the random-weight test model, at a small size
        if node["class_type"] == "InstaFlowLoader":
            node["inputs"]["ckpt_name"] = reduced_instaflow.name
        elif node["class_type"] == "EmptyLatentImage":
            node["inputs"]["width"] = node["inputs"]["height"] = SIZE
    (save_id,) = [k for k, n in api.items() if n["class_type"] == "SaveImage"]
    ours = comfy_server.images(comfy_server.run(api, timeout=600), save_id)

    settings = preset["sampler"]
    reference = ReferenceInstaFlow(reduced_instaflow.diffusers_dir)
    expected = to_uint8(reference.generate(preset["positive"], comfy_noise(settings["seed"], size=SIZE),
                                           steps=settings["steps"], guidance_scale=settings["cfg"],
                                           negative_prompt=preset["negative"]))
    diff = record_difference(f"2-RF preset example ({settings['steps']} steps, cfg {settings['cfg']}, negative)",
                             ours, expected)
    assert diff <= TOLERANCE
