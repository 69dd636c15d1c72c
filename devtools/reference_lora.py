"""Independent reference for LoRAs on InstaFlow: merge the LoRA into the diffusers weights by hand.

Kohya files (lora_unet_* / lora_te_* with lora_up, lora_down, alpha) are merged as the official
gnobitab/InstaFlow code/rf_lora.py load_civitai_lora does (REFERENCE.md section 3):
- the module is found by walking the underscore-separated name through the diffusers/transformers
  module tree, joining parts with "_" until an attribute exists (down_blocks, to_out, q_proj, ...);
- W += multiplier * (alpha / rank) * up @ down, with 1x1 convolutions squeezed to matrices and back;
  no alpha means scale 1.
The official code uses one multiplier for UNet and text encoder; ComfyUI's LoraLoader has two
(strength_model, strength_clip), so they are separate here (equal values = the official call).

Diffusers files are merged with diffusers' key conventions (W += multiplier * up @ down, scale 1 as
no network alphas are stored):
- "unet.<module>.processor.to_{q,k,v}_lora.{down,up}.weight", "...processor.to_out_lora..." (attention
  processors, diffusers' older format) -> <module>.to_q ... <module>.to_out.0;
- "<prefix>.<module>.lora_A.weight" / "lora_B.weight" (PEFT),
  "<prefix>.<module>.lora.{down,up}.weight", "<prefix>.<module>.lora_linear_layer.{down,up}.weight"
  (diffusers' current names), with prefix "unet" or "text_encoder".
Nothing from the pack or ComfyUI is used.
"""
from __future__ import annotations

import re
from collections import defaultdict
from pathlib import Path

import torch
from safetensors.torch import load_file

from devtools.reference_rf import ReferenceInstaFlow

KOHYA_UNET, KOHYA_TEXT_ENCODER = "lora_unet_", "lora_te_"


def resolve_kohya_module(root: torch.nn.Module, name: str) -> torch.nn.Module:
    """rf_lora.py's walk: 'down_blocks_0_attentions_0_proj_in' -> root.down_blocks[0].attentions[0].proj_in."""
    parts = name.split("_")
    module, pending = root, ""
    while parts:
        pending = parts.pop(0) if not pending else pending + "_" + parts.pop(0)
        child = getattr(module, pending, None) if not pending.isdigit() else module._modules.get(pending)
        if isinstance(child, torch.nn.Module):
            module, pending = child, ""
    if pending:
        raise KeyError(f"no module for LoRA name {name!r} (stuck at {pending!r})")
    return module


def low_rank_delta(up: torch.Tensor, down: torch.Tensor, weight_shape) -> torch.Tensor:
    """up @ down as a weight update; 1x1 convolutions (4-D up/down) are squeezed and unsqueezed."""
    delta = up.float().flatten(1) @ down.float().flatten(1)
    return delta.reshape(weight_shape)


@torch.no_grad()
def merge_kohya_lora(reference: ReferenceInstaFlow, path: Path, unet_multiplier: float,
                     text_encoder_multiplier: float) -> None:
    """Merge a Kohya LoRA file into reference.unet / reference.text_encoder in place."""
    groups: dict[str, dict[str, torch.Tensor]] = defaultdict(dict)
    for key, value in load_file(str(path)).items():
        layer, element = key.split(".", 1)
        groups[layer][element] = value
    for layer, elements in groups.items():
        if layer.startswith(KOHYA_TEXT_ENCODER):
            root, multiplier = reference.text_encoder, text_encoder_multiplier
            name = layer[len(KOHYA_TEXT_ENCODER):]
        elif layer.startswith(KOHYA_UNET):
            root, multiplier = reference.unet, unet_multiplier
            name = layer[len(KOHYA_UNET):]
        else:
            raise KeyError(f"not a Kohya SD1.5 LoRA key: {layer}")
        module = resolve_kohya_module(root, name)
        up, down = elements["lora_up.weight"], elements["lora_down.weight"]
        alpha = elements.get("alpha")
        scale = float(alpha) / up.shape[1] if alpha is not None else 1.0
        module.weight += multiplier * scale * low_rank_delta(up, down, module.weight.shape)


_PROCESSOR = re.compile(r"^(?P<module>.+)\.processor\.(?P<proj>to_q|to_k|to_v|to_out)_lora\.(?P<which>down|up)\.weight$")
_SUFFIXES = {
    ".lora_A.weight": "down", ".lora_B.weight": "up",
    ".lora.down.weight": "down", ".lora.up.weight": "up",
    ".lora_linear_layer.down.weight": "down", ".lora_linear_layer.up.weight": "up",
}


def diffusers_lora_pairs(state_dict: dict) -> dict[str, dict[str, torch.Tensor]]:
    """{'unet.<module path>' or 'text_encoder.<module path>': {'down': A, 'up': B}}."""
    pairs: dict[str, dict[str, torch.Tensor]] = defaultdict(dict)
    for key, value in state_dict.items():
        match = _PROCESSOR.match(key)
        if match:
            proj = "to_out.0" if match["proj"] == "to_out" else match["proj"]
            pairs[f"{match['module']}.{proj}"][match["which"]] = value
            continue
        for suffix, which in _SUFFIXES.items():
            if key.endswith(suffix):
                pairs[key[:-len(suffix)]][which] = value
                break
        else:
            raise KeyError(f"not a diffusers LoRA key: {key}")
    return pairs


@torch.no_grad()
def merge_diffusers_lora(reference: ReferenceInstaFlow, path: Path, unet_multiplier: float,
                         text_encoder_multiplier: float) -> None:
    """Merge a diffusers-format LoRA file into reference.unet / reference.text_encoder in place."""
    for target, pair in diffusers_lora_pairs(load_file(str(path))).items():
        prefix, module_path = target.split(".", 1)
        if prefix == "unet":
            module, multiplier = reference.unet.get_submodule(module_path), unet_multiplier
        elif prefix == "text_encoder":
            module, multiplier = reference.text_encoder.get_submodule(module_path), text_encoder_multiplier
        else:
            raise KeyError(f"unknown LoRA prefix in {target}")
        module.weight += multiplier * low_rank_delta(pair["up"], pair["down"], module.weight.shape)
