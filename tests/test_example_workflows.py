"""Every bundled example workflow (UI format) converts to API format and runs on the real server."""
import json
from pathlib import Path

import numpy as np
import pytest

from harness.ui_workflow import ui_to_api

EXAMPLES = sorted((Path(__file__).resolve().parent.parent / "example_workflows").glob("*.json"))
TEST_SIZE = 64  # the random-weight model runs any size; small keeps CPU time down


def with_test_models(prompt: dict, models) -> dict:
    """Point the example's loaders at the random-weight test model and shrink the latent."""
    for node in prompt.values():
        inputs = node["inputs"]
        if node["class_type"] == "InstaFlowLoader":
            inputs["ckpt_name"] = models.name
        elif node["class_type"] == "CheckpointLoaderSimple":
            inputs["ckpt_name"] = models.single_file.name
        elif node["class_type"] == "EmptyLatentImage":
            inputs["width"] = inputs["height"] = TEST_SIZE
    return prompt


def test_there_is_a_one_step_example():
    assert any(p.name == "instaflow_one_step_txt2img.json" for p in EXAMPLES)


@pytest.mark.parametrize("path", EXAMPLES, ids=lambda p: p.stem)
def test_example_workflow_runs_and_saves_an_image(comfy_server, instaflow_models, path):
    prompt = with_test_models(ui_to_api(json.loads(path.read_text()), comfy_server.object_info()), instaflow_models)
    outputs = comfy_server.run(prompt, timeout=600)
    saved = [node_id for node_id, node in prompt.items() if node["class_type"] == "SaveImage"]
    assert saved, f"{path.name} has no SaveImage node"
    for node_id in saved:
        images = comfy_server.images(outputs, node_id)
        assert images and all(np.isfinite(i).all() and i.std() > 0 for i in images)
