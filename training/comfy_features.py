"""The ComfyUI pieces the training nodes reuse, each probed here and nowhere else (ComfyUI glue).

CI runs ComfyUI 0.3.75; users run newer releases, so every piece is feature-detected and a missing
one gives a message naming what ComfyUI lacks instead of an AttributeError deep in a loop.

- comfy.weight_adapter (adapter_maps["LoRA"].create_train(weight, rank, alpha) returning a torch module
  with lora_up, lora_down, alpha that maps a weight to the adapted weight): the trainable LoRA, the
  same one core TrainLoraNode uses, so the saved dict is what core SaveLoRA writes and comfy/lora.py
  loads (present in 0.3.75, comfy/weight_adapter/__init__.py).
- ModelPatcher.add_weight_wrapper / set_model_compute_dtype: how core TrainLoraNode puts adapters
  on a model clone and sets the training dtype (comfy/model_patcher.py, 0.3.75).
- comfy_extras.nodes_train.patch / unpatch / find_all_highest_child_module_with_forward: core's
  gradient checkpointing of the UNet's top-level blocks (0.3.75). Without them training runs
  without checkpointing (more activation memory) and logs that.
- CLIP.encode_from_tokens_scheduled (0.3.75, what CLIPTextEncode calls) with encode_from_tokens as
  the fallback of older releases.
"""
from __future__ import annotations

import logging


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


def require_weight_wrappers(model) -> None:
    for method in ("add_weight_wrapper", "set_model_compute_dtype"):
        if not hasattr(model, method):
            raise MissingComfyFeature(
                f"this ComfyUI's ModelPatcher has no {method}() (needed to train adapters); update ComfyUI (0.3.75 has it)")


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
