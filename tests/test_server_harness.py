"""Tests of devtools/server.py against a real ComfyUI: the suite's own test server, with stock nodes and
the harness's test nodes (tests/comfy_test_nodes/harness_nodes.py), and a server given a pack that fails to
import. No model files are needed.
"""
from __future__ import annotations

import time

import numpy as np
import pytest

from devtools.server import ComfyServer, PromptFailed, PromptRejected, ServerError


def red_image_prompt(width=64, height=32, prefix="harness"):
    return {
        "1": {"class_type": "EmptyImage",
              "inputs": {"width": width, "height": height, "batch_size": 1, "color": 0xFF0000}},
        "2": {"class_type": "SaveImage", "inputs": {"images": ["1", 0], "filename_prefix": prefix}},
    }


def test_server_lists_stock_nodes(comfy_server):
    info = comfy_server.object_info()
    for node in ("KSampler", "CheckpointLoaderSimple", "EmptyImage", "SaveImage"):
        assert node in info
    assert comfy_server.object_info("KSampler")["KSampler"]["name"] == "KSampler"


def test_custom_node_pack_is_loaded(comfy_server):
    info = comfy_server.object_info()
    assert "HarnessConstInt" in info, comfy_server.log_tail()  # a pack linked under another name than its folder
    assert info["HarnessConstInt"]["output"] == ["INT"]
    assert info["HarnessConstInt"]["display_name"] == "Harness Const Int"


def test_invalid_prompt_is_rejected_with_node_errors(comfy_server):
    prompt = red_image_prompt()
    del prompt["2"]["inputs"]["images"]
    with pytest.raises(PromptRejected) as exc:
        comfy_server.queue(prompt)
    assert "2" in exc.value.node_errors
    assert exc.value.node_errors["2"]["class_type"] == "SaveImage"
    assert "SaveImage" in str(exc.value) and "images" in str(exc.value)


def test_execution_error_raises_prompt_failed_then_server_recovers(comfy_server):
    prompt = {"1": {"class_type": "HarnessRaise", "inputs": {"message": "harness kaboom 123"}}}
    with pytest.raises(PromptFailed) as exc:
        comfy_server.run(prompt, timeout=60)
    err = exc.value
    assert err.node_id == "1" and err.node_type == "HarnessRaise"
    assert err.exception_type.endswith("ValueError")
    assert "harness kaboom 123" in str(err) and "HarnessRaise" in str(err)
    assert "raise ValueError(message)" in err.traceback

    outputs = comfy_server.run(red_image_prompt(48, 16, prefix="after_error"), timeout=60)
    [image] = comfy_server.images(outputs, "2")
    assert image.dtype == np.uint8 and image.shape == (16, 48, 3)
    assert (image == [255, 0, 0]).all()
    saved = list((comfy_server.work_dir / "output").glob("after_error_*.png"))
    assert saved, "SaveImage should write into the per-session output directory"


def test_log_text_is_captured(comfy_server):
    assert "Starting server" in comfy_server.log_text()


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


def test_a_failure_inside_the_guard_leaves_the_server_idle(comfy_server):
    """What conftest does after any failed test: a prompt running and one waiting are both stopped."""
    busy = {"1": {"class_type": "HarnessBusy", "inputs": {"seconds": 600.0, "tag": 1}}}
    waiting = {"1": {"class_type": "HarnessBusy", "inputs": {"seconds": 600.0, "tag": 2}}}
    with pytest.raises(AssertionError, match="on purpose"):
        with comfy_server.stopping_work_on_failure():
            running_id = comfy_server.queue(busy)
            comfy_server.queue(waiting)
            deadline = time.monotonic() + 60
            while not comfy_server.queue_state()[0] and time.monotonic() < deadline:
                time.sleep(0.1)
            running, pending = comfy_server.queue_state()
            assert running and pending, "the busy prompts did not start"
            raise AssertionError("fails on purpose while one prompt runs and one waits")
    assert comfy_server.queue_state() == ([], [])
    with pytest.raises(PromptFailed) as stopped:
        comfy_server.wait(running_id, timeout=10)
    assert stopped.value.interrupted
