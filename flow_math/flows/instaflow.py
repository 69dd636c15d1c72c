"""InstaFlow's rectified-flow convention and schedule: the one place they are written down. Torch only.

Source: the official pipeline, gnobitab/InstaFlow code/pipeline_rf.py (RectifiedFlowPipeline);
docs/conventions.md has the derivation. In ComfyUI terms a sample at noise level sigma in [0, 1]:

- Timestep: the UNet is called with the float timestep t = sigma * 1000 (one step: t = 1000;
  t = 0 is never evaluated).
- Noise path: x_sigma = (1 - sigma) * x_image + sigma * noise (pure noise at sigma = 1).
- Velocity: the UNet output v points FROM noise TO image (v ~ x_image - noise), and the official
  update is x <- x + dt * v while sigma falls by dt. This is the opposite sign of the SD3/Flux
  flow models in ComfyUI, whose CONST sampling uses denoised = x - sigma * output.
- Hence the image estimate ("denoised" in ComfyUI/k-diffusion terms) is x + sigma * v, and one
  Euler step from sigma = 1 to 0 reproduces the official one-step latents = noise + v exactly.
- Schedule: N uniform steps, UNet timesteps (1 - i/N) * 1000 for i = 0..N-1, dt = 1/N.

2-Rectified Flow (XCLiu/2_rectified_flow_from_sd_1_5) uses the same pipeline, so the same convention.
"""
from __future__ import annotations

import torch

from .broadcast import per_sample
from .family import FlowFamily, NodeText, Preset

TIMESTEP_MULTIPLIER = 1000.0


def timestep(sigma: torch.Tensor) -> torch.Tensor:
    """UNet timestep for noise level sigma."""
    return sigma * TIMESTEP_MULTIPLIER


def sigma_from_timestep(t: torch.Tensor) -> torch.Tensor:
    """Inverse of timestep()."""
    return t / TIMESTEP_MULTIPLIER


def denoised_from_velocity(x: torch.Tensor, sigma: torch.Tensor, velocity: torch.Tensor) -> torch.Tensor:
    """Image estimate at sigma given the predicted velocity (noise -> image)."""
    return x + per_sample(sigma, velocity) * velocity


def moved_along_velocity(x: torch.Tensor, velocity: torch.Tensor, sigma: float, sigma_next: float) -> torch.Tensor:
    """x carried by the velocity from noise level sigma to sigma_next: x + (sigma - sigma_next) * v.

    A falling sigma is the official sampling update x <- x + dt * v (toward the image); a rising sigma
    runs the flow backwards, toward the noise (inversion). Unlike a step through denoised it does not
    divide by sigma, so it also starts at sigma 0.
    """
    return x + (sigma - sigma_next) * velocity


def velocity_from_denoised(x: torch.Tensor, sigma: torch.Tensor, denoised: torch.Tensor) -> torch.Tensor:
    """Inverse of denoised_from_velocity(): the velocity (noise -> image) behind an image estimate at sigma > 0."""
    return (denoised - x) / per_sample(sigma, x)


def noised_latent(image_latent: torch.Tensor, noise: torch.Tensor, sigma: torch.Tensor) -> torch.Tensor:
    """Point on the straight noise path at sigma: pure noise at 1, the image at 0."""
    s = per_sample(sigma, noise)
    return s * noise + (1.0 - s) * image_latent


def instaflow_sigmas(steps: int, denoise: float = 1.0) -> torch.Tensor:
    """[1, 1 - 1/N, ..., 1/N, 0] scaled by denoise: N uniform Euler steps of size denoise/N.

    With timestep() this gives the official UNet timesteps 1000 * s * (1 - i/N) for i = 0..N-1;
    the final 0 is an end point, never a model call.
    """
    if steps < 1:
        raise ValueError(f"steps must be at least 1, got {steps}")
    if not 0.0 <= denoise <= 1.0:
        raise ValueError(f"denoise must be in [0, 1], got {denoise}")
    # Computed in float64 (Python floats) and rounded once to float32, in one tensor operation.
    return torch.tensor([(1.0 - i / steps) * denoise for i in range(steps + 1)], dtype=torch.float32)


def denoised(x: torch.Tensor, sigma: torch.Tensor, model_output: torch.Tensor, prediction_type=None) -> torch.Tensor:
    """The family record's form of denoised_from_velocity(): the UNet output is always the velocity."""
    return denoised_from_velocity(x, sigma, model_output)


FAMILY = FlowFamily(
    name="InstaFlow", label="InstaFlow / 2-Rectified Flow", folder="instaflow", architectures=("SD1.5",),
    needs="InstaFlow and 2-Rectified Flow need SD1.5 (a 320-channel UNet with a 768-dim CLIP ViT-L text context)",
    timestep=timestep, sigma=sigma_from_timestep, denoised=denoised, noised_latent=noised_latent, sigmas=instaflow_sigmas,
    scheduler="instaflow", patch_node="ModelSamplingInstaFlow", scheduler_node="InstaFlowScheduler",
    loader_node="InstaFlowLoader", scheduler_steps=(1, 10000), schedule_fits_other_flows=True,
    presets=(Preset("instaflow", "InstaFlow-0.9B (1 step, cfg 1)", steps=1, cfg=1.0, sampler="rectified_flow",
                    command="InstaFlow.ConvertToInstaFlow", menu_label="Convert to InstaFlow (1 step)"),
             Preset("2rf", "2-Rectified Flow (4 steps, cfg 1.5)", steps=4, cfg=1.5, sampler="rectified_flow",
                    command="InstaFlow.ConvertTo2RectifiedFlow", menu_label="Convert to 2-Rectified Flow (4 steps, cfg 1.5)")),
    patch_text=NodeText(
        "Model Sampling InstaFlow (Rectified Flow)", "InstaFlow/model",
        "Turns an SD1.5-architecture InstaFlow or 2-Rectified-Flow model loaded by any loader into a rectified-flow "
        "model (timestep = sigma*1000, velocity from noise to image). Place it between the loader (or LoRA loaders) "
        "and the sampler; a model that is not SD1.5 gets a warning.",
        {"model": "An InstaFlow / 2-Rectified-Flow model (SD1.5 architecture), e.g. from Load Checkpoint or a LoRA loader.",
         "out:0": "The same model, sampling as InstaFlow rectified flow. Place it after LoRA loaders or before; do not "
                  "follow it with ModelSamplingSD3, which flips the velocity sign."}),
    scheduler_text=NodeText(
        "InstaFlow Scheduler", "InstaFlow/sampling",
        "The official InstaFlow / 2-Rectified-Flow schedule as SIGMAS for SamplerCustom: N uniform steps from sigma = "
        "denoise to 0 (use it with KSamplerSelect set to rectified_flow).",
        {"model": "The rectified-flow model the sigmas are for.",
         "steps": "Euler steps. InstaFlow-0.9B: 1. 2-Rectified Flow: 2-8 (25 in the paper).",
         "denoise": "Starting noise level: 1.0 for text-to-image, lower keeps more of an input image.",
         "out:0": "Sigmas [1, 1-1/N, ..., 1/N, 0] scaled by denoise, for SamplerCustom."}),
    loader_text=NodeText(
        "Load InstaFlow Checkpoint", "InstaFlow/loaders",
        "Loads an InstaFlow or 2-Rectified-Flow checkpoint (diffusers folder or single file), ready for rectified-flow "
        "sampling.",
        {"ckpt_name": "Diffusers folders in models/instaflow or models/diffusers (e.g. instaflow_0_9B_from_sd_1_5), or "
                      "single-file checkpoints in models/instaflow or models/checkpoints.",
         "out:0": "The UNet, already patched for rectified-flow sampling.",
         "out:1": "The CLIP text encoder, for CLIPTextEncode.",
         "out:2": "The VAE, for VAEDecode / VAEEncode."}),
)
