"""Random SD1.5 LoRAs for the random InstaFlow model, in the two file layouts ComfyUI's LoraLoader reads.

    cache_root()/fixtures/<TAG>/models/loras/
        instaflow-random-lora-kohya.safetensors       Kohya: lora_unet_<module>/lora_te_<module> with
                                                       .lora_down.weight, .lora_up.weight, .alpha
        instaflow-random-lora-diffusers.safetensors   diffusers: see DIFFUSERS LAYOUT below

Targets (module names of the diffusers UNet / transformers CLIP text model):
- UNet, every transformer block: attn1 and attn2 to_q, to_k, to_v, to_out.0; ff.net.0.proj, ff.net.2;
  every Transformer2DModel's proj_in and proj_out (1x1 convolutions in SD1.5: 4-D LoRA weights);
- text encoder, every layer: self_attn q_proj, k_proj, v_proj, out_proj; mlp fc1, fc2.
Kohya: rank KOHYA_RANK, alpha KOHYA_ALPHA (scale alpha/rank = 0.5). Diffusers: rank DIFFUSERS_RANK,
no alphas (scale 1).

DIFFUSERS LAYOUT, chosen from what ComfyUI 0.3.75 maps (comfy/lora.py model_lora_keys_unet/_clip):
- UNet attention projections in diffusers' attention-processor layout,
  unet.<block>.attnN.processor.to_q_lora.down.weight / .up.weight (to_out.0 -> processor.to_out_lora):
  ComfyUI names diffusers UNet attention layers only with ".processor." inserted;
- other UNet layers with PEFT names, unet.<module>.lora_A.weight / .lora_B.weight;
- text encoder attention with diffusers' current names, text_encoder.<module>.lora_linear_layer.down/up,
  and the MLP with PEFT names, text_encoder.<module>.lora_A/lora_B.
The layout current diffusers training scripts write for UNet attention, unet.<block>.attnN.to_q.lora.down
(or PEFT's .to_q.lora_A), is NOT mapped by ComfyUI 0.3.75: those weights are skipped with
"lora key not loaded" (checked with comfy.lora.load_lora on this model), so it is not a fixture.

Weights: down ~ N(0, 1/in_features) and up Gaussian, scaled so that the update at strength 1 has
RELATIVE_UPDATE times the std of the layer's own weight. Measured on the one-step 64x64 test
(tests/test_lora.py, Kohya, strength 0.8/0.8): LoRA vs none ~12/255, text-encoder part left out ~10/255,
UNet part left out ~16/255, alpha ignored ~17/255 (RELATIVE_UPDATE 0.3 gave only ~2/255 for a 20%
strength error); those figures are from the full-size model. fp16-representable values.
ensure_reduced_loras writes the same for the reduced SD1.5 stand-in (devtools/reduced_sd15.py), names prefixed
"reduced-" (its UNet has fewer transformer blocks, so fewer UNet targets); tests/test_lora.py uses these: LoRA vs
none ~28/255, text-encoder part left out ~19/255, UNet part left out ~17/255, alpha ignored ~16/255.
Bump VERSION whenever anything here changes what is written.
"""
from __future__ import annotations

import re
import sys
from dataclasses import dataclass
from pathlib import Path

from devtools import random_models
from devtools.cached_fixture import ensure_built, script_main

FAMILY = "instaflow-random-lora"
VERSION = 1
KOHYA_NAME = "instaflow-random-lora-kohya.safetensors"
DIFFUSERS_NAME = "instaflow-random-lora-diffusers.safetensors"
SEED = 20231014

KOHYA_RANK, KOHYA_ALPHA = 8, 4.0
DIFFUSERS_RANK = 4
RELATIVE_UPDATE = 0.7  # std(scale * up @ down) / std(W) at strength 1

UNET_ATTENTION = ("attn1.to_q", "attn1.to_k", "attn1.to_v", "attn1.to_out.0",
                  "attn2.to_q", "attn2.to_k", "attn2.to_v", "attn2.to_out.0")
UNET_OTHER_IN_BLOCK = ("ff.net.0.proj", "ff.net.2")
UNET_TRANSFORMER_IO = ("proj_in", "proj_out")
TEXT_ATTENTION = ("self_attn.q_proj", "self_attn.k_proj", "self_attn.v_proj", "self_attn.out_proj")
TEXT_MLP = ("mlp.fc1", "mlp.fc2")


@dataclass(frozen=True)
class RandomLoras:
    models_root: Path  # has loras/
    kohya: Path
    diffusers: Path


def ensure_random_loras(instaflow: random_models.RandomInstaFlow) -> RandomLoras:
    """The cached LoRA files for `instaflow`'s architecture and weights (seconds to build)."""
    tag = f"{FAMILY}-v{VERSION}-{random_models.RECIPE_TAG}"
    root = ensure_built(tag, FAMILY, Path(__file__).resolve(), ["--arg", f"diffusers_dir={instaflow.diffusers_dir}"])
    return RandomLoras(models_root=root, kohya=root / "loras" / KOHYA_NAME, diffusers=root / "loras" / DIFFUSERS_NAME)


REDUCED_FAMILY = "instaflow-reduced-lora"


def ensure_reduced_loras(reduced) -> RandomLoras:
    """The same LoRAs for the reduced SD1.5 stand-in (devtools/reduced_sd15.py), file names prefixed "reduced-"."""
    from devtools.reduced_sd15 import TWIN_PREFIX

    root = ensure_built(f"{REDUCED_FAMILY}-v{VERSION}-{reduced.tag}", REDUCED_FAMILY, Path(__file__).resolve(),
                        ["--arg", f"diffusers_dir={reduced.diffusers_dir}", "--arg", f"prefix={TWIN_PREFIX}"])
    return RandomLoras(models_root=root, kohya=root / "loras" / (TWIN_PREFIX + KOHYA_NAME),
                       diffusers=root / "loras" / (TWIN_PREFIX + DIFFUSERS_NAME))


def target_modules(unet_keys, text_encoder_keys) -> dict[str, list[str]]:
    """{'unet': [module paths], 'text_encoder': [module paths]} present in the given weight names."""
    unet_modules = {k[:-len(".weight")] for k in unet_keys if k.endswith(".weight")}
    text_modules = {k[:-len(".weight")] for k in text_encoder_keys if k.endswith(".weight")}
    unet = sorted(m for m in unet_modules
                  if any(m.endswith(".transformer_blocks.0." + s) for s in UNET_ATTENTION + UNET_OTHER_IN_BLOCK)
                  or any(m.endswith(".attentions.%s.%s" % (i, s)) for i in range(3) for s in UNET_TRANSFORMER_IO))
    text = sorted(m for m in text_modules if any(m.endswith("." + s) for s in TEXT_ATTENTION + TEXT_MLP))
    return {"unet": unet, "text_encoder": text}


def _random_pair(weight, rank: int, scale: float, generator):
    """(down, up) with std(scale * up @ down) = RELATIVE_UPDATE * std(weight); 4-D for convolutions."""
    import torch

    out_features, in_features = weight.shape[0], weight[0].numel()
    down = torch.randn((rank, in_features), generator=generator) / in_features ** 0.5
    # std(up @ down) = sqrt(rank) * std(up) * std(down) = std(up) * sqrt(rank / in_features)
    up = torch.randn((out_features, rank), generator=generator)
    up *= RELATIVE_UPDATE * weight.float().std() / scale * (in_features / rank) ** 0.5
    down, up = down.half().float(), up.half().float()
    if weight.ndim == 4:  # 1x1 convolution
        return down[:, :, None, None], up[:, :, None, None]
    return down, up


def _build(models_root: Path, diffusers_dir: str, prefix: str = "") -> None:
    import torch
    from safetensors import safe_open
    from safetensors.torch import save_file

    root = Path(diffusers_dir)
    weights = {}
    for part, file in (("unet", root / "unet" / "diffusion_pytorch_model.safetensors"),
                       ("text_encoder", root / "text_encoder" / "model.safetensors")):
        with safe_open(str(file), framework="pt") as handle:
            weights[part] = {k: handle.get_tensor(k) for k in handle.keys() if k.endswith(".weight")}
    targets = target_modules(weights["unet"], weights["text_encoder"])
    generator = torch.Generator().manual_seed(SEED)

    kohya, diffusers = {}, {}
    for part, modules in targets.items():
        for module in modules:
            weight = weights[part][module + ".weight"]
            down, up = _random_pair(weight, KOHYA_RANK, KOHYA_ALPHA / KOHYA_RANK, generator)
            name = ("lora_unet_" if part == "unet" else "lora_te_") + module.replace(".", "_")
            kohya[f"{name}.lora_down.weight"] = down
            kohya[f"{name}.lora_up.weight"] = up
            kohya[f"{name}.alpha"] = torch.tensor(KOHYA_ALPHA)

            down, up = _random_pair(weight, DIFFUSERS_RANK, 1.0, generator)
            diffusers.update(_diffusers_keys(part, module, down, up))

    (models_root / "loras").mkdir(parents=True)
    for name, state in ((KOHYA_NAME, kohya), (DIFFUSERS_NAME, diffusers)):
        save_file({k: v.half().contiguous() for k, v in state.items()}, str(models_root / "loras" / (prefix + name)))


_UNET_ATTENTION_PROJECTION = re.compile(r"^(?P<attention>.+\.attn[12])\.(?P<projection>to_q|to_k|to_v|to_out)(\.0)?$")


def _diffusers_keys(part: str, module: str, down, up) -> dict:
    attention = _UNET_ATTENTION_PROJECTION.match(module) if part == "unet" else None
    if attention:
        base = f"unet.{attention['attention']}.processor.{attention['projection']}_lora"
        return {f"{base}.down.weight": down, f"{base}.up.weight": up}
    if part == "text_encoder" and ".self_attn." in module:
        return {f"text_encoder.{module}.lora_linear_layer.down.weight": down,
                f"text_encoder.{module}.lora_linear_layer.up.weight": up}
    return {f"{part}.{module}.lora_A.weight": down, f"{part}.{module}.lora_B.weight": up}


if __name__ == "__main__":
    script_main(_build, sys.argv[1:], __doc__.splitlines()[0])
