"""Checks the robustness tests share: how a prompt failed, and that the next valid prompt works."""
from __future__ import annotations

import weakref

import numpy as np
import pytest

from devtools.measurements import record
from devtools.robustness_graphs import instaflow_graph
from devtools.server import PromptFailed, PromptRejected

SIZE = 64
KEPT_LOADER_ID = "kept_recovery_loader"

# server -> the loader node of its last recovery graph. ComfyUI keeps a node's cached output only while the
# queued prompt holds a node with the same class and inputs (the cache is keyed by that signature, not by the
# node id), so a failing prompt without the loader would evict the good model and every recovery check would
# pay a full reload (about 4.5 s on the test machine). failure() carries the loader along, unconnected: ComfyUI
# validates and runs only what an output node depends on, so the failing prompt is otherwise unchanged.
_recovery_loader: "weakref.WeakKeyDictionary" = weakref.WeakKeyDictionary()


def assert_next_prompt_succeeds(server, model_name: str) -> np.ndarray:
    """Runs the smallest valid InstaFlow prompt; the server must still be up and produce a normal image."""
    assert server.proc is not None and server.proc.poll() is None, "the ComfyUI server process died"
    g, save = instaflow_graph(model_name, prefix="still_works")
    api = g.api()
    [_recovery_loader[server]] = [node for node in api.values() if node["class_type"] == "InstaFlowLoader"]
    [image] = server.images(server.run(api, timeout=300), save.id)
    assert image.shape == (SIZE, SIZE, 3)
    assert 10 < image.mean() < 245 and image.std() > 1, "the image after the failure is not a normal image"
    return image


def failure(server, prompt: dict, node_type: str, label: str | None = None) -> PromptFailed:
    """Runs `prompt`, which must fail in a node of `node_type`; records the message users see."""
    kept = _recovery_loader.get(server)
    with pytest.raises(PromptFailed) as caught:
        server.run({**prompt, KEPT_LOADER_ID: kept} if kept else prompt, timeout=300)
    error = caught.value
    assert not error.interrupted, error
    assert error.node_type == node_type, error
    if label:
        record(f"error shown for {label}", f"[{error.node_type}] {error.exception_message.splitlines()[0][:400]}")
    return error


def rejection(server, prompt: dict, node_id: str) -> list[dict]:
    """Queues `prompt`, which ComfyUI's validation must reject; returns the errors for node_id."""
    with pytest.raises(PromptRejected) as caught:
        server.queue(prompt)
    return caught.value.node_errors[node_id]["errors"]


def names_a_value_not_offered(error: dict, value: str) -> bool:
    """A validation error saying `value` is not among a combo's options. Stock V1 nodes fail ComfyUI's own
    combo check ("value_not_in_list"); the pack's nodes are on the versioned schema, whose combos ComfyUI
    does not check, and answer through validate_inputs ("custom_validation_failed"). Either way the prompt
    never runs."""
    return error["type"] in ("value_not_in_list", "custom_validation_failed") and value in error["details"]
