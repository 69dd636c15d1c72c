"""Every bundled example workflow (UI format) converts to API format and runs on the real server."""
import json
from pathlib import Path

import numpy as np
import pytest

from harness.input_images import input_picture, put_input_image
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
                     "CheckpointLoaderSimple": "ckpt_name"}


def example_stand_ins(controlnet, loras, deltas) -> dict:
    """Example model name -> the random test model's name standing in for it."""
    return {CONTROLNET_EXAMPLE_NAME: controlnet.name, LORA_EXAMPLE_NAME: loras.kohya.name,
            FINETUNE_EXAMPLE_NAME: deltas.finetune.name, SD15_EXAMPLE_NAME: deltas.base.name}


def with_test_models(prompt: dict, models, *, refiner=None, server=None, stand_ins=None) -> dict:
    """Point the example's loaders at the random-weight test model and shrink the latent.

    With `refiner` the SDXL refiner becomes its random stand-in; with `server` LoadImage reads a test
    picture put in the server's input folder; upscales double TEST_SIZE; `stand_ins` (example_stand_ins)
    renames the ControlNet, LoRA and extra checkpoints the examples name."""
    for node in prompt.values():
        inputs = node["inputs"]
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


@pytest.mark.parametrize("path", EXAMPLES, ids=lambda p: p.stem)
def test_example_workflow_runs_and_saves_an_image(comfy_server, instaflow_models, sdxl_refiner_models, controlnet_models,
                                                  lora_models, weight_delta_models, path):
    prompt = with_test_models(ui_to_api(json.loads(path.read_text()), comfy_server.object_info()), instaflow_models,
                              refiner=sdxl_refiner_models, server=comfy_server,
                              stand_ins=example_stand_ins(controlnet_models, lora_models, weight_delta_models))
    outputs = comfy_server.run(prompt, timeout=600)
    saved = [node_id for node_id, node in prompt.items() if node["class_type"] == "SaveImage"]
    assert saved, f"{path.name} has no SaveImage node"
    for node_id in saved:
        images = comfy_server.images(outputs, node_id)
        assert images and all(np.isfinite(i).all() and i.std() > 0 for i in images)
