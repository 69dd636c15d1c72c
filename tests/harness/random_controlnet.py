"""A full-size SD1.5 ControlNet with random weights for the random InstaFlow model, built once and cached.

    cache_root()/fixtures/<TAG>/models/
        controlnet/instaflow-random-controlnet.safetensors    fp16, diffusers ControlNetModel keys
                                                               (ComfyUI's load_controlnet converts them)
        reference/instaflow-random-controlnet/                 the same file as a diffusers folder:
            config.json, diffusion_pytorch_model.safetensors   (hard link, or a copy)

Built like a real ControlNet: diffusers ControlNetModel.from_unet(the InstaFlow fixture's UNet)
copies the UNet's encoder. A fresh ControlNet would do nothing (zero convolutions), so:
- every zero convolution (controlnet_down_blocks, controlnet_mid_block) gets random weights, std
  ZERO_CONV_STD (biases a quarter of it); the first one, which sees conv_in(latents) + the hint
  embedding without any time dependence, only FIRST_ZERO_CONV_STD, so that the control residuals
  depend strongly on the timestep (a control fed the wrong timestep then fails the comparison by
  ~11/255 instead of ~5/255);
- the conditioning embedding (conv_in, blocks, conv_out) gets He-normal weights and zero biases, so
  its output follows the control image (with default init it is almost constant), and conv_out is
  scaled so the embedding of the test image has std HINT_EMBEDDING_STD (conv_in(latents) has ~0.5);
- the ControlNet's resnet time_emb_proj layers x TIME_EMB_PROJ_SCALE (on top of the UNet's x3).
Measured on the one-step 64x64 test (tests/test_controlnet.py): controlled vs uncontrolled
~25/255, inverted control image ~20/255, control given t = sigma instead of sigma*1000 ~12/255.
All weights are fp16-representable, so fp16 file == fp32 reference.
Bump VERSION whenever anything here changes what is written.
"""
from __future__ import annotations

import os
import shutil
import sys
from dataclasses import dataclass
from pathlib import Path

if __package__ in (None, ""):  # run as the build script
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from harness import random_models
from harness.cached_fixture import ensure_built, script_main

FAMILY = "instaflow-random-controlnet"
VERSION = 1
NAME = "instaflow-random-controlnet"
SEED = 20231013

ZERO_CONV_STD = 0.5
FIRST_ZERO_CONV_STD = 0.05
HINT_EMBEDDING_STD = 0.5
HINT_PROBE_SIZE = 64
TIME_EMB_PROJ_SCALE = 2.0


@dataclass(frozen=True)
class RandomControlNet:
    models_root: Path  # has controlnet/
    file: Path  # models_root/controlnet/<name>.safetensors, what ControlNetLoader loads
    diffusers_dir: Path  # the same weights as a diffusers ControlNetModel folder, for the reference
    name: str  # ControlNetLoader's control_net_name


def ensure_random_controlnet(instaflow: random_models.RandomInstaFlow) -> RandomControlNet:
    """The cached ControlNet built from `instaflow`'s UNet (~1 min and 0.7 GB on first use)."""
    tag = f"{FAMILY}-v{VERSION}-{random_models.RECIPE_TAG}"
    root = ensure_built(tag, FAMILY, Path(__file__).resolve(), ["--arg", f"unet_dir={instaflow.diffusers_dir / 'unet'}"])
    return RandomControlNet(
        models_root=root,
        file=root / "controlnet" / f"{NAME}.safetensors",
        diffusers_dir=root / "reference" / NAME,
        name=f"{NAME}.safetensors",
    )


def _random_controlnet(unet_dir: Path):
    import torch
    from diffusers import ControlNetModel, UNet2DConditionModel

    from harness.control_image import depth_like_image
    from harness.reference_controlnet import control_image_tensor

    unet = UNet2DConditionModel.from_pretrained(unet_dir, low_cpu_mem_usage=False).eval()
    controlnet = ControlNetModel.from_unet(unet).eval()
    del unet
    generator = torch.Generator().manual_seed(SEED)

    def normal(shape, std):
        return torch.randn(shape, generator=generator) * std

    with torch.no_grad():
        zero_convs = [*controlnet.controlnet_down_blocks, controlnet.controlnet_mid_block]
        for index, conv in enumerate(zero_convs):
            std = FIRST_ZERO_CONV_STD if index == 0 else ZERO_CONV_STD
            conv.weight.copy_(normal(conv.weight.shape, std))
            conv.bias.copy_(normal(conv.bias.shape, std / 4))
        embedding = controlnet.controlnet_cond_embedding
        for conv in [embedding.conv_in, *embedding.blocks, embedding.conv_out]:
            conv.weight.copy_(normal(conv.weight.shape, (2.0 / conv.weight[0].numel()) ** 0.5))
            conv.bias.zero_()
        probe = control_image_tensor(depth_like_image(HINT_PROBE_SIZE))
        embedding.conv_out.weight.mul_(HINT_EMBEDDING_STD / embedding(probe).std())
        for name, module in controlnet.named_modules():
            if name.endswith("time_emb_proj"):
                module.weight.mul_(TIME_EMB_PROJ_SCALE)
                module.bias.mul_(TIME_EMB_PROJ_SCALE)
        for tensor in controlnet.state_dict().values():
            if tensor.is_floating_point():
                tensor.copy_(tensor.half().float())
    return controlnet


def _build(models_root: Path, unet_dir: str) -> None:
    from safetensors.torch import save_file

    controlnet = _random_controlnet(Path(unet_dir))
    weights = models_root / "controlnet" / f"{NAME}.safetensors"
    weights.parent.mkdir(parents=True)
    save_file({k: v.half().contiguous() for k, v in controlnet.state_dict().items()}, str(weights),
              metadata={"format": "pt"})
    reference = models_root / "reference" / NAME
    reference.mkdir(parents=True)
    controlnet.save_config(reference)  # config.json, as save_pretrained writes it
    try:
        os.link(weights, reference / "diffusion_pytorch_model.safetensors")
    except OSError:
        shutil.copyfile(weights, reference / "diffusion_pytorch_model.safetensors")


if __name__ == "__main__":
    script_main(_build, sys.argv[1:], __doc__.splitlines()[0])
