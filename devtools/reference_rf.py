"""Independent reference for InstaFlow / 2-Rectified Flow text-to-image (REFERENCE.md section 1).

Mirrors the official gnobitab/InstaFlow code/pipeline_rf.py, class RectifiedFlowPipeline:
- encode_prompt: tokenizer(padding="max_length", max_length=tokenizer.model_max_length (77),
  truncation=True), text_encoder(input_ids)[0]; the negative prompt defaults to "" (only with CFG).
- __call__ steps 3-7: do_classifier_free_guidance = guidance_scale > 1.0;
  timesteps = [(1. - i/num_inference_steps) * 1000. for i in range(num_inference_steps)];
  dt = 1.0 / num_inference_steps; vec_t = ones(B) * t;
  v_pred = unet(cat([latents] * 2) if CFG else latents, vec_t, encoder_hidden_states=cat([neg, pos])).sample;
  v_pred = v_pred_neg + guidance_scale * (v_pred_text - v_pred_neg); latents = latents + dt * v_pred.
- decode: vae.decode(latents / vae.config.scaling_factor), then the VaeImageProcessor
  postprocess (image / 2 + 0.5).clamp(0, 1) (same as its decode_latents).
The starting latents are given (prepare_latents multiplies them by PNDMScheduler.init_noise_sigma = 1).

Only diffusers/transformers modules are used: nothing from the pack or from ComfyUI, so the pack can be
checked against it. velocity_sign and timestep_scale exist to build deliberately wrong variants
(the sign of SD3/Flux-style flow models; timesteps that are not sigma * 1000).
"""
from __future__ import annotations

from pathlib import Path
from typing import List, Optional, Union

import numpy as np
import torch
from diffusers import AutoencoderKL, UNet2DConditionModel
from transformers import CLIPTextModel, CLIPTokenizer

Prompt = Union[str, List[str]]


class ReferenceInstaFlow:
    def __init__(self, diffusers_dir, device="cpu", dtype=torch.float32):
        """CPU fp32 for the tests; the benchmark also runs it on CUDA in fp16."""
        root = Path(diffusers_dir)
        self.device, self.dtype = torch.device(device), dtype
        self.tokenizer = CLIPTokenizer.from_pretrained(root / "tokenizer")
        self.text_encoder = CLIPTextModel.from_pretrained(root / "text_encoder").to(self.device, dtype).eval()
        # low_cpu_mem_usage=False: plain loading, without diffusers asking for `accelerate`.
        self.unet = UNet2DConditionModel.from_pretrained(root / "unet", low_cpu_mem_usage=False).to(self.device, dtype).eval()
        self.vae = AutoencoderKL.from_pretrained(root / "vae", low_cpu_mem_usage=False).to(self.device, dtype).eval()
        self.scaling_factor = float(self.vae.config.scaling_factor)  # 0.18215

    @torch.no_grad()
    def encode_prompt(self, prompt: Prompt) -> torch.Tensor:
        """(B, 77, 768) last hidden state of the CLIP text encoder."""
        ids = self.tokenizer(
            prompt, padding="max_length", max_length=77, truncation=True, return_tensors="pt"
        ).input_ids
        return self.text_encoder(ids.to(self.device))[0]

    @torch.no_grad()
    def velocity(self, latents: torch.Tensor, t: float, embeds: torch.Tensor) -> torch.Tensor:
        """The UNet's output at float timestep t (0..1000): InstaFlow's velocity, noise -> image."""
        vec_t = torch.ones((latents.shape[0],), dtype=latents.dtype, device=latents.device) * t
        return self.unet(latents, vec_t, encoder_hidden_states=embeds).sample

    @torch.no_grad()
    def decode(self, latents: torch.Tensor) -> torch.Tensor:
        """Latents -> images (B, H, W, 3) in [0, 1]."""
        image = self.vae.decode(latents / self.scaling_factor).sample
        return (image / 2 + 0.5).clamp(0, 1).permute(0, 2, 3, 1).float().contiguous()

    @torch.no_grad()
    def generate(
        self,
        prompt: Prompt,
        noise: torch.Tensor,
        steps: int = 1,
        guidance_scale: float = 1.0,
        negative_prompt: Optional[Prompt] = None,
        *,
        velocity_sign: float = 1.0,
        timestep_scale: float = 1000.0,
    ) -> torch.Tensor:
        """Images (B, H, W, 3) in [0, 1] from the starting latents `noise` (B, 4, H/8, W/8)."""
        latents = noise.to(self.device, self.dtype).clone()
        batch = latents.shape[0]
        prompts = [prompt] * batch if isinstance(prompt, str) else list(prompt)
        embeds = self.encode_prompt(prompts)
        do_cfg = guidance_scale > 1.0
        if do_cfg:
            negative = negative_prompt if negative_prompt is not None else ""
            negatives = [negative] * batch if isinstance(negative, str) else list(negative)
            embeds = torch.cat([self.encode_prompt(negatives), embeds])

        timesteps = [(1.0 - i / steps) * timestep_scale for i in range(steps)]
        dt = 1.0 / steps
        for t in timesteps:
            model_input = torch.cat([latents] * 2) if do_cfg else latents
            v = self.velocity(model_input, t, embeds)
            if do_cfg:
                v_neg, v_pos = v.chunk(2)
                v = v_neg + guidance_scale * (v_pos - v_neg)
            latents = latents + dt * velocity_sign * v
        return self.decode(latents)


def to_uint8(images) -> np.ndarray:
    """Quantize [0, 1] images like ComfyUI's SaveImage: np.clip(255 * x, 0, 255).astype(np.uint8)."""
    if isinstance(images, torch.Tensor):
        images = images.detach().cpu().float().numpy()
    return np.clip(255.0 * np.asarray(images), 0, 255).astype(np.uint8)
