"""A PeRFlow SD1.5 diffusers folder (the layout of hansyan/perflow-sd15-dreamshaper) with random weights, cached.

The weights are the random InstaFlow fixture's (devtools/random_models.py): its unet/, text_encoder/,
tokenizer/ and scheduler/ files are hard-linked (copied where links are impossible). Only the pipeline
description differs, as in the hub repositories, which are full StableDiffusionPipeline folders that
PeRFlow's scripts load with StableDiffusionPipeline.from_pretrained and then give a PeRFlowScheduler
built from scheduler/'s betas:

    cache_root()/fixtures/<tag>/models/
        perflow/perflow-random-sd15/
            model_index.json        "_class_name": "StableDiffusionPipeline" (inferred from the scripts;
                                    the hub file itself was not available); safety checker absent
            unet/ text_encoder/     config.json + diffusion_pytorch_model.safetensors / model.safetensors
            vae/                    the InstaFlow VAE with a PeRFlow calibration of its decoder (below)
            tokenizer/              CLIP BPE files
            scheduler/scheduler_config.json   SD1.5's PNDMScheduler config (only its betas are used)
        checkpoints/perflow-random-sd15.safetensors
                                    the same weights as one fp16 SD1.5 file in the LDM key layout (the
                                    InstaFlow single file with the calibrated VAE tensors), for stock
                                    CheckpointLoaderSimple + ModelSamplingPeRFlow graphs

VAE calibration. A random UNet does not denoise, so PeRFlow's windows multiply the starting noise by
sqrt(abar(0) / abar(1)) = 14.64 over a run (diff_eps), and the final latents have a std of ~25 instead of
SD's ~1. There the random decoder is nearly scale-invariant and dull: at 64x64, 4 steps, cfg 4.5, a UNet
timestep of 1000 t - 1 changed the image by only 2.4/255 and the wrong window at boundaries by 1.5/255.
The decoder's post_quant_conv is therefore divided by 14.64 (the latents reach it at the scale the VAE
was conditioned for) and its conv_out is doubled again (image std ~0.22, ~10% clipped pixels): then
1000 t - 1 changes the image by ~5.3/255, the wrong window by ~6.6/255, ddim_eps instead of diff_eps
by ~8.9/255, InstaFlow's sign by ~50/255 (reference-only measurements; the equivalence tests record
theirs). Calibrated tensors are rounded to fp16 values, so the fp16 single file equals the folder.

The tag contains the InstaFlow recipe tag, so rebuilding that fixture rebuilds this one.
ensure_reduced_perflow_sd15 applies the same recipe to the reduced SD1.5 stand-in (devtools/reduced_sd15.py):
checkpoints/reduced-perflow-random-sd15.safetensors, and its diffusers folder under reference/ for the reference only.
"""
from __future__ import annotations

import json
import os
import shutil
import sys
from dataclasses import dataclass
from pathlib import Path

from devtools import random_models
from devtools.cached_fixture import ensure_built, script_main

FAMILY = "perflow-random-sd15"
VERSION = 1
NAME = "perflow-random-sd15"
LINKED = ("unet", "text_encoder", "tokenizer", "scheduler")
VAE_FILE = "diffusion_pytorch_model.safetensors"
# VAE tensor name (diffusers and LDM layouts share it after their prefixes) -> calibration factor.
POST_QUANT_SCALE = 1 / 14.64
DECODER_CONV_OUT_SCALE = 2.0
CALIBRATION = {"post_quant_conv.weight": POST_QUANT_SCALE, "post_quant_conv.bias": POST_QUANT_SCALE,
               "decoder.conv_out.weight": DECODER_CONV_OUT_SCALE, "decoder.conv_out.bias": DECODER_CONV_OUT_SCALE}
LDM_VAE_PREFIX = "first_stage_model."


@dataclass(frozen=True)
class RandomPeRFlowSD15:
    models_root: Path  # has perflow/ and checkpoints/
    folder: Path  # models_root/perflow/<name>
    name: str  # PeRFlowLoader's ckpt_name for the folder
    single_file: Path  # models_root/checkpoints/<name>.safetensors


def ensure_random_perflow_sd15(instaflow: random_models.RandomInstaFlow) -> RandomPeRFlowSD15:
    """The cached folder and single file; builds them on first use."""
    tag = f"{FAMILY}-v{VERSION}-{random_models.RECIPE_TAG}"
    root = ensure_built(tag, FAMILY, Path(__file__).resolve(),
                        ["--arg", f"instaflow_dir={instaflow.diffusers_dir}",
                         "--arg", f"instaflow_file={instaflow.single_file}"])
    return RandomPeRFlowSD15(root, root / "perflow" / NAME, NAME, root / "checkpoints" / f"{NAME}.safetensors")


REDUCED_FAMILY = "perflow-reduced-sd15"
REDUCED_VERSION = 2  # 2: files named with reduced_sd15.TWIN_PREFIX


def ensure_reduced_perflow_sd15(reduced) -> RandomPeRFlowSD15:
    """The same recipe on the reduced SD1.5 stand-in (devtools/reduced_sd15.py). Its diffusers folder lies
    under reference/ (ComfyUI cannot load a diffusers folder of that UNet), so `.name` is the single file's."""
    from devtools.reduced_sd15 import TWIN_PREFIX

    name = TWIN_PREFIX + NAME  # reduced-perflow-random-sd15
    root = ensure_built(f"{REDUCED_FAMILY}-v{REDUCED_VERSION}-{reduced.tag}", REDUCED_FAMILY, Path(__file__).resolve(),
                        ["--arg", f"instaflow_dir={reduced.diffusers_dir}", "--arg", f"instaflow_file={reduced.single_file}",
                         "--arg", f"name={name}", "--arg", "folder_root=reference"])
    single_file = root / "checkpoints" / f"{name}.safetensors"
    return RandomPeRFlowSD15(root, root / "reference" / name, single_file.name, single_file)


def _link_tree(source: Path, target: Path) -> None:
    target.mkdir(parents=True)
    for item in source.iterdir():
        if item.is_dir():
            _link_tree(item, target / item.name)
            continue
        try:
            os.link(item, target / item.name)
        except OSError:  # another file system, or no hard links there
            shutil.copy2(item, target / item.name)


def calibrated_vae(state: dict, prefix: str, dtype) -> dict:
    """state with the CALIBRATION tensors scaled (rounded to fp16 values), in dtype."""
    out = dict(state)
    for name, scale in CALIBRATION.items():
        out[prefix + name] = (state[prefix + name].float() * scale).half().to(dtype).contiguous()
    return out


def _build(models_root: Path, instaflow_dir: str, instaflow_file: str, name: str = NAME, folder_root: str = "perflow") -> None:
    import diffusers
    import torch
    from safetensors import safe_open
    from safetensors.torch import load_file, save_file

    source, folder = Path(instaflow_dir), models_root / folder_root / name
    for part in LINKED:
        _link_tree(source / part, folder / part)
    (folder / "vae").mkdir()
    shutil.copyfile(source / "vae" / "config.json", folder / "vae" / "config.json")
    save_file(calibrated_vae(load_file(str(source / "vae" / VAE_FILE)), "", torch.float32),
              str(folder / "vae" / VAE_FILE), metadata={"format": "pt"})
    model_index = {
        "_class_name": "StableDiffusionPipeline",
        "_diffusers_version": diffusers.__version__,
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

    with safe_open(instaflow_file, framework="pt") as single:
        metadata = single.metadata()
    (models_root / "checkpoints").mkdir()
    save_file(calibrated_vae(load_file(instaflow_file), LDM_VAE_PREFIX, torch.float16),
              str(models_root / "checkpoints" / f"{name}.safetensors"), metadata=metadata)


if __name__ == "__main__":
    script_main(_build, sys.argv[1:], __doc__.splitlines()[0])
