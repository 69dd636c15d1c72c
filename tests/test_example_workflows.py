"""Every bundled example workflow (UI format) converts to API format and runs on the real server."""
import json
from pathlib import Path

import conftest

import numpy as np
import pytest

from harness.input_images import input_picture, put_input_image
from harness.object_info import combo_options
from harness.ui_workflow import ui_to_api

EXAMPLES = sorted((Path(__file__).resolve().parent.parent / "example_workflows").glob("*.json"))
TEST_SIZE = 64  # the random-weight model runs any size; small keeps CPU time down
SDXL_REFINER_NAME = "sd_xl_refiner_1.0.safetensors"  # the refiner the refiner-chain example loads
# Model names the ControlNet / LoRA / weight-delta examples use, and the loader input that names them.
CONTROLNET_EXAMPLE_NAME = "control_v11f1p_sd15_depth.pth"
LORA_EXAMPLE_NAME = "my_sd15_style_lora.safetensors"
FINETUNE_EXAMPLE_NAME = "dreamshaper_7.safetensors"
SD15_EXAMPLE_NAME = "v1-5-pruned-emaonly.safetensors"
# Training templates: pairs from 2 prompts at TEST_SIZE with a 1-step teacher, then 2 training steps.
TRAINING_NODES = {"InstaFlowTrainReflowLoRA", "InstaFlowTrainDistillLoRA"}
MODEL_NAME_INPUTS = {"ControlNetLoader": "control_net_name", "LoraLoader": "lora_name",
                     "CheckpointLoaderSimple": "ckpt_name", "PeRFlowLoader": "ckpt_name",
                     "PeRFlowDeltaWeights": "delta_name"}
# PeRFlow: the official folder names the templates load -> the random PeRFlow test models (their
# fixture lists them under models/perflow by these names). The SD1.5 one falls back to the random
# InstaFlow diffusers folder (the same SD1.5 architecture; PeRFlowLoader lists models/diffusers too).
PERFLOW_STAND_INS = {"perflow-sd15-dreamshaper": "perflow-random-sd15", "perflow-sdxl-base": "perflow-random-sdxl",
                     "perflow-sd15-delta-weights": "perflow-sd15-delta-weights"}
PERFLOW_SD15_FALLBACK = {"perflow-sd15-dreamshaper"}


def perflow_stand_ins(object_info: dict, instaflow_models) -> dict:
    """PeRFlow template name -> the test model the server lists for it (skips a template whose model is missing)."""
    listed = set(combo_options(object_info, "PeRFlowLoader", "ckpt_name")) | set(
        combo_options(object_info, "PeRFlowDeltaWeights", "delta_name"))
    mapping = {}
    for official, stand_in in PERFLOW_STAND_INS.items():
        if stand_in in listed:
            mapping[official] = stand_in
        elif official in PERFLOW_SD15_FALLBACK:
            mapping[official] = instaflow_models.name
    return mapping


def require_perflow_test_models(prompt: dict, stand_ins: dict) -> None:
    """Skip while the PeRFlow test models are not part of this checkout; fail once their fixture is registered."""
    for node in prompt.values():
        name_input = {"PeRFlowLoader": "ckpt_name", "PeRFlowDeltaWeights": "delta_name"}.get(node["class_type"])
        name = node["inputs"].get(name_input) if name_input else None
        if name is not None and name not in stand_ins:
            message = f"the PeRFlow test model standing in for {name} ({PERFLOW_STAND_INS[name]}) is not in the models roots"
            if any("perflow" in fixture for fixture in conftest.MODEL_FIXTURES):
                pytest.fail(message)
            pytest.skip(message + ": the PeRFlow test-model fixture is not in this checkout (conftest.MODEL_FIXTURES)")


def example_stand_ins(controlnet, loras, deltas) -> dict:
    """Example model name -> the random test model's name standing in for it."""
    return {CONTROLNET_EXAMPLE_NAME: controlnet.name, LORA_EXAMPLE_NAME: loras.kohya.name,
            FINETUNE_EXAMPLE_NAME: deltas.finetune.name, SD15_EXAMPLE_NAME: deltas.base.name}


def with_test_models(prompt: dict, models, *, refiner=None, server=None, stand_ins=None) -> dict:
    """Point the example's loaders at the random-weight test model and shrink the latent.

    With `refiner` the SDXL refiner becomes its random stand-in; with `server` LoadImage reads a test
    picture put in the server's input folder; upscales double TEST_SIZE; `stand_ins` (example_stand_ins)
    renames the ControlNet, LoRA and extra checkpoints the examples name. An inversion example runs 2 steps
    and 1 fixed-point iteration instead of 10 and 3 (80 s -> about 15 s on the CPU): it must run and save an
    image here; tests/test_inversion.py checks the inversion against its reference."""
    inverting = any(node["class_type"] == "InstaFlowInversion" for node in prompt.values())
    for node in prompt.values():
        inputs = node["inputs"]
        if inverting and "steps" in inputs:  # the inversion and the sampling or schedule that regenerates from it
            inputs["steps"] = 2
            if node["class_type"] == "InstaFlowInversion":
                inputs["fixed_point_iterations"] = 1
        name_input = MODEL_NAME_INPUTS.get(node["class_type"])
        if stand_ins and name_input and inputs.get(name_input) in stand_ins:
            inputs[name_input] = stand_ins[inputs[name_input]]
        elif node["class_type"] == "InstaFlowLoader":
            inputs["ckpt_name"] = models.name
        elif node["class_type"] == "CheckpointLoaderSimple" and refiner is not None and inputs.get("ckpt_name") == SDXL_REFINER_NAME:
            inputs["ckpt_name"] = refiner.single_file.name
        elif node["class_type"] == "LoadImage" and server is not None:
            inputs["image"] = put_input_image(server, "instaflow_example_input.png", input_picture(TEST_SIZE))
        elif node["class_type"] == "ImageScale":
            inputs["width"] = inputs["height"] = 2 * TEST_SIZE
        elif node["class_type"] == "CheckpointLoaderSimple":
            inputs["ckpt_name"] = models.single_file.name
        elif node["class_type"] == "InstaFlowMakePairs":
            inputs.update(width=TEST_SIZE, height=TEST_SIZE, steps=1, pairs_per_prompt=1,
                          prompts="\n".join(inputs["prompts"].splitlines()[:2]))
        elif node["class_type"] in TRAINING_NODES:
            inputs.update(steps=2, training_dtype="fp32")
        elif node["class_type"] == "EmptyLatentImage":
            inputs["width"] = inputs["height"] = TEST_SIZE
    return prompt


def test_there_is_a_one_step_example():
    assert any(p.name == "instaflow_one_step_txt2img.json" for p in EXAMPLES)


def test_there_are_examples_for_2rf_img2img_interpolation_and_the_refiner_chain():
    assert {"instaflow_2rf_multistep.json", "instaflow_img2img.json", "instaflow_latent_interpolation.json",
            "instaflow_sdxl_refiner.json"} <= {p.name for p in EXAMPLES}


def test_there_are_examples_for_reflow_and_distillation_training():
    assert {"instaflow_reflow_a_finetune.json", "instaflow_distill_to_one_step.json"} <= {p.name for p in EXAMPLES}


def test_there_are_examples_for_controlnet_lora_and_weight_delta():
    assert {"instaflow_controlnet.json", "instaflow_lora.json", "instaflow_weight_delta.json"} <= {p.name for p in EXAMPLES}


def test_there_are_perflow_examples_with_the_official_settings():
    """PeRFlow's official settings: SD1.5 4 steps cfg 4.5 at 512, SDXL 6 steps cfg 2.0 at 1024, euler + perflow."""
    expected = {"perflow_sd15_txt2img": (4, 4.5, 512), "perflow_sdxl_txt2img": (6, 2.0, 1024),
                "perflow_delta_on_finetune": (4, 4.5, 512)}
    for name, (steps, cfg, size) in expected.items():
        nodes = {n["type"]: n for n in json.loads((EXAMPLES[0].parent / f"{name}.json").read_text())["nodes"]}
        seed, _control, *values = nodes["KSampler"]["widgets_values"]
        assert values == [steps, cfg, "euler", "perflow", 1.0], name
        assert nodes["EmptyLatentImage"]["widgets_values"][:2] == [size, size], name
    delta = {n["type"]: n for n in json.loads((EXAMPLES[0].parent / "perflow_delta_on_finetune.json").read_text())["nodes"]}
    assert delta["PeRFlowDeltaWeights"]["widgets_values"] == ["perflow-sd15-delta-weights", 1.0]


@pytest.mark.parametrize("path", EXAMPLES, ids=lambda p: p.stem)
def test_example_workflow_runs_and_saves_an_image(comfy_server, instaflow_models, sdxl_refiner_models, controlnet_models,
                                                  lora_models, weight_delta_models, path):
    object_info = comfy_server.object_info()
    prompt = ui_to_api(json.loads(path.read_text()), object_info)
    stand_ins = {**example_stand_ins(controlnet_models, lora_models, weight_delta_models),
                 **perflow_stand_ins(object_info, instaflow_models)}
    require_perflow_test_models(prompt, stand_ins)
    prompt = with_test_models(prompt, instaflow_models, refiner=sdxl_refiner_models, server=comfy_server,
                              stand_ins=stand_ins)
    outputs = comfy_server.run(prompt, timeout=600)
    saved = [node_id for node_id, node in prompt.items() if node["class_type"] == "SaveImage"]
    assert saved, f"{path.name} has no SaveImage node"
    for node_id in saved:
        images = comfy_server.images(outputs, node_id)
        assert images and all(np.isfinite(i).all() and i.std() > 0 for i in images)
