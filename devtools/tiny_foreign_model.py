"""A tiny diffusion model that ComfyUI loads as SD3 (not SD1.5), for ModelSamplingInstaFlow's warning.

The robustness fakes (robustness_models.py) are detection-only and must never be built into a
model; this one is a complete, loadable state dict, so it can flow through a graph:

    cache_root()/fixtures/<TAG>/models/diffusion_models/instaflow-tests/tiny-sd3-mmdit.safetensors

An MMDiT with depth 1 (hidden size 64), 16 latent channels, patch 2: ComfyUI's detector
(comfy/model_detection.py, mmdit branch) makes it an SD3 model, which UNETLoader ("Load Diffusion
Model") builds in milliseconds (147k parameters, random fp16 values). The build imports ComfyUI in
its subprocess only and checks that ComfyUI calls the written file SD3.
"""
from __future__ import annotations

import sys
from dataclasses import dataclass
from pathlib import Path

from devtools.cached_fixture import ensure_built, script_main
from devtools.comfyui_source import comfyui_path

TAG = "instaflow-tiny-sd3-v1"
FAMILY = "instaflow-tiny-sd3"
NAME = "instaflow-tests/tiny-sd3-mmdit.safetensors"  # as UNETLoader lists it
ARCHITECTURE = "SD3"
MMDIT = dict(in_channels=16, out_channels=16, patch_size=2, depth=1, pos_embed_max_size=8, num_patches=64,
             adm_in_channels=32,
             context_embedder_config={"target": "torch.nn.Linear", "params": {"in_features": 64, "out_features": 64}})


@dataclass(frozen=True)
class TinyForeignModel:
    models_root: Path
    name: str = NAME
    architecture: str = ARCHITECTURE


def ensure_tiny_sd3() -> TinyForeignModel:
    root = ensure_built(TAG, FAMILY, Path(__file__).resolve(), ["--arg", f"comfyui={comfyui_path()}"])
    return TinyForeignModel(models_root=root)


def build(models_root: Path, comfyui: str) -> None:
    sys.path.insert(0, comfyui)
    import comfy.cli_args

    comfy.cli_args.args.cpu = True  # before comfy.model_management is imported: no GPU probing
    import torch
    from safetensors.torch import load_file, save_file

    import comfy.model_detection
    import comfy.ops
    from comfy.ldm.modules.diffusionmodules.mmdit import MMDiT

    net = MMDiT(**MMDIT, dtype=torch.float32, device="cpu", operations=comfy.ops.disable_weight_init)
    g = torch.Generator().manual_seed(3)
    sd = {k: (torch.randn(v.shape, generator=g) * 0.02).half() for k, v in net.state_dict().items()}
    path = models_root / "diffusion_models" / NAME
    path.parent.mkdir(parents=True)
    save_file(sd, str(path))
    found = type(comfy.model_detection.model_config_from_unet(load_file(str(path)), "")).__name__
    assert found == ARCHITECTURE, found


if __name__ == "__main__":
    script_main(build, sys.argv[1:], __doc__.splitlines()[0])
