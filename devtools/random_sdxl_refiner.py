"""A random-weight stand-in for the SDXL refiner (sd_xl_refiner_1.0.safetensors), built once and cached.

Why a stand-in: the real refiner's UNet has 2.26e9 parameters. ComfyUI on the CPU runs UNets in
fp32 (model_management.unet_dtype), i.e. 9.0 GB for that UNet alone, next to the 3.4 GB SD1.5
InstaFlow UNet and the 1.4 GB fp16 OpenCLIP bigG text encoder in the same prompt: more than the
~14 GB the suite may use on a 24 GB CI machine (docs/usage.md, the refiner section, has the figure).

What the stand-in keeps, so ComfyUI treats it exactly like the refiner:
- the SDXL-refiner UNet layout that ComfyUI's detector matches (comfy/supported_models.py,
  SDXLRefiner.unet_config): model_channels 384, context_dim 1280, adm_in_channels 2560 (pooled text +
  size/crop/aesthetic-score embeddings), transformer_depth [0, 0, 4, 4, 4, 4, 0, 0], linear
  projections, 2 res blocks per level, 4 levels, depth-4 middle transformer. So ComfyUI loads it as
  model_base.SDXLRefiner, ModelType.EPS, latent_format SDXL (scale 0.13025), with the SDXL refiner
  text encoder (SDXLRefinerClipModel) for CLIPTextEncodeSDXLRefiner;
- the full-size OpenCLIP ViT-bigG text encoder (694M parameters, stored fp16), in the refiner's
  checkpoint layout (conditioner.embedders.0.model.*, OpenCLIP key names);
- its own VAE (SD/SDXL AutoencoderKL architecture, other random weights than the InstaFlow VAE).
What differs: channel_mult [1, 1, 1, 1] instead of [1, 2, 4, 4] (384 channels at every level instead
of 384/768/1536/1536): 272M UNet parameters instead of 2.26e9. channel_mult is not part of what ComfyUI
matches on, and nothing in the graph depends on it.

    cache_root()/fixtures/<RECIPE_TAG>/models/checkpoints/<NAME>.safetensors   (fp16, LDM layout)

Key layouts come from ComfyUI's own maps (comfy.utils.unet_to_diffusers,
comfy.diffusers_convert.convert_vae_state_dict, and convert_text_enc_state_dict_v20 as used by
SDXLRefiner.process_clip_state_dict_for_saving), in the build subprocess only. The build checks that
ComfyUI's detector calls the result SDXLRefiner. Bump RECIPE_TAG whenever what is written changes.
"""
from __future__ import annotations

import json
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from devtools.comfyui_source import comfyui_path
from devtools.random_models import VAE_CONFIG, condition_vae
from devtools.cached_fixture import ensure_built, script_main

RECIPE_TAG = "sdxl-refiner-standin-v1"
NAME = "sdxl-refiner-standin"
SEED = 20230726  # SDXL 1.0's release date; any fixed value works
SDXL_SCALING_FACTOR = 0.13025
_COMPLETE = ".complete"

# diffusers form of stabilityai/stable-diffusion-xl-refiner-1.0 unet/config.json, except
# block_out_channels (real: [384, 768, 1536, 1536]) and the matching head counts (64 channels a head).
UNET_CONFIG = {
    "sample_size": 128,
    "in_channels": 4,
    "out_channels": 4,
    "down_block_types": ["DownBlock2D", "CrossAttnDownBlock2D", "CrossAttnDownBlock2D", "DownBlock2D"],
    "up_block_types": ["UpBlock2D", "CrossAttnUpBlock2D", "CrossAttnUpBlock2D", "UpBlock2D"],
    "block_out_channels": [384, 384, 384, 384],
    "attention_head_dim": [6, 6, 6, 6],
    "layers_per_block": 2,
    "transformer_layers_per_block": 4,
    "cross_attention_dim": 1280,
    "use_linear_projection": True,
    "addition_embed_type": "text_time",
    "addition_time_embed_dim": 256,
    "projection_class_embeddings_input_dim": 2560,
    "norm_num_groups": 32,
}
# ComfyUI's description of the same layout, for its key map (comfy.utils.unet_to_diffusers).
_COMFY_UNET = {
    "num_res_blocks": [2, 2, 2, 2],
    "channel_mult": [1, 1, 1, 1],
    "transformer_depth": [0, 0, 4, 4, 4, 4, 0, 0],
    "transformer_depth_output": [0, 0, 0, 4, 4, 4, 4, 4, 4, 0, 0, 0],
    "transformer_depth_middle": 4,
}
# OpenCLIP ViT-bigG text tower, as in ComfyUI's comfy/clip_config_bigg.json.
TEXT_ENCODER_CONFIG = {
    "vocab_size": 49408,
    "hidden_size": 1280,
    "intermediate_size": 5120,
    "projection_dim": 1280,
    "num_hidden_layers": 32,
    "num_attention_heads": 20,
    "max_position_embeddings": 77,
    "hidden_act": "gelu",
    "layer_norm_eps": 1e-5,
    "pad_token_id": 1,
    "bos_token_id": 0,
    "eos_token_id": 49407,
}


@dataclass(frozen=True)
class RandomSDXLRefiner:
    models_root: Path  # has checkpoints/, like ComfyUI's models folder
    single_file: Path  # models_root/checkpoints/<name>.safetensors
    name: str


def _describe(models_root: Path) -> RandomSDXLRefiner:
    return RandomSDXLRefiner(models_root, models_root / "checkpoints" / f"{NAME}.safetensors", NAME)


def ensure_random_sdxl_refiner() -> RandomSDXLRefiner:
    """The cached stand-in; builds it on first use (~1 min on 2 CPU cores, 2 GB on disk)."""
    models_root = ensure_built(RECIPE_TAG, NAME, Path(__file__).resolve(), ["--arg", f"comfyui={comfyui_path()}"])
    return _describe(models_root)


# ----------------------------------------------------------------------------------------------
# The build runs in a subprocess (python random_sdxl_refiner.py --build-into DIR --arg comfyui=DIR).


def _fp16(state: dict) -> dict:
    return {key: tensor.half().contiguous() for key, tensor in state.items()}


def _unet_state(comfy_utils) -> dict:
    import torch
    from diffusers import UNet2DConditionModel

    torch.manual_seed(SEED)
    unet = UNet2DConditionModel(**UNET_CONFIG)
    unet_map = comfy_utils.unet_to_diffusers(_COMFY_UNET)  # diffusers key -> LDM key
    state = unet.state_dict()
    missing = sorted(set(state) - set(unet_map))
    if missing:
        raise RuntimeError(f"no LDM name for UNet keys {missing[:5]}")
    return _fp16({"model.diffusion_model." + unet_map[key]: tensor for key, tensor in state.items()})


def _vae_state(diffusers_convert) -> dict:
    import torch
    from diffusers import AutoencoderKL

    torch.manual_seed(SEED + 1)
    vae = AutoencoderKL(**dict(VAE_CONFIG, scaling_factor=SDXL_SCALING_FACTOR))
    condition_vae(vae)  # the same conditioning of a random VAE as the InstaFlow fixture (random_models.py)
    return _fp16({"first_stage_model." + k: v for k, v in diffusers_convert.convert_vae_state_dict(vae.state_dict()).items()})


def _text_encoder_state(diffusers_convert, comfy_utils) -> dict:
    import torch
    from transformers import CLIPTextConfig, CLIPTextModelWithProjection

    torch.manual_seed(SEED + 2)
    text_encoder = CLIPTextModelWithProjection(CLIPTextConfig(**TEXT_ENCODER_CONFIG)).half()
    # ComfyUI's own saving path for the refiner's text encoder (SDXLRefiner.process_clip_state_dict_for_saving).
    state = {"clip_g.transformer." + k: v for k, v in text_encoder.state_dict().items()}
    state = diffusers_convert.convert_text_enc_state_dict_v20(state, "clip_g")
    state.pop("clip_g.transformer.text_model.embeddings.position_ids", None)
    return _fp16(comfy_utils.state_dict_prefix_replace(state, {"clip_g": "conditioner.embedders.0.model"}))


def _build(models_root: Path, comfy_root: Path) -> None:
    from safetensors.torch import save_file

    sys.path.insert(0, str(comfy_root))
    import comfy.cli_args

    comfy.cli_args.args.cpu = True  # before comfy.model_management (imported by the detector) probes for a GPU
    import comfy.diffusers_convert
    import comfy.model_detection
    import comfy.utils

    start = time.time()
    state = _unet_state(comfy.utils)
    detected = comfy.model_detection.model_config_from_unet(state, "model.diffusion_model.")
    if type(detected).__name__ != "SDXLRefiner":
        raise RuntimeError(f"ComfyUI detects the stand-in as {type(detected).__name__}, not SDXLRefiner")
    state.update(_vae_state(comfy.diffusers_convert))
    state.update(_text_encoder_state(comfy.diffusers_convert, comfy.utils))
    (models_root / "checkpoints").mkdir(parents=True)
    save_file(state, str(models_root / "checkpoints" / f"{NAME}.safetensors"), metadata={"format": "pt"})
    (models_root / _COMPLETE).write_text(json.dumps({"recipe": RECIPE_TAG, "seed": SEED}) + "\n")
    print(f"SDXL refiner stand-in {RECIPE_TAG} built in {time.time() - start:.0f} s", file=sys.stderr)


if __name__ == "__main__":
    script_main(lambda models_root, comfyui: _build(models_root, Path(comfyui)), sys.argv[1:], __doc__.splitlines()[0])
