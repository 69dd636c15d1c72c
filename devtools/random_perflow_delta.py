"""Random stand-ins for hansyan/perflow-sd15-delta-weights (PeRFlow's dW for SD1.5 UNets), built once and cached.

The real repository is a diffusers UNet folder holding W_perflow - W_sd15 as a FULL-SIZE fp16 state
dict (not a LoRA), in two variants (v0-1 and v0-0); PeRFlow's README loads it with
UNet2DConditionModel.from_pretrained(..., variant="v0-1") and adds it key by key to a finetune's UNet
(src/utils_perflow.py merge_delta_weights_into_unet). The stand-in has that layout:

    cache_root()/fixtures/<tag>/models/perflow/
        perflow-sd15-delta-weights/
            config.json                                  SD1.5 UNet config (random_models.UNET_CONFIG)
            diffusion_pytorch_model.v0-1.safetensors     dW, fp16, diffusers UNet keys (the one to use)
            diffusion_pytorch_model.v0-0.safetensors     another dW (a test fails if it is picked)
        perflow-sd15-delta-v0-1.safetensors              the v0-1 file again, as a single file (hard link)

dW per tensor is seeded N(0, (RELATIVE * std W)^2), W the random InstaFlow fixture's UNet tensor
(diffusers layout, from its diffusers folder), rounded to fp16; tensors with no spread (fresh norm
weights, zero biases) get dW = 0. RELATIVE was chosen so that strength 1 vs 0 changes the 64x64
PeRFlow image clearly (tests/test_perflow_delta.py records the figures).
ensure_reduced_perflow_delta applies the same recipe to the reduced SD1.5 stand-in (devtools/reduced_sd15.py).
ComfyUI reads that UNet only in the LDM key layout, so the loadable deltas are LDM-layout single files, and
the diffusers folder is the reference's:

    cache_root()/fixtures/<tag>/models/
        perflow/reduced-perflow-sd15-delta-v0-1.safetensors    dW v0-1, fp16, LDM UNet keys (input_blocks.*)
        perflow/reduced-perflow-sd15-delta-v0-0.safetensors    dW v0-0, the same way
        reference/reduced-perflow-sd15-delta-weights/          config.json + both variants, diffusers keys

Both layouts hold the same numbers (drawn in diffusers key order, as for the full-size delta).
Bump VERSION whenever anything here changes what is written.
"""
from __future__ import annotations

import json
import os
import sys
from dataclasses import dataclass
from pathlib import Path

from devtools import random_models
from devtools.cached_fixture import ensure_built, script_main
from devtools.comfyui_source import comfyui_path

FAMILY = "perflow-random-sd15-delta"
VERSION = 1
NAME = "perflow-sd15-delta-weights"
SINGLE_FILE_NAME = "perflow-sd15-delta-v0-1.safetensors"
VARIANTS = {"v0-1": 20240219, "v0-0": 20240220}  # variant -> seed (PeRFlow SD1.5's release date)
RELATIVE = 0.2


@dataclass(frozen=True)
class RandomPeRFlowDelta:
    models_root: Path  # has perflow/
    folder: Path  # models_root/perflow/<name> (the reduced twin's: under reference/, for the reference only)
    name: str  # PeRFlowDeltaWeights' delta_name: the folder's (the reduced twin's: its single file's)
    single_file: Path  # the v0-1 delta as one .safetensors in perflow/

    def variant_file(self, variant: str) -> Path:
        return self.folder / f"diffusion_pytorch_model.{variant}.safetensors"


def ensure_random_perflow_delta(instaflow: random_models.RandomInstaFlow) -> RandomPeRFlowDelta:
    """The cached delta folder; builds it on first use."""
    tag = f"{FAMILY}-v{VERSION}-{random_models.RECIPE_TAG}"
    unet_file = instaflow.diffusers_dir / "unet" / "diffusion_pytorch_model.safetensors"
    root = ensure_built(tag, FAMILY, Path(__file__).resolve(), ["--arg", f"unet_file={unet_file}"])
    return RandomPeRFlowDelta(root, root / "perflow" / NAME, NAME, root / "perflow" / SINGLE_FILE_NAME)


REDUCED_FAMILY = "perflow-reduced-sd15-delta"


def reduced_single_file_name(prefix: str, variant: str) -> str:
    return f"{prefix}perflow-sd15-delta-{variant}.safetensors"


def ensure_reduced_perflow_delta(reduced) -> RandomPeRFlowDelta:
    """The same recipe on the reduced SD1.5 stand-in (devtools/reduced_sd15.py); `.folder` is the reference's
    diffusers folder, `.name` and `.single_file` the loadable v0-1 file (LDM layout)."""
    from devtools.reduced_sd15 import TWIN_PREFIX

    unet_file = reduced.diffusers_dir / "unet" / "diffusion_pytorch_model.safetensors"
    root = ensure_built(f"{REDUCED_FAMILY}-v{VERSION}-{reduced.tag}", REDUCED_FAMILY, Path(__file__).resolve(),
                        ["--arg", f"unet_file={unet_file}", "--arg", f"comfy_root={comfyui_path()}",
                         "--arg", f"prefix={TWIN_PREFIX}"])
    single_file = root / "perflow" / reduced_single_file_name(TWIN_PREFIX, "v0-1")
    return RandomPeRFlowDelta(root, root / "reference" / (TWIN_PREFIX + NAME), single_file.name, single_file)


def _random_delta(tensor, generator):
    import torch

    values = tensor.float()
    if not tensor.is_floating_point() or values.numel() < 2 or values.std() == 0:
        return torch.zeros_like(values).half()
    return (torch.randn(values.shape, generator=generator) * (RELATIVE * values.std())).half().contiguous()


def _build(models_root: Path, unet_file: str, comfy_root: str = "", prefix: str = "") -> None:
    """comfy_root given: the reduced twin (folder under reference/, loadable LDM-layout files in perflow/)."""
    import torch
    from safetensors import safe_open
    from safetensors.torch import save_file

    if comfy_root:
        from devtools import reduced_sd15

        config, folder = reduced_sd15.UNET_CONFIG, models_root / "reference" / (prefix + NAME)
    else:
        config, folder = random_models.UNET_CONFIG, models_root / "perflow" / NAME
    folder.mkdir(parents=True)
    (models_root / "perflow").mkdir(exist_ok=True)
    (folder / "config.json").write_text(json.dumps(dict(config, _class_name="UNet2DConditionModel"), indent=2) + "\n")
    with safe_open(unet_file, framework="pt") as source:
        keys = sorted(source.keys())
        for variant, seed in VARIANTS.items():
            generator = torch.Generator().manual_seed(seed)
            delta = {key: _random_delta(source.get_tensor(key), generator) for key in keys}
            save_file(delta, str(folder / f"diffusion_pytorch_model.{variant}.safetensors"), metadata={"format": "pt"})
            if comfy_root:
                ldm = random_models.ldm_unet_state_dict(delta, Path(comfy_root), reduced_sd15.COMFY_UNET)
                save_file(ldm, str(models_root / "perflow" / reduced_single_file_name(prefix, variant)),
                          metadata={"format": "pt"})
            del delta
    if not comfy_root:
        os.link(folder / "diffusion_pytorch_model.v0-1.safetensors", models_root / "perflow" / SINGLE_FILE_NAME)


if __name__ == "__main__":
    script_main(_build, sys.argv[1:], __doc__.splitlines()[0])
