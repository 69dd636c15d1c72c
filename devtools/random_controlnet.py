"""Random-weight SD1.5 ControlNets for the random InstaFlow model and the reduced stand-in, built once and cached.

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
  ~11/255 instead of ~5/255 on the full-size model);
- the conditioning embedding (conv_in, blocks, conv_out) gets He-normal weights and zero biases, so
  its output follows the control image (with default init it is almost constant), and conv_out is
  scaled so the embedding of the test image has std HINT_EMBEDDING_STD (conv_in(latents) has ~0.5);
- the ControlNet's resnet time_emb_proj layers x TIME_EMB_PROJ_SCALE (on top of the UNet's x3).
Measured on the one-step 64x64 test (tests/test_controlnet.py) on the full-size model: controlled vs
uncontrolled ~25/255, inverted control image ~20/255, control given t = sigma instead of sigma*1000
~12/255 (t = 1000*(1 - sigma) ~11/255); 4 steps, end_percent 0.5 vs the official end 0.5 ~9/255.
All weights are fp16-representable, so fp16 file == fp32 reference.

ensure_reduced_controlnet makes the same from the reduced SD1.5 stand-in's UNet (devtools/reduced_sd15.py):

        controlnet/reduced-instaflow-random-controlnet.safetensors   fp16, the original ControlNet's LDM keys
                                                                      (control_model.input_blocks..., zero_convs,
                                                                      input_hint_block, middle_block_out), as in
                                                                      the published control_v11*_sd15 files
        reference/reduced-instaflow-random-controlnet/                 its diffusers folder, for the reference only

ComfyUI builds an LDM-layout ControlNet of any size from its shapes, but a diffusers-layout one only at
SD1.5's exact config (comfy/model_detection.py unet_config_from_diffusers_unet); the build writes the LDM
keys with ComfyUI's own key map and has ComfyUI's loader (comfy/controlnet.py load_controlnet_state_dict)
read the file back. With two UNet levels it has 4 zero convolutions instead of 12, and with the full-size
constants a control fed t = sigma was only ~7.3/255 off and 4 steps with end_percent 0.5 only ~7.7/255 off
the official end 0.5, under the 8/255 a broken variant must miss by. REDUCED_RECIPE weighs the time-dependent
zero convolutions more (std 1.5, the first 0.01) and the hint embedding less (std 0.3); measured on the
same tests on the reduced model: controlled vs uncontrolled ~22/255, inverted control image ~11/255, t = sigma
~9.8/255, t = 1000*(1 - sigma) ~11/255, end_percent 0.5 vs the official end 0.5 ~10/255.
Bump VERSION whenever anything here changes what is written.
"""
from __future__ import annotations

import os
import shutil
import sys
from dataclasses import dataclass
from pathlib import Path

from devtools import random_models
from devtools.cached_fixture import ensure_built, script_main
from devtools.comfyui_source import comfyui_path

FAMILY = "instaflow-random-controlnet"
VERSION = 1
NAME = "instaflow-random-controlnet"
SEED = 20231013

ZERO_CONV_STD = 0.5
FIRST_ZERO_CONV_STD = 0.05
HINT_EMBEDDING_STD = 0.5
HINT_PROBE_SIZE = 64
TIME_EMB_PROJ_SCALE = 2.0
# The reduced twin's zero convolutions and hint embedding (see the module docstring).
REDUCED_RECIPE = {"zero_conv_std": 1.5, "first_zero_conv_std": 0.01, "hint_embedding_std": 0.3}


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


REDUCED_FAMILY = "instaflow-reduced-controlnet"


def ensure_reduced_controlnet(reduced) -> RandomControlNet:
    """The same recipe on the reduced SD1.5 stand-in's UNet (devtools/reduced_sd15.py), in the original
    ControlNet's LDM layout: ComfyUI loads a diffusers-layout ControlNet only at SD1.5's exact config, an LDM
    one of any size (it reads the architecture from the shapes). The diffusers folder is the reference's."""
    from devtools.reduced_sd15 import TWIN_PREFIX

    name = TWIN_PREFIX + NAME  # reduced-instaflow-random-controlnet
    root = ensure_built(f"{REDUCED_FAMILY}-v{VERSION}-{reduced.tag}", REDUCED_FAMILY, Path(__file__).resolve(),
                        ["--arg", f"unet_dir={reduced.diffusers_dir / 'unet'}", "--arg", f"name={name}",
                         "--arg", f"comfy_root={comfyui_path()}",
                         *(arg for key, value in REDUCED_RECIPE.items() for arg in ("--arg", f"{key}={value}"))])
    return RandomControlNet(models_root=root, file=root / "controlnet" / f"{name}.safetensors",
                            diffusers_dir=root / "reference" / name, name=f"{name}.safetensors")


def _random_controlnet(unet_dir: Path, zero_conv_std: float = ZERO_CONV_STD,
                       first_zero_conv_std: float = FIRST_ZERO_CONV_STD,
                       hint_embedding_std: float = HINT_EMBEDDING_STD):
    import torch
    from diffusers import ControlNetModel, UNet2DConditionModel

    from devtools.control_image import depth_like_image
    from devtools.reference_controlnet import control_image_tensor

    unet = UNet2DConditionModel.from_pretrained(unet_dir, low_cpu_mem_usage=False).eval()
    controlnet = ControlNetModel.from_unet(unet).eval()
    del unet
    generator = torch.Generator().manual_seed(SEED)

    def normal(shape, std):
        return torch.randn(shape, generator=generator) * std

    with torch.no_grad():
        zero_convs = [*controlnet.controlnet_down_blocks, controlnet.controlnet_mid_block]
        for index, conv in enumerate(zero_convs):
            std = first_zero_conv_std if index == 0 else zero_conv_std
            conv.weight.copy_(normal(conv.weight.shape, std))
            conv.bias.copy_(normal(conv.bias.shape, std / 4))
        embedding = controlnet.controlnet_cond_embedding
        for conv in [embedding.conv_in, *embedding.blocks, embedding.conv_out]:
            conv.weight.copy_(normal(conv.weight.shape, (2.0 / conv.weight[0].numel()) ** 0.5))
            conv.bias.zero_()
        probe = control_image_tensor(depth_like_image(HINT_PROBE_SIZE))
        embedding.conv_out.weight.mul_(hint_embedding_std / embedding(probe).std())
        for name, module in controlnet.named_modules():
            if name.endswith("time_emb_proj"):
                module.weight.mul_(TIME_EMB_PROJ_SCALE)
                module.bias.mul_(TIME_EMB_PROJ_SCALE)
        for tensor in controlnet.state_dict().values():
            if tensor.is_floating_point():
                tensor.copy_(tensor.half().float())
    return controlnet


def _ldm_state_dict(controlnet, comfy_unet: dict) -> dict:
    """A diffusers ControlNetModel's weights under the original ControlNet's keys (control_model.*), fp16: the
    inverse of the map comfy/controlnet.py load_controlnet_state_dict applies to a diffusers ControlNet.
    `comfy_unet` is ComfyUI's description of the UNet layout the ControlNet was made from."""
    import comfy.utils

    names = comfy.utils.unet_to_diffusers(comfy_unet)  # diffusers -> LDM, for the UNet encoder the ControlNet copies
    hint_convs = ["conv_in", *(f"blocks.{i}" for i in range(len(controlnet.controlnet_cond_embedding.blocks))),
                  "conv_out"]
    layers = {
        "controlnet_mid_block": "middle_block_out.0",
        **{f"controlnet_down_blocks.{i}": f"zero_convs.{i}.0" for i in range(len(controlnet.controlnet_down_blocks))},
        # input_hint_block interleaves SiLUs: its convolutions sit at even indices
        **{f"controlnet_cond_embedding.{conv}": f"input_hint_block.{2 * i}" for i, conv in enumerate(hint_convs)},
    }
    for diffusers_name, ldm_name in layers.items():
        for suffix in ("weight", "bias"):
            names[f"{diffusers_name}.{suffix}"] = f"{ldm_name}.{suffix}"
    state = controlnet.state_dict()
    unnamed = sorted(set(state) - set(names))
    if unnamed:
        raise RuntimeError(f"no LDM name for ControlNet keys {unnamed[:5]}")
    return {"control_model." + names[key]: tensor.half().contiguous() for key, tensor in state.items()}


def _check_loads_in_comfyui(state: dict, comfy_root: Path) -> None:
    """ComfyUI's own ControlNet loader builds the file's architecture from its shapes and fills every weight."""
    import comfy.cli_args

    comfy.cli_args.args.cpu = True  # before comfy.model_management (imported by the loader) probes for a GPU
    import comfy.controlnet

    control = comfy.controlnet.load_controlnet_state_dict(dict(state))
    model = getattr(control, "control_model", None)  # None: not recognised as a ControlNet at all
    loaded = set(model.state_dict()) if model is not None else set()
    written = {key[len("control_model."):] for key in state}
    if loaded != written:
        raise RuntimeError(f"ComfyUI ({comfy_root}) does not load the LDM-layout ControlNet: missing "
                           f"{sorted(loaded - written)[:5]}, not read {sorted(written - loaded)[:5]}")


def _build(models_root: Path, unet_dir: str, name: str = NAME, comfy_root: str = "", **recipe: str) -> None:
    """controlnet/<name>.safetensors and reference/<name>/. Without comfy_root (the full-size fixture) the file
    is diffusers-layout and the reference links it; with it (the reduced twin) the file is LDM-layout, converted
    and checked with that ComfyUI's own key map and loader, and the reference gets its own diffusers file.
    `recipe`: _random_controlnet's constants, where they differ from the full-size ones."""
    from safetensors.torch import save_file

    controlnet = _random_controlnet(Path(unet_dir), **{key: float(value) for key, value in recipe.items()})
    diffusers_state = {k: v.half().contiguous() for k, v in controlnet.state_dict().items()}
    weights = models_root / "controlnet" / f"{name}.safetensors"
    weights.parent.mkdir(parents=True)
    reference = models_root / "reference" / name
    reference.mkdir(parents=True)
    controlnet.save_config(reference)  # config.json, as save_pretrained writes it
    if comfy_root:
        sys.path.insert(0, comfy_root)
        from devtools.reduced_sd15 import COMFY_UNET

        state = _ldm_state_dict(controlnet, COMFY_UNET)
        _check_loads_in_comfyui(state, Path(comfy_root))
        save_file(state, str(weights), metadata={"format": "pt"})
        save_file(diffusers_state, str(reference / "diffusion_pytorch_model.safetensors"), metadata={"format": "pt"})
    else:
        save_file(diffusers_state, str(weights), metadata={"format": "pt"})
        try:
            os.link(weights, reference / "diffusion_pytorch_model.safetensors")
        except OSError:
            shutil.copyfile(weights, reference / "diffusion_pytorch_model.safetensors")


if __name__ == "__main__":
    script_main(_build, sys.argv[1:], __doc__.splitlines()[0])
