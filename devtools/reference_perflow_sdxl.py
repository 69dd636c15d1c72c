"""Independent reference for PeRFlow SDXL: StableDiffusionXLPipeline + PeRFlowScheduler on diffusers modules.

Source: magic-research/piecewise-rectified-flow scripts/sdxl_t2i_merged.py (StableDiffusionXLPipeline
.from_pretrained(..., variant="v0-fix") with PeRFlowScheduler(prediction_type="ddim_eps")), and the
conditioning of diffusers' StableDiffusionXLPipeline (encode_prompt, _get_add_time_ids), mirrored here:
- each prompt goes through tokenizer / text_encoder (CLIP ViT-L) and tokenizer_2 / text_encoder_2
  (OpenCLIP bigG), padding="max_length" to 77 with truncation; the UNet context is
  cat([hidden_states[-2] of text_encoder, hidden_states[-2] of text_encoder_2], -1) (768 + 1280);
- the pooled embedding is text_encoder_2's projected output (text_embeds);
- with guidance the negative prompt is encoded the same way (an explicit negative prompt: the
  force_zeros_for_empty_prompt shortcut only applies without one);
- added conditions: text_embeds = pooled, time_ids = (H, W, 0, 0, H, W) for an H x W image
  (original size, crop top-left, target size), the same for the negative half;
- decode: vae.decode(latents / 0.13025), (image / 2 + 0.5).clamp(0, 1).
The denoising loop and scheduler are shared with SD1.5 (reference_perflow.PeRFlowLoop).

ComfyUI's stock CLIPTextEncode on an SDXL CLIP builds the same conditioning: clip_l and clip_g
outputs of the penultimate layer without the final layer norm (comfy/sdxl_clip.py), clip_g padded with
token 0 ("!", as tokenizer_2), the pooled output from clip_g's projection, and width/height/target
sizes defaulting to the latent's size times 8 with zero crops (comfy/samplers.py encode_model_conds,
comfy/model_base.py SDXL.encode_adm). So a plain CLIPTextEncode graph is compared with this reference.
Nothing from the pack or ComfyUI is imported.
"""
from __future__ import annotations

from pathlib import Path

import torch
from diffusers import AutoencoderKL, UNet2DConditionModel
from transformers import CLIPTextModel, CLIPTextModelWithProjection, CLIPTokenizer

from devtools.reference_perflow import PeRFlowLoop


class ReferencePeRFlowSDXL(PeRFlowLoop):
    def __init__(self, folder: Path, unet_dir: Path, variant: str):
        """`folder`: the diffusers pipeline folder; `unet_dir`: its UNet in diffusers' layout."""
        folder = Path(folder)
        self.tokenizers = [CLIPTokenizer.from_pretrained(folder / "tokenizer"),
                           CLIPTokenizer.from_pretrained(folder / "tokenizer_2")]
        self.text_encoders = [
            CLIPTextModel.from_pretrained(folder / "text_encoder", variant=variant).float().eval(),
            CLIPTextModelWithProjection.from_pretrained(folder / "text_encoder_2", variant=variant).float().eval(),
        ]
        self.unet = UNet2DConditionModel.from_pretrained(unet_dir, low_cpu_mem_usage=False).float().eval()
        self.vae = AutoencoderKL.from_pretrained(folder / "vae", variant=variant, low_cpu_mem_usage=False).float().eval()
        self.scaling_factor = float(self.vae.config.scaling_factor)  # 0.13025

    @torch.no_grad()
    def encode_prompt(self, prompts):
        """(context (B, 77, 2048), pooled (B, 1280))."""
        hidden, pooled = [], None
        for tokenizer, encoder in zip(self.tokenizers, self.text_encoders):
            ids = tokenizer(prompts, padding="max_length", max_length=tokenizer.model_max_length, truncation=True,
                            return_tensors="pt").input_ids
            out = encoder(ids, output_hidden_states=True)
            if isinstance(encoder, CLIPTextModelWithProjection):
                pooled = out[0]
            hidden.append(out.hidden_states[-2])
        return torch.cat(hidden, dim=-1), pooled

    def condition(self, prompts, negatives):
        context, pooled = self.encode_prompt(prompts)
        if negatives is not None:
            negative_context, negative_pooled = self.encode_prompt(negatives)
            context, pooled = torch.cat([negative_context, context]), torch.cat([negative_pooled, pooled])
        return context, pooled

    def model_output(self, latents, timestep, conditioning):
        context, pooled = conditioning
        height, width = latents.shape[-2] * 8, latents.shape[-1] * 8
        time_ids = torch.tensor([[height, width, 0, 0, height, width]], dtype=latents.dtype).repeat(latents.shape[0], 1)
        return self.unet(latents, timestep, encoder_hidden_states=context,
                         added_cond_kwargs={"text_embeds": pooled, "time_ids": time_ids}).sample

    @torch.no_grad()
    def decode(self, latents):
        image = self.vae.decode(latents / self.scaling_factor).sample
        return (image / 2 + 0.5).clamp(0, 1).permute(0, 2, 3, 1).float().contiguous()
