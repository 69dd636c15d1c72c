"""Independent reference for PeRFlow's delta weights on a fine-tuned SD1.5 ("PeRFlow + dreamshaper").

Source: magic-research/piecewise-rectified-flow README (the delta-weights example) and
src/utils_perflow.py merge_delta_weights_into_unet: the delta folder is read with
UNet2DConditionModel.from_pretrained(folder, torch_dtype=float16, variant="v0-1").state_dict(); the
finetune's pipeline keeps its own text encoder and VAE; its UNet weights become, key by key (the key
sets must be equal), W.to(dW.dtype) + dW, cast back to W's dtype. `strength` scales dW (the official
code has strength 1; 0.5 is exact in fp16). Sampling is then the official PeRFlow loop with
diff_eps (reference_perflow.py).

The stand-in finetune is a single LDM-layout checkpoint (devtools/random_weight_delta.py), read
with diffusers' single-file converters. Nothing from the pack or ComfyUI is imported.
"""
from __future__ import annotations

from pathlib import Path

import torch
from diffusers import UNet2DConditionModel
from diffusers.loaders.single_file_utils import convert_ldm_unet_checkpoint
from safetensors.torch import load_file

from devtools.reference_perflow import ReferencePeRFlowSD15
from devtools.reference_rf import ReferenceInstaFlow
from devtools.reference_weight_delta import use_text_encoder_and_vae_of


class FinetuneWithDelta:
    """The finetune's pipeline (UNet, text encoder, VAE), built once, with strength * dW of any variant merged
    into its UNet on request: each merge starts again from the finetune's own UNet weights, read back from its
    file, so one pipeline serves every variant and strength (building one costs several seconds)."""

    @torch.no_grad()
    def __init__(self, sd15_dir: Path, finetune_file: Path, delta_folder: Path):
        self.modules = ReferenceInstaFlow(sd15_dir)  # SD1.5 configs and tokenizer; every weight is replaced
        self.finetune_file, self.delta_folder = finetune_file, delta_folder
        finetune = load_file(str(finetune_file))
        use_text_encoder_and_vae_of(self.modules, finetune)
        del finetune

    @torch.no_grad()
    def pipeline(self, variant: str, strength: float = 1.0) -> ReferencePeRFlowSD15:
        unet = self.modules.unet
        unet.load_state_dict(convert_ldm_unet_checkpoint(load_file(str(self.finetune_file)), dict(unet.config)))
        if strength:
            delta = UNet2DConditionModel.from_pretrained(self.delta_folder, torch_dtype=torch.float16, variant=variant,
                                                         low_cpu_mem_usage=False).state_dict()
            weights = unet.state_dict()
            if weights.keys() != delta.keys():
                raise KeyError("the delta's UNet keys differ from the finetune's")
            for key, weight in weights.items():
                weight.copy_((weight.to(delta[key].dtype) + strength * delta[key]).to(weight.dtype))
        return ReferencePeRFlowSD15(self.modules)
