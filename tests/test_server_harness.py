"""Tests of tests/harness/server.py against a real ComfyUI, with stock nodes and a tiny temp pack.

No model files are needed: models_root is a folder of empty subfolders.
"""
from __future__ import annotations

import textwrap

import numpy as np
import pytest

from harness.server import ComfyServer, PromptFailed, PromptRejected, ServerError

PACK_INIT = '''
from .impl import ANSWER


class HarnessConstInt:
    @classmethod
    def INPUT_TYPES(cls):
        return {"required": {}}

    RETURN_TYPES = ("INT",)
    FUNCTION = "run"
    CATEGORY = "testing"

    def run(self):
        return (ANSWER,)


class HarnessRaise:
    @classmethod
    def INPUT_TYPES(cls):
        return {"required": {"message": ("STRING", {"default": "boom"})}}

    RETURN_TYPES = ()
    OUTPUT_NODE = True
    FUNCTION = "run"
    CATEGORY = "testing"

    def run(self, message):
        raise ValueError(message)


NODE_CLASS_MAPPINGS = {"HarnessConstInt": HarnessConstInt, "HarnessRaise": HarnessRaise}
NODE_DISPLAY_NAME_MAPPINGS = {"HarnessConstInt": "Harness Const Int"}
'''


def red_image_prompt(width=64, height=32, prefix="harness"):
    return {
        "1": {"class_type": "EmptyImage",
              "inputs": {"width": width, "height": height, "batch_size": 1, "color": 0xFF0000}},
        "2": {"class_type": "SaveImage", "inputs": {"images": ["1", 0], "filename_prefix": prefix}},
    }


@pytest.fixture(scope="module")
def harness_server(tmp_path_factory, comfyui_dir):
    root = tmp_path_factory.mktemp("harness")
    models = root / "models"
    for sub in ("checkpoints", "diffusers", "instaflow", "vae", "loras"):
        (models / sub).mkdir(parents=True)
    # The link name ("harness-test-pack") differs from the folder name, as for the real pack.
    pack = root / "pack_src"
    pack.mkdir()
    (pack / "__init__.py").write_text(textwrap.dedent(PACK_INIT))
    (pack / "impl.py").write_text("ANSWER = 42\n")
    with ComfyServer(models, [("harness-test-pack", pack)], root / "work", comfyui_dir=comfyui_dir) as server:
        yield server


def test_server_lists_stock_nodes(harness_server):
    info = harness_server.object_info()
    for node in ("KSampler", "CheckpointLoaderSimple", "EmptyImage", "SaveImage"):
        assert node in info
    assert harness_server.object_info("KSampler")["KSampler"]["name"] == "KSampler"


def test_custom_node_pack_is_loaded(harness_server):
    info = harness_server.object_info()
    assert "HarnessConstInt" in info, harness_server.log_tail()
    assert info["HarnessConstInt"]["output"] == ["INT"]
    assert info["HarnessConstInt"]["display_name"] == "Harness Const Int"


def test_invalid_prompt_is_rejected_with_node_errors(harness_server):
    prompt = red_image_prompt()
    del prompt["2"]["inputs"]["images"]
    with pytest.raises(PromptRejected) as exc:
        harness_server.queue(prompt)
    assert "2" in exc.value.node_errors
    assert exc.value.node_errors["2"]["class_type"] == "SaveImage"
    assert "SaveImage" in str(exc.value) and "images" in str(exc.value)


def test_execution_error_raises_prompt_failed_then_server_recovers(harness_server):
    prompt = {"1": {"class_type": "HarnessRaise", "inputs": {"message": "harness kaboom 123"}}}
    with pytest.raises(PromptFailed) as exc:
        harness_server.run(prompt, timeout=60)
    err = exc.value
    assert err.node_id == "1" and err.node_type == "HarnessRaise"
    assert err.exception_type.endswith("ValueError")
    assert "harness kaboom 123" in str(err) and "HarnessRaise" in str(err)
    assert "raise ValueError(message)" in err.traceback

    outputs = harness_server.run(red_image_prompt(48, 16, prefix="after_error"), timeout=60)
    [image] = harness_server.images(outputs, "2")
    assert image.dtype == np.uint8 and image.shape == (16, 48, 3)
    assert (image == [255, 0, 0]).all()
    saved = list((harness_server.work_dir / "output").glob("after_error_*.png"))
    assert saved, "SaveImage should write into the per-session output directory"


def test_log_text_is_captured(harness_server):
    assert "Starting server" in harness_server.log_text()


def test_pack_that_fails_to_import_stops_startup(tmp_path, comfyui_dir):
    # ComfyUI itself only logs "(IMPORT FAILED)" and serves without the pack; the harness refuses.
    pack = tmp_path / "broken"
    pack.mkdir()
    (pack / "__init__.py").write_text("raise ImportError('harness broken pack 456')\n")
    (tmp_path / "models").mkdir()
    server = ComfyServer(tmp_path / "models", [("broken-pack", pack)], tmp_path / "work", comfyui_dir=comfyui_dir)
    with pytest.raises(ServerError, match="broken-pack") as exc:
        server.start()
    assert "harness broken pack 456" in str(exc.value)
    assert server.proc.poll() is not None
