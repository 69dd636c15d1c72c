"""UNet delta weights (W = W_model + strength * dW) applied to a loaded ComfyUI model.

PeRFlow publishes its SD1.5 acceleration as delta weights (hansyan/perflow-sd15-delta-weights): a
full-size UNet state dict of W_perflow - W_sd15 in diffusers form (config.json + variant files
diffusion_pytorch_model.v0-1 / .v0-0 .safetensors), meant to be added to ANY SD1.5 finetune, key
by key (magic-research/piecewise-rectified-flow, src/utils_perflow.py merge_delta_weights_into_unet).
Here the delta becomes ComfyUI weight patches of type "diff" (the same mechanism as ComfyUI's
ModelMergeAdd node), so the sum is formed when the model is loaded onto its device, in the model's
compute dtype, and strength scales it. A delta in LDM layout (a converted single file) works too.
"""
from __future__ import annotations

import comfy.utils

from .architecture import SD15, detect_layout, require_config
from .diffusers_folder import weight_file_in
from ..flow_math.flows.perflow import FAMILY as PERFLOW
from .model_folders import DELTAS, UNET_FOLDER, resolve_model
from .weights_file import ModelFileError, read_state_dict

_LDM_PREFIX = "diffusion_model."


def delta_file(name: str) -> str:
    """The weights file behind a delta name listed from models/perflow."""
    kind, path = resolve_model(name, PERFLOW.folder, DELTAS)
    if kind == UNET_FOLDER:
        return weight_file_in(path)
    return path


def _model_keys(sd: dict, layout: str, unet_config: dict) -> dict:
    """The delta's tensors under the model's own keys (diffusion_model.<LDM key>)."""
    if layout == "diffusers_unet":
        names = comfy.utils.unet_to_diffusers(unet_config)  # diffusers key -> LDM key
        return {_LDM_PREFIX + names[k]: v for k, v in sd.items() if k in names}
    if layout == "checkpoint":
        return {_LDM_PREFIX + k.split(_LDM_PREFIX, 1)[1]: v for k, v in sd.items() if _LDM_PREFIX in k}
    return {_LDM_PREFIX + k: v for k, v in sd.items()}


def read_delta_patches(path: str, model, who: str) -> dict:
    """{model key: delta tensor} for every UNet weight of `model`; raises naming the file on any mismatch."""
    require_config(model.model.model_config, who, (SD15,), "PeRFlow delta weights are for SD1.5 models (a finetune "
                   "from Load Checkpoint); for SDXL use a merged PeRFlow SDXL checkpoint with PeRFlowLoader")
    sd, _metadata = read_state_dict(path)
    layout, config = detect_layout(sd)
    require_config(config, path, (SD15,), "PeRFlow delta weights must be an SD1.5 UNet (W_perflow - W_sd15)")
    patches = _model_keys(sd, layout, model.model.model_config.unet_config)
    weights = model.model_state_dict(filter_prefix=_LDM_PREFIX)
    unmatched = [k for k in weights if k not in patches]
    wrong = [k for k, v in patches.items() if k not in weights or tuple(v.shape) != tuple(weights[k].shape)]
    if unmatched or wrong:
        raise ModelFileError(f"{path}: these delta weights do not match the model's UNet ({len(unmatched)} UNet weights "
                             f"without a delta, e.g. {unmatched[:2]}; {len(wrong)} deltas without a matching weight, "
                             f"e.g. {wrong[:2]}). Use the SD1.5 delta weights with an SD1.5 model.")
    return patches


def apply_unet_delta(model, name: str, strength: float, who: str):
    """A clone of `model` whose UNet weights are W + strength * dW, dW from the delta `name`."""
    patches = read_delta_patches(delta_file(name), model, who)
    patched = model.clone()
    patched.add_patches({k: (v,) for k, v in patches.items()}, strength_patch=strength, strength_model=1.0)
    return patched
