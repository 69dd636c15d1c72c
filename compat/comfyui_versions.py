"""The ComfyUI versions the pack supports, and the probes for the APIs that differ between them.

Tested: ComfyUI 0.3.52 (the oldest with the versioned node API comfy_api.v0_0_2) to 0.33.0; CI runs the
whole suite on the newest and the `oldest` set (equivalence, registration, loaders) on the oldest
(.ci/run). Everything else the pack calls exists with the same signature at both ends (core's trainable
LoRA adapter, gradient-checkpointing helpers, ModelPatcher.set_model_compute_dtype,
CLIP.encode_from_tokens_scheduled among them), so it is called directly; a new probe goes here, with the
versions it serves, and both CI legs execute it.
"""
from __future__ import annotations

import inspect

import comfy.sd

OLDEST, NEWEST = "0.3.52", "0.33.0"

# comfy.sd.load_diffusion_model_state_dict(sd, model_options={}, metadata=None): `metadata=` (the
# safetensors header, which names scaled-fp8 and other quantised formats) is absent in 0.3.52 and
# present in 0.3.75 and 0.33.0. load_state_dict_guess_config takes it in both.
_DIFFUSION_MODEL_TAKES_METADATA = "metadata" in inspect.signature(comfy.sd.load_diffusion_model_state_dict).parameters


def load_diffusion_model_state_dict(state_dict: dict, metadata: dict | None):
    if _DIFFUSION_MODEL_TAKES_METADATA:
        return comfy.sd.load_diffusion_model_state_dict(state_dict, metadata=metadata)
    return comfy.sd.load_diffusion_model_state_dict(state_dict)
