"""Stand-ins for a fine-tuned SD1.5 checkpoint and for SD1.5 itself, for the InstaFlow weight-delta recipe.

The official "InstaFlow + dreamshaper-7" demo (REFERENCE.md sections 2-3, code/rf_lora.py
load_hf_hub_lora) runs InstaFlow_UNet + alpha * (finetune_UNet - SD15_UNet) with the finetune's text
encoder and VAE. Real checkpoints cannot be downloaded in tests, so two random single-file SD1.5
checkpoints are derived from the random InstaFlow fixture's single file by seeded perturbation:

    cache_root()/fixtures/<TAG>/models/checkpoints/
        sd15-base-random.safetensors       InstaFlow weights; UNet + N(0, (UNET_RELATIVE * std W)^2)
        sd15-finetune-random.safetensors   InstaFlow weights; UNet + another such perturbation,
                                           text encoder + TEXT_ENCODER_RELATIVE, VAE decoder +
                                           VAE_DECODER_RELATIVE (relative to each tensor's std)

Both keep the LDM/CompVis key layout and fp16 values of random_models' single file (they are that
file with some tensors changed), so stock CheckpointLoaderSimple loads them as SD1.5. Tensors with
zero spread (fresh norm weights, zero biases) are left as they are.

The recipe needs only the UNets of InstaFlow and of the base, so the folder also links them for stock
UNETLoader (which reads a checkpoint's UNet keys only), and links InstaFlow's own text encoder and VAE
(diffusers files) for CLIPLoader / VAELoader; no weights are written twice:

        diffusion_models/sd15-base-random-unet.safetensors      -> checkpoints/sd15-base-random.safetensors
        diffusion_models/instaflow-random-unet.safetensors      -> the InstaFlow fixture's single file
        text_encoders/instaflow-random-text-encoder.safetensors -> its diffusers text_encoder/model.safetensors
        vae/instaflow-random-vae.safetensors                    -> its diffusers vae weights
Measured on the one-step 64x64 test (tests/test_weight_delta.py, alpha 1): delta with the wrong sign
~20/255 off, InstaFlow's text encoder and VAE instead of the finetune's ~20/255; with the reference
alone, alpha 0.7 vs no UNet delta ~10/255 (UNET_RELATIVE 0.05 gave only ~2.6/255).
(Those figures are from the full-size model.) ensure_reduced_weight_delta applies the same recipe to the reduced
SD1.5 stand-in (devtools/reduced_sd15.py), every name prefixed "reduced-"; tests/test_weight_delta.py uses it:
wrong sign ~21/255, InstaFlow's text encoder and VAE ~17/255.
Bump VERSION whenever anything here changes what is written.
"""
from __future__ import annotations

import sys
from dataclasses import dataclass
from pathlib import Path

from devtools import random_models
from devtools.cached_fixture import ensure_built, script_main

FAMILY = "instaflow-random-weight-delta"
VERSION = 2
BASE_NAME = "sd15-base-random.safetensors"
FINETUNE_NAME = "sd15-finetune-random.safetensors"
BASE_UNET_NAME = "sd15-base-random-unet.safetensors"
INSTAFLOW_UNET_NAME = "instaflow-random-unet.safetensors"
INSTAFLOW_TEXT_ENCODER_NAME = "instaflow-random-text-encoder.safetensors"
INSTAFLOW_VAE_NAME = "instaflow-random-vae.safetensors"
SEED = 20231015

UNET_RELATIVE = 0.2
TEXT_ENCODER_RELATIVE = 0.2
VAE_DECODER_RELATIVE = 0.2

UNET_PREFIX = "model.diffusion_model."
TEXT_ENCODER_PREFIX = "cond_stage_model."
VAE_DECODER_PREFIX = "first_stage_model.decoder."


@dataclass(frozen=True)
class RandomWeightDelta:
    models_root: Path  # has checkpoints/
    base: Path  # "SD1.5"
    finetune: Path  # "dreamshaper-7"
    # Names for the split loaders (links, see the module docstring)
    base_unet: str = BASE_UNET_NAME
    instaflow_unet: str = INSTAFLOW_UNET_NAME
    instaflow_text_encoder: str = INSTAFLOW_TEXT_ENCODER_NAME
    instaflow_vae: str = INSTAFLOW_VAE_NAME


def _names(prefix: str) -> dict:
    return {key: prefix + name for key, name in [("base", BASE_NAME), ("finetune", FINETUNE_NAME), ("base_unet", BASE_UNET_NAME),
                                                 ("instaflow_unet", INSTAFLOW_UNET_NAME),
                                                 ("instaflow_text_encoder", INSTAFLOW_TEXT_ENCODER_NAME),
                                                 ("instaflow_vae", INSTAFLOW_VAE_NAME)]}


def _described(root: Path, prefix: str) -> RandomWeightDelta:
    names = _names(prefix)
    return RandomWeightDelta(models_root=root, base=root / "checkpoints" / names.pop("base"),
                             finetune=root / "checkpoints" / names.pop("finetune"), **names)


def ensure_random_weight_delta(instaflow: random_models.RandomInstaFlow) -> RandomWeightDelta:
    """The cached base and finetune checkpoints (~1 min and 4 GB on first use)."""
    tag = f"{FAMILY}-v{VERSION}-{random_models.RECIPE_TAG}"
    root = ensure_built(tag, FAMILY, Path(__file__).resolve(), ["--arg", f"instaflow_file={instaflow.single_file}"])
    return _described(root, "")


REDUCED_FAMILY = "instaflow-reduced-weight-delta"


def ensure_reduced_weight_delta(reduced) -> RandomWeightDelta:
    """The same recipe on the reduced SD1.5 stand-in (devtools/reduced_sd15.py); every file name starts with
    "reduced-" so that the server lists both fixtures side by side."""
    from devtools.reduced_sd15 import TWIN_PREFIX

    root = ensure_built(f"{REDUCED_FAMILY}-v{VERSION}-{reduced.tag}", REDUCED_FAMILY, Path(__file__).resolve(),
                        ["--arg", f"instaflow_file={reduced.single_file}", "--arg", f"pipeline={reduced.diffusers_dir}",
                         "--arg", f"prefix={TWIN_PREFIX}"])
    return _described(root, TWIN_PREFIX)


def _perturbed(tensor, relative: float, generator):
    import torch

    if relative == 0 or not tensor.is_floating_point() or tensor.numel() < 2:
        return tensor
    values = tensor.float()
    spread = values.std()
    if spread == 0:
        return tensor
    noise = torch.randn(values.shape, generator=generator) * (relative * spread)
    return (values + noise).to(tensor.dtype).contiguous()


def _relative_change(key: str, recipe: dict) -> float:
    return next((relative for prefix, relative in recipe.items() if key.startswith(prefix)), 0.0)


def _build(models_root: Path, instaflow_file: str, pipeline: str = "", prefix: str = "") -> None:
    """pipeline: the InstaFlow diffusers folder (default: the one next to instaflow_file's checkpoints/)."""
    import torch
    from safetensors import safe_open
    from safetensors.torch import save_file

    names = _names(prefix)
    recipes = {
        names["base"]: {UNET_PREFIX: UNET_RELATIVE},
        names["finetune"]: {UNET_PREFIX: UNET_RELATIVE, TEXT_ENCODER_PREFIX: TEXT_ENCODER_RELATIVE,
                            VAE_DECODER_PREFIX: VAE_DECODER_RELATIVE},
    }
    (models_root / "checkpoints").mkdir(parents=True)
    with safe_open(instaflow_file, framework="pt") as source:
        metadata = source.metadata()
        keys = sorted(source.keys())
        for index, (name, recipe) in enumerate(recipes.items()):
            generator = torch.Generator().manual_seed(SEED + index)
            state = {key: _perturbed(source.get_tensor(key), _relative_change(key, recipe), generator) for key in keys}
            save_file(state, str(models_root / "checkpoints" / name), metadata=metadata)
            del state
    pipeline = Path(pipeline) if pipeline else Path(instaflow_file).parent.parent / "diffusers" / Path(instaflow_file).stem
    links = {
        ("diffusion_models", names["base_unet"]): Path("..") / "checkpoints" / names["base"],
        ("diffusion_models", names["instaflow_unet"]): Path(instaflow_file).resolve(),
        ("text_encoders", names["instaflow_text_encoder"]): (pipeline / "text_encoder" / "model.safetensors").resolve(),
        ("vae", names["instaflow_vae"]): (pipeline / "vae" / "diffusion_pytorch_model.safetensors").resolve(),
    }
    for (folder, name), target in links.items():
        (models_root / folder).mkdir(exist_ok=True)
        (models_root / folder / name).symlink_to(target)
        if not (models_root / folder / name).is_file():
            raise FileNotFoundError(f"{models_root / folder / name} -> {target}: the link's target is missing")


if __name__ == "__main__":
    script_main(_build, sys.argv[1:], __doc__.splitlines()[0])
