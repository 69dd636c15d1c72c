"""A random-weight stand-in for a PeRFlow SDXL diffusers folder (hansyan/perflow-sdxl-dreamshaper), cached.

The real SDXL UNet has 2.6e9 parameters: 10 GB in fp32, which ComfyUI uses for UNets on the CPU, too much
next to the reference's copy on the 24 GB test machine. The stand-in keeps what ComfyUI and the
official pipeline look at and shrinks the rest:

    cache_root()/fixtures/<tag>/models/
        perflow/perflow-random-sdxl/                 what PeRFlowLoader is pointed at
            model_index.json                         StableDiffusionXLPipeline, as the hub repo
            unet/config.json
            unet/diffusion_pytorch_model.v0-fix.safetensors    fp16, ComfyUI's LDM key layout (see below)
            vae/config.json + diffusion_pytorch_model.v0-fix.safetensors     (scaling_factor 0.13025)
            text_encoder/config.json + model.v0-fix.safetensors              CLIP ViT-L, full size
            text_encoder_2/config.json + model.v0-fix.safetensors            OpenCLIP ViT-bigG as
                                                     CLIPTextModelWithProjection, full size (694M, fp16)
            tokenizer/, tokenizer_2/                 CLIP BPE files; tokenizer_2 pads with "!" (id 0)
            scheduler/scheduler_config.json          SDXL's EulerDiscreteScheduler (replaced by PeRFlow's)
        reference/perflow-random-sdxl-unet/          the same UNet in diffusers' layout, for the reference
                                                     only (no ComfyUI model folder is named "reference")

The UNet is SDXL base's unet/config.json except block_out_channels [320, 320, 320] (real: 320, 640,
1280) and attention_head_dim [5, 5, 5] (heads of 64 channels, as ComfyUI assumes for SDXL): 4.0e8
parameters instead of 2.6e9. It keeps transformer depths 1/2/10 per level, context_dim 2048, linear
projections and the 2816-wide "text_time" added embedding (pooled bigG text + 6 size embeddings).
ComfyUI's detector matches SDXL on exactly those (comfy/supported_models.py SDXL.unet_config has no
channel_mult) when it reads LDM-layout keys, and the build checks that
comfy.model_detection.model_config_from_unet(sd, "") returns the SDXL class.

The honest compromise: ComfyUI's detector for DIFFUSERS-layout UNet keys
(model_detection.unet_config_from_diffusers_unet) only accepts exact known configs, so a diffusers-keyed
shrunken SDXL UNet would be refused by any ComfyUI loader. The stand-in's unet file is therefore
written with ComfyUI's LDM key names (no prefix; comfy.utils.unet_to_diffusers gives the map) under
the diffusers file name. A real PeRFlow SDXL folder has diffusers keys there; loading those goes
through ComfyUI's diffusers-key conversion, which this fixture cannot exercise. diffusers itself
cannot read the stand-in's unet file, which is why the reference reads the diffusers-layout copy.

Weights are seeded, conditioned like the SD1.5 fixtures (random_models.condition_unet / condition_vae,
and the PeRFlow decoder calibration of random_perflow_sd15.calibrated_vae, for the same reason: a random
UNet does not denoise) and rounded to fp16 values, so fp16 files and fp32 copies hold the same numbers.
Measured sizes: see ensure_random_perflow_sdxl. Bump VERSION whenever what is written changes.
"""
from __future__ import annotations

import json
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from devtools import random_models
from devtools.cached_fixture import ensure_built, script_main
from devtools.comfyui_source import comfyui_path
from devtools.random_perflow_sd15 import calibrated_vae
from devtools.random_sdxl_refiner import TEXT_ENCODER_CONFIG as BIGG_CONFIG

FAMILY = "perflow-random-sdxl"
VERSION = 1
NAME = "perflow-random-sdxl"
VARIANT = "v0-fix"
SEED = 20240425  # PeRFlow-SDXL's release date; any fixed value works
SCALING_FACTOR = 0.13025

UNET_CONFIG = {  # stabilityai/stable-diffusion-xl-base-1.0 unet/config.json, narrowed (see above)
    "sample_size": 128,
    "in_channels": 4,
    "out_channels": 4,
    "down_block_types": ["DownBlock2D", "CrossAttnDownBlock2D", "CrossAttnDownBlock2D"],
    "up_block_types": ["CrossAttnUpBlock2D", "CrossAttnUpBlock2D", "UpBlock2D"],
    "block_out_channels": [320, 320, 320],
    "attention_head_dim": [5, 5, 5],
    "layers_per_block": 2,
    "transformer_layers_per_block": [1, 2, 10],
    "cross_attention_dim": 2048,
    "use_linear_projection": True,
    "addition_embed_type": "text_time",
    "addition_time_embed_dim": 256,
    "projection_class_embeddings_input_dim": 2816,
    "flip_sin_to_cos": True,
    "freq_shift": 0,
    "norm_num_groups": 32,
}
# ComfyUI's description of the same layout, for its key map (comfy.utils.unet_to_diffusers).
_COMFY_UNET = {
    "num_res_blocks": [2, 2, 2],
    "channel_mult": [1, 1, 1],
    "transformer_depth": [0, 0, 2, 2, 10, 10],
    "transformer_depth_output": [0, 0, 0, 2, 2, 2, 10, 10, 10],
    "transformer_depth_middle": 10,
}
SCHEDULER_CONFIG = {  # SDXL base's scheduler; PeRFlow's scripts build their scheduler from its betas
    "_class_name": "EulerDiscreteScheduler",
    "beta_end": 0.012,
    "beta_schedule": "scaled_linear",
    "beta_start": 0.00085,
    "interpolation_type": "linear",
    "num_train_timesteps": 1000,
    "prediction_type": "epsilon",
    "steps_offset": 1,
    "timestep_spacing": "leading",
    "trained_betas": None,
    "use_karras_sigmas": False,
}


@dataclass(frozen=True)
class RandomPeRFlowSDXL:
    models_root: Path  # has perflow/
    folder: Path  # models_root/perflow/<name>: the diffusers folder PeRFlowLoader loads
    reference_unet: Path  # the UNet in diffusers' layout (config.json + fp16 safetensors)
    name: str  # PeRFlowLoader's ckpt_name
    variant: str


def ensure_random_perflow_sdxl() -> RandomPeRFlowSDXL:
    """The cached stand-in; builds it on first use."""
    root = ensure_built(f"{FAMILY}-v{VERSION}", FAMILY, Path(__file__).resolve(),
                        ["--arg", f"comfy_root={comfyui_path()}"])
    return RandomPeRFlowSDXL(root, root / "perflow" / NAME, root / "reference" / f"{NAME}-unet", NAME, VARIANT)


# ----------------------------------------------------------------------------------------------
# The build runs in a subprocess (python random_perflow_sdxl.py --build-into DIR --arg comfy_root=DIR).


def _tokenizer(folder: Path, comfy_root: Path, pad_token: str | None) -> None:
    random_models.write_tokenizer(folder, comfy_root)
    if pad_token is None:
        return
    for name in ("tokenizer_config.json", "special_tokens_map.json"):
        path = folder / name
        config = json.loads(path.read_text())
        config["pad_token"] = pad_token
        path.write_text(json.dumps(config, indent=2) + "\n")


def _ldm_unet(unet, comfy_root: Path) -> dict:
    """The UNet's weights under ComfyUI's LDM names; checks ComfyUI detects them as SDXL."""
    sys.path.insert(0, str(comfy_root))
    import comfy.cli_args

    comfy.cli_args.args.cpu = True  # before comfy.model_management (imported by the detector) probes for a GPU
    import comfy.model_detection
    import comfy.utils

    key_map = comfy.utils.unet_to_diffusers(_COMFY_UNET)  # diffusers key -> LDM key
    state = unet.state_dict()
    missing = sorted(set(state) - set(key_map))
    if missing:
        raise RuntimeError(f"no LDM name for UNet keys {missing[:5]}")
    ldm = {key_map[key]: tensor.half().contiguous() for key, tensor in state.items()}
    detected = comfy.model_detection.model_config_from_unet(ldm, "")
    if type(detected).__name__ != "SDXL":
        raise RuntimeError(f"ComfyUI detects the SDXL stand-in as {type(detected).__name__}, not SDXL")
    return ldm


def _build(models_root: Path, comfy_root: str) -> None:
    import diffusers
    import torch
    from diffusers import AutoencoderKL, UNet2DConditionModel
    from safetensors.torch import save_file
    from transformers import CLIPTextConfig, CLIPTextModel, CLIPTextModelWithProjection

    start = time.time()
    comfy_root = Path(comfy_root)
    folder = models_root / "perflow" / NAME
    folder.mkdir(parents=True)
    torch.manual_seed(SEED)
    unet = UNet2DConditionModel(**UNET_CONFIG)
    random_models.condition_unet(unet)
    random_models.round_to_fp16(unet)
    unet.half().save_pretrained(models_root / "reference" / f"{NAME}-unet", safe_serialization=True)
    unet.save_config(folder / "unet")
    save_file(_ldm_unet(unet, comfy_root), str(folder / "unet" / f"diffusion_pytorch_model.{VARIANT}.safetensors"),
              metadata={"format": "pt"})
    del unet

    vae = AutoencoderKL(**dict(random_models.VAE_CONFIG, scaling_factor=SCALING_FACTOR))
    random_models.condition_vae(vae)
    random_models.round_to_fp16(vae)
    vae.load_state_dict(calibrated_vae(vae.state_dict(), "", torch.float32))
    vae.save_pretrained(folder / "vae", safe_serialization=True, variant=VARIANT)
    clip_l = CLIPTextModel(CLIPTextConfig(**random_models.TEXT_ENCODER_CONFIG))
    random_models.round_to_fp16(clip_l)
    clip_l.save_pretrained(folder / "text_encoder", safe_serialization=True, variant=VARIANT)
    del vae, clip_l
    clip_g = CLIPTextModelWithProjection(CLIPTextConfig(**BIGG_CONFIG)).half()  # SDXL ships it in fp16
    clip_g.save_pretrained(folder / "text_encoder_2", safe_serialization=True, variant=VARIANT)
    del clip_g

    _tokenizer(folder / "tokenizer", comfy_root, None)
    _tokenizer(folder / "tokenizer_2", comfy_root, "!")  # SDXL's tokenizer_2 pads with "!" (id 0)
    (folder / "scheduler").mkdir()
    scheduler = dict(SCHEDULER_CONFIG, _diffusers_version=diffusers.__version__)
    (folder / "scheduler" / "scheduler_config.json").write_text(json.dumps(scheduler, indent=2) + "\n")
    model_index = {
        "_class_name": "StableDiffusionXLPipeline",
        "_diffusers_version": diffusers.__version__,
        "force_zeros_for_empty_prompt": True,
        "scheduler": ["diffusers", "EulerDiscreteScheduler"],
        "text_encoder": ["transformers", "CLIPTextModel"],
        "text_encoder_2": ["transformers", "CLIPTextModelWithProjection"],
        "tokenizer": ["transformers", "CLIPTokenizer"],
        "tokenizer_2": ["transformers", "CLIPTokenizer"],
        "unet": ["diffusers", "UNet2DConditionModel"],
        "vae": ["diffusers", "AutoencoderKL"],
    }
    (folder / "model_index.json").write_text(json.dumps(model_index, indent=2) + "\n")
    print(f"PeRFlow SDXL stand-in built in {time.time() - start:.0f} s", file=sys.stderr)


if __name__ == "__main__":
    script_main(_build, sys.argv[1:], __doc__.splitlines()[0])
