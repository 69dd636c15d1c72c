"""The ComfyUI versions the pack supports, and the probes for the APIs that differ between them.

Supported: ComfyUI 0.3.52 (the oldest with the versioned node API comfy_api.v0_0_2) to 0.3.75; CI
runs the whole suite on the newest and the equivalence, registration and loader tests on the oldest
(.ci/run). Everything else the pack calls exists with the same signature at both ends, so it is
called directly; a new probe goes here, with the versions it serves, and both CI legs execute it.
"""
from __future__ import annotations

import inspect
import logging

import comfy.sd

OLDEST, NEWEST = "0.3.52", "0.3.75"

# comfy.sd.load_diffusion_model_state_dict(sd, model_options={}, metadata=None): `metadata=` (the
# safetensors header, which names scaled-fp8 and other quantised formats) is absent in 0.3.52 and
# present in 0.3.75. load_state_dict_guess_config takes it in both.
_DIFFUSION_MODEL_TAKES_METADATA = "metadata" in inspect.signature(comfy.sd.load_diffusion_model_state_dict).parameters


def load_diffusion_model_state_dict(state_dict: dict, metadata: dict | None):
    if _DIFFUSION_MODEL_TAKES_METADATA:
        return comfy.sd.load_diffusion_model_state_dict(state_dict, metadata=metadata)
    return comfy.sd.load_diffusion_model_state_dict(state_dict)


# ------------------------------------------------------------------------------------------ training
# The pieces the training nodes (training/) reuse from core's LoRA training. All of them exist in both
# 0.3.52 and 0.3.75 (comfy/weight_adapter, comfy_extras/nodes_train.py, ModelPatcher.set_model_compute_dtype,
# CLIP.encode_from_tokens_scheduled); they are probed at run time, not at import, so
# a ComfyUI without them still starts and the training node names what is missing:
# - comfy.weight_adapter adapter_maps["LoRA"].create_train(weight, rank, alpha): core's trainable LoRA module
#   (lora_up, lora_down, alpha), whose state dict is what core SaveLoRA writes and comfy/lora.py loads.
# - comfy_extras.nodes_train patch / unpatch / find_all_highest_child_module_with_forward: core's gradient
#   checkpointing of the UNet's top-level blocks; without them training runs without it (and logs that).
# - CLIP.encode_from_tokens_scheduled (what CLIPTextEncode calls), encode_from_tokens as the fallback.


class MissingComfyFeature(RuntimeError):
    """This ComfyUI lacks a piece the training nodes need."""


def lora_train_class():
    """Core's trainable LoRA adapter class (comfy.weight_adapter, "LoRA")."""
    try:
        from comfy.weight_adapter import adapter_maps
    except ImportError:
        adapter_maps = {}
    lora = adapter_maps.get("LoRA")
    if lora is None or not hasattr(lora, "create_train"):
        raise MissingComfyFeature(
            "this ComfyUI has no trainable LoRA adapter (comfy.weight_adapter); update ComfyUI (0.3.75 has it)")
    return lora


def require_compute_dtype(model) -> None:
    if not hasattr(model, "set_model_compute_dtype"):
        raise MissingComfyFeature(
            "this ComfyUI's ModelPatcher has no set_model_compute_dtype() (needed to train in another dtype); "
            "update ComfyUI (0.3.75 has it)")


def gradient_checkpointing(diffusion_model):
    """Turns on core's gradient checkpointing of the UNet's top-level blocks; returns the undo function."""
    try:
        from comfy_extras.nodes_train import find_all_highest_child_module_with_forward, patch, unpatch
    except ImportError:
        logging.warning("InstaFlow training: this ComfyUI has no gradient checkpointing helpers "
                        "(comfy_extras.nodes_train); training without checkpointing uses more memory")
        return lambda: None
    blocks = find_all_highest_child_module_with_forward(diffusion_model)
    for block in blocks:
        patch(block)

    def undo():
        for block in blocks:
            unpatch(block)
    return undo


def encode_prompt(clip, text: str):
    """CONDITIONING for `text`, as CLIPTextEncode makes it."""
    tokens = clip.tokenize(text)
    if hasattr(clip, "encode_from_tokens_scheduled"):
        return clip.encode_from_tokens_scheduled(tokens)
    cond, pooled = clip.encode_from_tokens(tokens, return_pooled=True)
    return [[cond, {"pooled_output": pooled}]]
