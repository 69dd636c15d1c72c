"""A full-size SD1.5-architecture "InstaFlow" model with random weights, built once and cached.

Real InstaFlow weights cannot be downloaded in the test environment, so the suite runs on a model
that has exactly the architecture and file layout of XCLiu/instaflow_0_9B_from_sd_1_5
(REFERENCE.md section 2) but seeded random weights:

    cache_root()/fixtures/<RECIPE_TAG>/models/
        diffusers/instaflow-random-sd15/            the diffusers folder (fp32), like the hub repo:
            model_index.json                        "_class_name": "RectifiedFlowPipeline"
            unet/ vae/ text_encoder/                config.json + fp32 .safetensors (standard names)
            tokenizer/                              ComfyUI's comfy/sd1_tokenizer files
            scheduler/scheduler_config.json         PNDMScheduler (unused by InstaFlow)
        checkpoints/instaflow-random-sd15.safetensors
                                                    the same weights as one fp16 file in the original
                                                    LDM/CompVis key layout of SD1.5 checkpoints

The folder names match ComfyUI's model folders, so models_root can be handed to ComfyUI as an extra
model path. Every weight is rounded to an fp16-representable value, so the fp16 single file holds
exactly the values of the fp32 folder.

Weight scales, chosen after measuring one-step generations at 64x64 (tests/test_random_models.py
asserts the resulting behaviour). Default PyTorch/diffusers init gives a usable but weak model:
- unet.conv_out x3: v has std ~0.33 with default init; x3 gives std ~1, so latent = noise + v has
  a strong v component and flipping the sign of v changes the image by ~32/255 on average.
- unet.time_embedding.linear_1 x3: makes the timestep matter (mean image change t=1000 vs t=500
  ~4/255 -> ~8/255, t=1000 vs t=999 ~0.8/255 -> ~1.6/255).
- time_emb_proj x3 in every UNet resnet: doubles the timestep's effect again (t=1000 vs t=1
  ~6.6/255 -> ~11/255, vs t=999 ~1.6/255 -> ~3/255), so a wrong timestep mapping fails the
  2/255 equivalence tolerance clearly; larger factors saturate (the group norms absorb them).
- cross-attention (attn2.to_out.0) x2 in every UNet transformer block: a stronger prompt influence.
- vae.decoder.conv_out x0.8: the decoded image has std ~0.12 in [0,1], mean ~0.42 and ~0.3% of
  pixels clipped (x1 gave std ~0.15 with ~2% clipped).
- vae.quant_conv: the 4 "mean" output channels x16, so VAE-encoded images have latents of about
  the real SD scale (std ~5.5 before the 0.18215 scaling, ~1 after); the 4 "logvar" channels are set to a
  constant -10 (posterior std e^-5), so sampling the posterior is practically its mode.
Bump RECIPE_TAG whenever anything here changes what is written.

The single file is written with ComfyUI's own key maps (comfy.utils.unet_to_diffusers and
comfy.diffusers_convert.convert_vae_state_dict), imported in the build subprocess only: importing
comfy has side effects (argument parsing) that must not leak into the test process.
"""
from __future__ import annotations

import json
import shutil
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from devtools.cached_fixture import ensure_built, script_main
from devtools.comfyui_source import comfyui_path

RECIPE_TAG = "instaflow-random-sd15-v3"
NAME = "instaflow-random-sd15"
SEED = 20231012  # InstaFlow's arXiv month; any fixed value works
SCALING_FACTOR = 0.18215

UNET_CONV_OUT_SCALE = 3.0
UNET_TIME_EMBEDDING_SCALE = 3.0
UNET_TIME_EMB_PROJ_SCALE = 3.0
UNET_CROSS_ATTN_OUT_SCALE = 2.0
VAE_DECODER_CONV_OUT_SCALE = 0.8
VAE_QUANT_MEAN_SCALE = 16.0
VAE_QUANT_LOGVAR = -10.0

_COMPLETE = ".complete"

# Configs of runwayml/stable-diffusion-v1-5, which InstaFlow-0.9B keeps unchanged.
UNET_CONFIG = {
    "sample_size": 64,
    "in_channels": 4,
    "out_channels": 4,
    "center_input_sample": False,
    "flip_sin_to_cos": True,
    "freq_shift": 0,
    "down_block_types": ["CrossAttnDownBlock2D", "CrossAttnDownBlock2D", "CrossAttnDownBlock2D", "DownBlock2D"],
    "up_block_types": ["UpBlock2D", "CrossAttnUpBlock2D", "CrossAttnUpBlock2D", "CrossAttnUpBlock2D"],
    "block_out_channels": [320, 640, 1280, 1280],
    "layers_per_block": 2,
    "downsample_padding": 1,
    "mid_block_scale_factor": 1,
    "act_fn": "silu",
    "norm_num_groups": 32,
    "norm_eps": 1e-5,
    "cross_attention_dim": 768,
    "attention_head_dim": 8,
}
VAE_CONFIG = {
    "in_channels": 3,
    "out_channels": 3,
    "down_block_types": ["DownEncoderBlock2D"] * 4,
    "up_block_types": ["UpDecoderBlock2D"] * 4,
    "block_out_channels": [128, 256, 512, 512],
    "layers_per_block": 2,
    "act_fn": "silu",
    "latent_channels": 4,
    "norm_num_groups": 32,
    "sample_size": 512,
    "scaling_factor": SCALING_FACTOR,
}
TEXT_ENCODER_CONFIG = {  # openai/clip-vit-large-patch14 text tower, as in comfy/sd1_clip_config.json
    "vocab_size": 49408,
    "hidden_size": 768,
    "intermediate_size": 3072,
    "projection_dim": 768,
    "num_hidden_layers": 12,
    "num_attention_heads": 12,
    "max_position_embeddings": 77,
    "hidden_act": "quick_gelu",
    "layer_norm_eps": 1e-5,
    "attention_dropout": 0.0,
    "initializer_range": 0.02,
    "initializer_factor": 1.0,
    "pad_token_id": 1,
    "bos_token_id": 0,
    "eos_token_id": 49407,
}
SCHEDULER_CONFIG = {
    "_class_name": "PNDMScheduler",
    "beta_end": 0.012,
    "beta_schedule": "scaled_linear",
    "beta_start": 0.00085,
    "clip_sample": False,
    "num_train_timesteps": 1000,
    "prediction_type": "epsilon",
    "set_alpha_to_one": False,
    "skip_prk_steps": True,
    "steps_offset": 1,
    "timestep_spacing": "leading",
    "trained_betas": None,
}
TOKENIZER_FILES = ("vocab.json", "merges.txt", "special_tokens_map.json", "tokenizer_config.json")


@dataclass(frozen=True)
class RandomInstaFlow:
    models_root: Path  # has diffusers/ and checkpoints/, like ComfyUI's models folder
    diffusers_dir: Path  # models_root/diffusers/<name>
    single_file: Path  # models_root/checkpoints/<name>.safetensors
    name: str


def _describe(models_root: Path) -> RandomInstaFlow:
    return RandomInstaFlow(
        models_root=models_root,
        diffusers_dir=models_root / "diffusers" / NAME,
        single_file=models_root / "checkpoints" / f"{NAME}.safetensors",
        name=NAME,
    )


def ensure_random_instaflow() -> RandomInstaFlow:
    """The cached random model; builds it on first use (~30 s on 2 CPU cores, 6.4 GB)."""
    models_root = ensure_built(RECIPE_TAG, NAME, Path(__file__).resolve(), ["--arg", f"comfyui={comfyui_path()}"])
    return _describe(models_root)


# ----------------------------------------------------------------------------------------------
# The build itself runs in a subprocess (python random_models.py --build-into DIR --arg comfyui=DIR).


def condition_unet(unet) -> None:
    """The UNet weight scales described in the module docstring (any UNet2DConditionModel)."""
    import torch

    with torch.no_grad():
        for layer, scale in [(unet.conv_out, UNET_CONV_OUT_SCALE), (unet.time_embedding.linear_1, UNET_TIME_EMBEDDING_SCALE)]:
            layer.weight.mul_(scale)
            layer.bias.mul_(scale)
        for name, module in unet.named_modules():
            if name.endswith("time_emb_proj"):
                module.weight.mul_(UNET_TIME_EMB_PROJ_SCALE)
                module.bias.mul_(UNET_TIME_EMB_PROJ_SCALE)
            if name.endswith("attn2"):
                module.to_out[0].weight.mul_(UNET_CROSS_ATTN_OUT_SCALE)
                module.to_out[0].bias.mul_(UNET_CROSS_ATTN_OUT_SCALE)


def condition_vae(vae) -> None:
    """The VAE weight scales described in the module docstring (any SD/SDXL AutoencoderKL)."""
    import torch

    with torch.no_grad():
        vae.decoder.conv_out.weight.mul_(VAE_DECODER_CONV_OUT_SCALE)
        vae.decoder.conv_out.bias.mul_(VAE_DECODER_CONV_OUT_SCALE)
        latent = VAE_CONFIG["latent_channels"]
        vae.quant_conv.weight[:latent].mul_(VAE_QUANT_MEAN_SCALE)
        vae.quant_conv.bias[:latent].mul_(VAE_QUANT_MEAN_SCALE)
        vae.quant_conv.weight[latent:].zero_()
        vae.quant_conv.bias[latent:].fill_(VAE_QUANT_LOGVAR)


def round_to_fp16(*models) -> None:
    """Every floating-point weight rounded to an fp16-representable value (fp16 files == fp32 copies)."""
    import torch

    with torch.no_grad():
        for model in models:
            for tensor in model.state_dict().values():
                if tensor.is_floating_point():
                    tensor.copy_(tensor.half().float())
            model.eval()


def _random_models():
    import torch
    from diffusers import AutoencoderKL, UNet2DConditionModel
    from transformers import CLIPTextConfig, CLIPTextModel

    torch.manual_seed(SEED)
    unet = UNet2DConditionModel(**UNET_CONFIG)
    vae = AutoencoderKL(**VAE_CONFIG)
    text_encoder = CLIPTextModel(CLIPTextConfig(**TEXT_ENCODER_CONFIG))
    condition_unet(unet)
    condition_vae(vae)
    round_to_fp16(unet, vae, text_encoder)
    return unet, vae, text_encoder


def write_tokenizer(tokenizer: Path, comfy_root: Path) -> None:
    """The CLIP BPE tokenizer files (ComfyUI's comfy/sd1_tokenizer copy) as a diffusers tokenizer/ folder."""
    tokenizer.mkdir()
    for name in TOKENIZER_FILES:
        shutil.copyfile(comfy_root / "comfy" / "sd1_tokenizer" / name, tokenizer / name)
    # ComfyUI's copy says model_max_length 8192 (ComfyUI chunks prompts itself); the SD1.5/InstaFlow
    # tokenizer says 77, and the official pipeline pads to tokenizer.model_max_length.
    config_path = tokenizer / "tokenizer_config.json"
    config = json.loads(config_path.read_text())
    config["model_max_length"] = 77
    config_path.write_text(json.dumps(config, indent=2) + "\n")


def write_diffusers_folder(folder: Path, unet, vae, text_encoder, comfy_root: Path) -> None:
    import diffusers

    folder.mkdir(parents=True)
    unet.save_pretrained(folder / "unet", safe_serialization=True)
    vae.save_pretrained(folder / "vae", safe_serialization=True)
    text_encoder.save_pretrained(folder / "text_encoder", safe_serialization=True)

    write_tokenizer(folder / "tokenizer", comfy_root)

    (folder / "scheduler").mkdir()
    scheduler = dict(SCHEDULER_CONFIG, _diffusers_version=diffusers.__version__)
    (folder / "scheduler" / "scheduler_config.json").write_text(json.dumps(scheduler, indent=2) + "\n")

    model_index = {
        "_class_name": "RectifiedFlowPipeline",
        "_diffusers_version": diffusers.__version__,
        # The hub repo ships a safety checker and its feature extractor; they are optional
        # components of the pipeline and not part of the fixture (null = absent, diffusers' convention).
        "feature_extractor": [None, None],
        "requires_safety_checker": False,
        "safety_checker": [None, None],
        "scheduler": ["diffusers", "PNDMScheduler"],
        "text_encoder": ["transformers", "CLIPTextModel"],
        "tokenizer": ["transformers", "CLIPTokenizer"],
        "unet": ["diffusers", "UNet2DConditionModel"],
        "vae": ["diffusers", "AutoencoderKL"],
    }
    (folder / "model_index.json").write_text(json.dumps(model_index, indent=2) + "\n")


# ComfyUI's description of the SD1.5 UNet (comfy/model_detection.py, unet_config_from_diffusers_unet).
_COMFY_SD15_UNET = {
    "num_res_blocks": [2, 2, 2, 2],
    "channel_mult": [1, 2, 4, 4],
    "transformer_depth": [1, 1, 1, 1, 1, 1, 0, 0],
    "transformer_depth_output": [1, 1, 1, 1, 1, 1, 1, 1, 1, 0, 0, 0],
    "transformer_depth_middle": 1,
}


def ldm_unet_state_dict(unet_sd, comfy_root: Path, comfy_unet: dict = _COMFY_SD15_UNET) -> dict:
    """A diffusers UNet state dict under its LDM keys (input_blocks.*, ..., no prefix), tensors unchanged;
    `comfy_unet` is ComfyUI's description of the UNet's layout (SD1.5's unless a stand-in is narrower)."""
    sys.path.insert(0, str(comfy_root))
    import comfy.utils

    unet_map = comfy.utils.unet_to_diffusers(comfy_unet)  # diffusers key -> LDM key
    missing = sorted(set(unet_sd) - set(unet_map))
    if missing:
        raise RuntimeError(f"no LDM name for UNet keys {missing[:5]}")
    return {unet_map[key]: tensor for key, tensor in unet_sd.items()}


def ldm_state_dict(unet_sd, vae_sd, text_encoder_sd, comfy_root: Path, comfy_unet: dict = _COMFY_SD15_UNET):
    """diffusers/transformers state dicts -> one SD1.5 LDM-layout state dict (fp16); `comfy_unet` is
    ComfyUI's description of the UNet's layout (SD1.5's unless a stand-in is narrower)."""
    sys.path.insert(0, str(comfy_root))
    import comfy.diffusers_convert

    out = {"model.diffusion_model." + key: tensor for key, tensor in ldm_unet_state_dict(unet_sd, comfy_root, comfy_unet).items()}
    for key, tensor in comfy.diffusers_convert.convert_vae_state_dict(vae_sd).items():
        out["first_stage_model." + key] = tensor
    for key, tensor in text_encoder_sd.items():  # text_model.* -> cond_stage_model.transformer.text_model.*
        out["cond_stage_model.transformer." + key] = tensor
    expected = len(unet_sd) + len(vae_sd) + len(text_encoder_sd)
    if len(out) != expected:
        raise RuntimeError(f"key collision in the LDM conversion: {len(out)} keys for {expected} tensors")
    return {key: tensor.half().contiguous() for key, tensor in out.items()}


def _build(models_root: Path, comfy_root: Path) -> None:
    from safetensors.torch import save_file

    start = time.time()
    unet, vae, text_encoder = _random_models()
    write_diffusers_folder(models_root / "diffusers" / NAME, unet, vae, text_encoder, comfy_root)
    state = ldm_state_dict(unet.state_dict(), vae.state_dict(), text_encoder.state_dict(), comfy_root)
    del unet, vae, text_encoder
    (models_root / "checkpoints").mkdir(parents=True)
    save_file(state, str(models_root / "checkpoints" / f"{NAME}.safetensors"), metadata={"format": "pt"})
    (models_root / _COMPLETE).write_text(json.dumps({"recipe": RECIPE_TAG, "seed": SEED}) + "\n")
    print(f"random InstaFlow fixture {RECIPE_TAG} built in {time.time() - start:.0f} s", file=sys.stderr)


if __name__ == "__main__":
    script_main(lambda models_root, comfyui: _build(models_root, Path(comfyui)), sys.argv[1:], __doc__.splitlines()[0])
