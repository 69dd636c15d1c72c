"""Independent reference for InstaFlow + ControlNet (REFERENCE.md section 3).

Mirrors the official gnobitab/InstaFlow code/pipeline_rf_ctrl.py, RectifiedFlowCtrlPipeline.__call__:
- the control image is prepared with do_normalize=False: RGB in [0, 1], (B, 3, H, W), not duplicated
  for guidance (it broadcasts against the doubled latents);
- timesteps = [(1 - i/N) * 1000 for i in range(N)], dt = 1/N, as in pipeline_rf.py;
- controlnet_keep[i] = 1 - float(i/N < control_guidance_start or (i+1)/N > control_guidance_end):
  a step is controlled only if its whole interval [i/N, (i+1)/N] lies inside the window;
- every step: down, mid = controlnet(latent_model_input, t, encoder_hidden_states=prompt_embeds,
  controlnet_cond=image, conditioning_scale=scale * keep[i]) with the SAME float t and the same raw
  latents (and with guidance the same [negative, positive] batch) as the UNet, then
  v = unet(latent_model_input, t, prompt_embeds, down_block_additional_residuals=down,
  mid_block_additional_residual=mid); guidance v = v_neg + g * (v_pos - v_neg); latents += dt * v.
guess_mode is off in the official loop ("if guess_mode and False").

Only diffusers modules are used (the UNet, text encoder and VAE of ReferenceInstaFlow and a diffusers
ControlNetModel): nothing from the pack or ComfyUI.
"""
from __future__ import annotations

from pathlib import Path
from typing import Optional

import numpy as np
import torch
from diffusers import ControlNetModel

from devtools.reference_rf import Prompt, ReferenceInstaFlow


def official_controlnet_keep(steps: int, start: float, end: float) -> list[float]:
    """pipeline_rf_ctrl.py's controlnet_keep for one ControlNet."""
    return [1.0 - float(i / steps < start or (i + 1) / steps > end) for i in range(steps)]


def control_image_tensor(image: np.ndarray) -> torch.Tensor:
    """uint8 (H, W, 3) or (B, H, W, 3) -> float (B, 3, H, W) in [0, 1] (do_normalize=False)."""
    array = image if image.ndim == 4 else image[None]
    return torch.from_numpy(array.astype(np.float32) / 255.0).permute(0, 3, 1, 2).contiguous()


class ReferenceInstaFlowControlNet:
    def __init__(self, base: ReferenceInstaFlow, controlnet_dir):
        self.base = base
        # low_cpu_mem_usage=False: plain loading, without diffusers asking for `accelerate`.
        self.controlnet = ControlNetModel.from_pretrained(Path(controlnet_dir), low_cpu_mem_usage=False).float().eval()

    @torch.no_grad()
    def generate(
        self,
        prompt: Prompt,
        noise: torch.Tensor,
        control_image: np.ndarray,
        steps: int = 1,
        guidance_scale: float = 1.0,
        negative_prompt: Optional[Prompt] = None,
        conditioning_scale: float = 1.0,
        control_guidance_start: float = 0.0,
        control_guidance_end: float = 1.0,
        controlnet_keep: Optional[list[float]] = None,
    ) -> torch.Tensor:
        """Images (B, H, W, 3) in [0, 1]. `controlnet_keep` overrides the window-derived per-step keep."""
        base = self.base
        latents = noise.to(torch.float32).clone()
        batch = latents.shape[0]
        prompts = [prompt] * batch if isinstance(prompt, str) else list(prompt)
        embeds = base.encode_prompt(prompts)
        do_cfg = guidance_scale > 1.0
        if do_cfg:
            negative = negative_prompt if negative_prompt is not None else ""
            negatives = [negative] * batch if isinstance(negative, str) else list(negative)
            embeds = torch.cat([base.encode_prompt(negatives), embeds])

        image = control_image_tensor(control_image)
        image = image.repeat(batch // image.shape[0], 1, 1, 1)
        if do_cfg:
            image = torch.cat([image] * 2)  # what the official broadcast does for batch 1

        keep = controlnet_keep or official_controlnet_keep(steps, control_guidance_start, control_guidance_end)
        timesteps = [(1.0 - i / steps) * 1000.0 for i in range(steps)]
        dt = 1.0 / steps
        for i, t in enumerate(timesteps):
            model_input = torch.cat([latents] * 2) if do_cfg else latents
            down, mid = self.controlnet(model_input, t, encoder_hidden_states=embeds, controlnet_cond=image,
                                        conditioning_scale=conditioning_scale * keep[i], guess_mode=False,
                                        return_dict=False)
            v = base.unet(model_input, t, encoder_hidden_states=embeds, down_block_additional_residuals=down,
                          mid_block_additional_residual=mid, return_dict=False)[0]
            if do_cfg:
                v_neg, v_pos = v.chunk(2)
                v = v_neg + guidance_scale * (v_pos - v_neg)
            latents = latents + dt * v
        return base.decode(latents)
