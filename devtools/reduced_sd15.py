"""A reduced SD1.5 stand-in: the random InstaFlow recipe on a UNet a tenth the size, cached.

The full-size random InstaFlow (random_models.py) costs about 0.8 s per UNet call at 64x64 on the test
machine, almost all of it reading 3.4 GB of fp32 weights, and about 4.5 s per load. Tests whose subject
is not the UNet's size (training, inversion, interpolation, guards and errors, the per-prompt cost) run
on this stand-in instead:

    cache_root()/fixtures/<tag>/models/
        checkpoints/instaflow-reduced-sd15.safetensors   one fp16 file, SD1.5's LDM/CompVis key layout:
                                                         the reduced UNet, full-size CLIP ViT-L and VAE
        reference/instaflow-reduced-sd15/                the same weights as a diffusers folder (fp32),
                                                         read only by the tests' references (no ComfyUI
                                                         model folder is named "reference")

The UNet is SD1.5's diffusers config with two levels instead of four: block_out_channels [320, 640],
attention in the first level only, one res block per level, the mid block kept: 8.0e7 parameters
instead of 8.6e8. ComfyUI reads an LDM-layout UNet's architecture from its tensor shapes and matches
SD1.5 on five fields only (comfy/supported_models.py SD15.unet_config: 320 model channels, a 768-wide
context, no linear projections, no ADM input, no temporal attention), so this file loads as SD1.5 in
every loader: CheckpointLoaderSimple, the pack's InstaFlowLoader and the rest. A diffusers-layout copy
would not (comfy/model_detection.py unet_config_from_diffusers_unet accepts only the exact published
configs), which is why the loadable file is the single file and the folder is the reference's.

Weights: the random InstaFlow recipe (random_models.condition_unet / condition_vae, rounded to fp16
values, so the fp16 file and the fp32 folder hold the same numbers), from fixed seeds.
Bump VERSION whenever what is written changes.
"""
from __future__ import annotations

import sys
import time
from dataclasses import dataclass
from pathlib import Path

from devtools import random_models
from devtools.cached_fixture import ensure_built, script_main
from devtools.comfyui_source import comfyui_path

FAMILY = "instaflow-reduced-sd15"
VERSION = 1
NAME = "instaflow-reduced-sd15"

UNET_CONFIG = dict(
    random_models.UNET_CONFIG,
    down_block_types=["CrossAttnDownBlock2D", "DownBlock2D"],
    up_block_types=["UpBlock2D", "CrossAttnUpBlock2D"],
    block_out_channels=[320, 640],
    layers_per_block=1,
)
# ComfyUI's description of the same layout, for its key map (comfy.utils.unet_to_diffusers).
COMFY_UNET = {
    "num_res_blocks": [1, 1],
    "channel_mult": [1, 2],
    "transformer_depth": [1, 0],
    "transformer_depth_output": [1, 1, 0, 0],
    "transformer_depth_middle": 1,
}


@dataclass(frozen=True)
class ReducedInstaFlow:
    """Reads like random_models.RandomInstaFlow, so a test module can use either."""
    models_root: Path  # has checkpoints/ (shown to the server) and reference/
    diffusers_dir: Path  # the reference's diffusers folder (not loadable by ComfyUI, see above)
    single_file: Path  # models_root/checkpoints/<NAME>.safetensors
    name: str  # what the pack's loaders are given: the single file's name
    tag: str  # its cache tag; fixtures made from it put it in theirs, so rebuilding it rebuilds them


# Fixtures built from the stand-in (devtools/random_lora.py, random_weight_delta.py, random_perflow_sd15.py,
# random_controlnet.py) name their files with this prefix, so that the server lists them next to their full-size twins.
TWIN_PREFIX = "reduced-"


def ensure_reduced_instaflow() -> ReducedInstaFlow:
    """The cached stand-in; builds it on first use (about 20 s, 1.7 GB)."""
    tag = f"{FAMILY}-v{VERSION}-{random_models.RECIPE_TAG}"
    root = ensure_built(tag, FAMILY, Path(__file__).resolve(), ["--arg", f"comfy_root={comfyui_path()}"])
    single_file = root / "checkpoints" / f"{NAME}.safetensors"
    return ReducedInstaFlow(root, root / "reference" / NAME, single_file, single_file.name, tag)


# ----------------------------------------------------------------------------------------------
# The build runs in a subprocess (python reduced_sd15.py --build-into DIR --arg comfy_root=DIR).


def _check_detected_as_sd15(state: dict, comfy_root: Path) -> None:
    import comfy.cli_args

    comfy.cli_args.args.cpu = True  # before comfy.model_management (imported by the detector) probes for a GPU
    import comfy.model_detection

    prefix = comfy.model_detection.unet_prefix_from_state_dict(state)
    config = comfy.model_detection.model_config_from_unet(dict(state), prefix)
    if type(config).__name__ != "SD15":
        raise RuntimeError(f"ComfyUI ({comfy_root}) detects the reduced UNet as {type(config).__name__}, not SD15")


def _build(models_root: Path, comfy_root: str) -> None:
    import torch
    from diffusers import AutoencoderKL, UNet2DConditionModel
    from safetensors.torch import save_file
    from transformers import CLIPTextConfig, CLIPTextModel

    start = time.time()
    comfy_root = Path(comfy_root)
    torch.manual_seed(random_models.SEED)
    unet = UNet2DConditionModel(**UNET_CONFIG)
    torch.manual_seed(random_models.SEED + 1)
    vae = AutoencoderKL(**random_models.VAE_CONFIG)
    text_encoder = CLIPTextModel(CLIPTextConfig(**random_models.TEXT_ENCODER_CONFIG))
    random_models.condition_unet(unet)
    random_models.condition_vae(vae)
    random_models.round_to_fp16(unet, vae, text_encoder)
    random_models.write_diffusers_folder(models_root / "reference" / NAME, unet, vae, text_encoder, comfy_root)
    state = random_models.ldm_state_dict(unet.state_dict(), vae.state_dict(), text_encoder.state_dict(), comfy_root,
                                         COMFY_UNET)
    _check_detected_as_sd15(state, comfy_root)
    (models_root / "checkpoints").mkdir(parents=True)
    save_file(state, str(models_root / "checkpoints" / f"{NAME}.safetensors"), metadata={"format": "pt"})
    print(f"reduced SD1.5 stand-in built in {time.time() - start:.0f} s", file=sys.stderr)


if __name__ == "__main__":
    script_main(lambda models_root, comfy_root: _build(models_root, comfy_root), sys.argv[1:], __doc__.splitlines()[0])
