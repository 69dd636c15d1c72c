"""PeRFlow's piecewise rectified-flow convention and schedule: the one place they are written down. Torch only.

Source: magic-research/piecewise-rectified-flow, src/scheduler_perflow.py (PeRFlowScheduler:
Time_Windows, set_timesteps, get_window_alpha, step, add_noise); docs/conventions.md has the
derivation and the mapping onto ComfyUI. Notation: t in [0, 1] is PeRFlow's time, t = 1 is noise.

- Sigma is t, and the UNet timestep is 1000 * t. The UNet sees the raw latent; sampling starts
  from pure N(0, I) at t = 1.
- The time axis is cut into K = 4 equal windows [1, .75], [.75, .5], [.5, .25], [.25, 0]. A time
  on a boundary belongs to the window that STARTS there (the official lookup subtracts 1e-4).
- Each window has the noise levels of SD's DDPM schedule at its ends: abar(t) =
  alphas_cumprod[int(1000 t) - 1] (index clamped at 0), with the scaled_linear betas 0.00085..0.012.
- The model output e is turned into the velocity of the straight line inside the current window:
  z_end = lambda_t * x + eta_t * e is the predicted point at the window's end and
  v = (z_end - x) / (t_end - t). For `velocity` models e is v itself. v is dx/dt with t = 1 at
  noise: the opposite sign of InstaFlow's velocity (flow_math/flows/instaflow.py).
- The official step is x <- x + (t_next - t) * v, so the image estimate ComfyUI's Euler step
  needs is denoised = x - t * v (in the last window it is exactly z_end).
- Schedule: set_timesteps(N) gives each window N // K steps (one more for the first N % K
  windows), linspace(t_start, t_end, n, endpoint=False), times 1000 TRUNCATED to integers;
  N < K runs K steps.

ComfyUI's CFG acts on denoised; denoised is affine in e, so it equals PeRFlow's CFG on e.
"""
from __future__ import annotations

import math

import torch

from .broadcast import per_sample
from .family import FlowFamily, NodeText, Preset

PREDICTION_TYPES = ("diff_eps", "ddim_eps", "velocity")
# What the official README and scripts use for each released base (the delta weights' model card
# still calls diff_eps by its old name, "epsilon").
OFFICIAL_PREDICTION_TYPE = {"SD1.5": "diff_eps", "SDXL": "ddim_eps", "SD2.x": "velocity"}
NUM_WINDOWS = 4
TRAIN_TIMESTEPS = 1000
TIMESTEP_MULTIPLIER = float(TRAIN_TIMESTEPS)
# The official window lookup treats t within a tenth of a training step below a boundary as on it.
_BOUNDARY_TOLERANCE = 0.1 / TRAIN_TIMESTEPS
_BETA_START, _BETA_END = 0.00085, 0.012  # SD1.5 / SDXL / SD2.x "scaled_linear" DDPM schedule

WINDOW_STARTS = tuple(i / NUM_WINDOWS for i in range(NUM_WINDOWS, 0, -1))  # (1.0, 0.75, 0.5, 0.25)
WINDOW_ENDS = WINDOW_STARTS[1:] + (0.0,)                                     # (0.75, 0.5, 0.25, 0.0)


def _alphas_cumprod() -> torch.Tensor:
    # float32 throughout, as the official scheduler computes it.
    betas = torch.linspace(_BETA_START ** 0.5, _BETA_END ** 0.5, TRAIN_TIMESTEPS, dtype=torch.float32) ** 2
    return torch.cumprod(1.0 - betas, dim=0)


ALPHAS_CUMPROD = _alphas_cumprod()


def alpha_bar(t: float) -> float:
    """abar at time t, indexed as the official get_window_alpha / add_noise do."""
    return float(ALPHAS_CUMPROD[max(int(round(t * TRAIN_TIMESTEPS)) - 1, 0)])


def timestep(sigma: torch.Tensor) -> torch.Tensor:
    return sigma * TIMESTEP_MULTIPLIER


def sigma_from_timestep(t: torch.Tensor) -> torch.Tensor:
    return t / TIMESTEP_MULTIPLIER


def window_of(sigma: float) -> int:
    """Index (0 = the noise side) of the window a time belongs to; a boundary starts its window."""
    index = sum(1 for end in WINDOW_ENDS if sigma - _BOUNDARY_TOLERANCE <= end)
    return min(index, NUM_WINDOWS - 1)


# Constant tables, made once per device (and dtype): a copy from the host inside every model call would stop
# the call from being captured as a CUDA graph (acceleration/), and costs a transfer each time.
_constants: dict = {}


def _constant(values, dtype: torch.dtype, device: torch.device) -> torch.Tensor:
    key = (id(values), dtype, device)
    table = _constants.get(key)
    if table is None:
        table = _constants[key] = torch.tensor(values, dtype=dtype, device=device)
    return table


_WINDOW_ROWS = tuple((s, e, alpha_bar(s), alpha_bar(e)) for s, e in zip(WINDOW_STARTS, WINDOW_ENDS))


def _window_table(like: torch.Tensor) -> torch.Tensor:
    """(K, 4) rows of (t_start, t_end, abar_start, abar_end) on like's device, in float32."""
    return _constant(_WINDOW_ROWS, torch.float32, like.device)


def _windows(sigma: torch.Tensor) -> torch.Tensor:
    """window_of() for every entry of a sigma tensor, on its device (no host sync)."""
    ends = _constant(WINDOW_ENDS, sigma.dtype, sigma.device)
    index = ((sigma.reshape(-1, 1) - _BOUNDARY_TOLERANCE) <= ends).sum(dim=1)
    return index.clamp(max=NUM_WINDOWS - 1)


def velocity(x: torch.Tensor, model_output: torch.Tensor, sigma: torch.Tensor, prediction_type: str) -> torch.Tensor:
    """PeRFlow's velocity dx/dt (t = 1 at noise) at time sigma, from the UNet output."""
    if prediction_type == "velocity":
        return model_output
    if prediction_type not in PREDICTION_TYPES:
        raise ValueError(f"PeRFlow prediction_type must be one of {', '.join(PREDICTION_TYPES)}, got {prediction_type!r}")
    t_c = sigma.to(torch.float32).reshape(-1)
    t_s, t_e, abar_s, abar_e = _window_table(t_c)[_windows(t_c)].unbind(dim=1)
    lambda_s = (abar_e / abar_s) ** 0.5
    if prediction_type == "ddim_eps":  # the teacher's DDIM step from the window start to its end
        eta_s = (1 - abar_e) ** 0.5 - (abar_e / abar_s * (1 - abar_s)) ** 0.5
    else:  # diff_eps
        eta_s = -((abar_e / abar_s) - 1) ** 0.5
    # The window's straight line from its start seen from t_c (official lambda_t, eta_t).
    scale = lambda_s * (t_c - t_s) + (t_e - t_c)
    lambda_t = lambda_s * (t_e - t_s) / scale
    eta_t = eta_s * (t_e - t_c) / scale
    z_end = _broadcast(lambda_t, x) * x + _broadcast(eta_t, x) * model_output
    return (z_end - x) / _broadcast(t_e - t_c, x)


def _broadcast(values: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    return per_sample(values, x).to(x.dtype)


def denoised(x: torch.Tensor, model_output: torch.Tensor, sigma: torch.Tensor, prediction_type: str) -> torch.Tensor:
    """The image estimate for ComfyUI's Euler step: x - sigma * v, so that x + (t_next - t) * v is the step."""
    return x - per_sample(sigma, x) * velocity(x, model_output, sigma, prediction_type)


def _vp(latent: torch.Tensor, noise: torch.Tensor, t: float) -> torch.Tensor:
    """The DDPM marginal at time t with this noise (the official add_noise at timestep 1000 t)."""
    if t >= 1.0 - _BOUNDARY_TOLERANCE:
        return noise  # the official sampler starts from pure noise at t = 1
    if t <= 0.0:
        return latent
    abar = alpha_bar(t)
    return math.sqrt(abar) * latent + math.sqrt(1.0 - abar) * noise


def noised_latent(latent: torch.Tensor, noise: torch.Tensor, sigma: float) -> torch.Tensor:
    """The noisy latent PeRFlow expects at time sigma.

    On a window boundary this is the DDPM marginal the windows were trained on (pure noise at 1).
    Inside a window it is the straight line between the marginals at the window's ends, with the
    same noise: for a single image, the DDIM step that defines the window (ddim_eps) maps the one
    exactly onto the other, so this is the piecewise-straight path itself.
    """
    window = window_of(sigma)
    t_s, t_e = WINDOW_STARTS[window], WINDOW_ENDS[window]
    if abs(sigma - t_s) <= _BOUNDARY_TOLERANCE:
        return _vp(latent, noise, t_s)
    r = (t_s - sigma) / (t_s - t_e)
    return (1.0 - r) * _vp(latent, noise, t_s) + r * _vp(latent, noise, t_e)


def window_start_for_denoise(denoise: float) -> int:
    """Index of the first window an img2img run with this denoise uses: the nearest boundary, ties up."""
    if not 0.0 < denoise <= 1.0:
        raise ValueError(f"denoise must be in (0, 1] for a PeRFlow schedule, got {denoise}")
    windows = max(1, min(NUM_WINDOWS, math.floor(denoise * NUM_WINDOWS + 0.5)))
    return NUM_WINDOWS - windows


def perflow_timesteps(steps: int, first_window: int = 0) -> list[int]:
    """The official set_timesteps list (integers, 1000 at noise) over windows first_window..K-1."""
    if steps < 1:
        raise ValueError(f"steps must be at least 1, got {steps}")
    windows = NUM_WINDOWS - first_window
    steps = max(steps, windows)  # as the official scheduler: fewer steps than windows run one per window
    timesteps = []
    for i in range(windows):
        count = steps // windows + (1 if i < steps % windows else 0)
        t_s, t_e = WINDOW_STARTS[first_window + i], WINDOW_ENDS[first_window + i]
        step = (t_e - t_s) / count  # numpy.linspace(t_s, t_e, count, endpoint=False), in float64
        timesteps += [int((k * step + t_s) * TRAIN_TIMESTEPS) for k in range(count)]
    return timesteps


def perflow_sigmas(steps: int, denoise: float = 1.0) -> torch.Tensor:
    """ComfyUI sigmas: perflow_timesteps / 1000, then 0. Empty for denoise 0 (nothing to sample).

    denoise < 1 starts on the nearest window boundary (0.75, 0.5 or 0.25), where the model was
    trained on DDPM-noised latents (noised_latent), and spreads the steps over the windows left.
    """
    if denoise <= 0.0:
        return torch.zeros(0, dtype=torch.float32)
    first = window_start_for_denoise(denoise)
    times = [t / TRAIN_TIMESTEPS for t in perflow_timesteps(steps, first)]
    return torch.tensor(times + [0.0], dtype=torch.float32)


# The family record's argument order (flow_math/flows/family.py): sigma before the model output, sigma as a tensor;
# ComfyUI asks for one noise level per call (the start, or each step's inpainting mask).
def _denoised(x, sigma, model_output, prediction_type):
    return denoised(x, model_output, sigma, prediction_type)


def _noised_latent(latent, noise, sigma):
    return noised_latent(latent, noise, float(sigma.reshape(-1)[0]))


FAMILY = FlowFamily(
    name="PeRFlow", label="PeRFlow", folder="perflow", architectures=("SD1.5", "SDXL", "SD2.x"),
    needs="PeRFlow needs an SD1.5, SDXL or SD2.x model",
    timestep=timestep, sigma=sigma_from_timestep, denoised=_denoised, noised_latent=_noised_latent, sigmas=perflow_sigmas,
    prediction_types=PREDICTION_TYPES, official_prediction_type=OFFICIAL_PREDICTION_TYPE,
    scheduler="perflow", patch_node="ModelSamplingPeRFlow", scheduler_node="PeRFlowScheduler", loader_node="PeRFlowLoader",
    also_patched_by=("PeRFlowDeltaWeights",), scheduler_steps=(4, 1000),
    presets=(Preset("perflow", "PeRFlow SD1.5 (4 steps, cfg 4.5)", steps=4, cfg=4.5, sampler="euler",
                    command="InstaFlow.ConvertToPeRFlow", menu_label="Convert to PeRFlow (4 steps, cfg 4.5)"),),
    patch_text=NodeText(
        "Model Sampling PeRFlow (Piecewise Rectified Flow)", "InstaFlow/PeRFlow",
        "Turns a PeRFlow model loaded by any loader (SD1.5, SDXL, SD2.x) into a piecewise-rectified-flow model: sigma = "
        "PeRFlow time, timestep = sigma*1000, 4 windows. Sample with KSampler euler + perflow.",
        {"model": "A PeRFlow model, e.g. perflow-sd15-dreamshaper from Load Checkpoint, or an SD1.5 finetune with the "
                  "PeRFlow delta weights merged.",
         "prediction_type": "What the UNet predicts, as PeRFlow's scheduler names it. diff_eps: SD1.5 models and the delta "
                            "weights (the model card's old name 'epsilon'); ddim_eps: SDXL; velocity: SD2.1 (artius).",
         "out:0": "The same model, sampling as PeRFlow. Use scheduler perflow (or PeRFlowScheduler) with the euler or "
                  "rectified_flow sampler; do not follow it with ModelSamplingSD3 or ModelSamplingInstaFlow."}),
    scheduler_text=NodeText(
        "PeRFlow Scheduler", "InstaFlow/PeRFlow",
        "The official PeRFlow schedule as SIGMAS for SamplerCustom: the steps spread over 4 time windows (e.g. 6 steps: "
        "1000, 875, 750, 625, 500, 250), for a model patched by ModelSamplingPeRFlow.",
        {"model": "The PeRFlow model the sigmas are for (patched by ModelSamplingPeRFlow or PeRFlowLoader).",
         "steps": "Sampling steps: 4-8 (SD1.5: 4 at cfg 4.5, 8 at cfg 7.5; SDXL: 6 at cfg 2). Fewer than 4 run 4, one per "
                  "window, as the official scheduler does.",
         "denoise": "1.0 for text-to-image. Lower for img2img: the start snaps to the nearest window boundary (0.75, 0.5 "
                    "or 0.25), where PeRFlow was trained on DDPM-noised images, and the steps cover the windows left; 0 "
                    "samples nothing.",
         "out:0": "Sigmas = PeRFlow's timesteps / 1000 (integer timesteps, as the official scheduler truncates them), then "
                  "0; for SamplerCustom with the euler or rectified_flow sampler."}),
    loader_text=NodeText(
        "Load PeRFlow Checkpoint", "InstaFlow/PeRFlow",
        "Loads a PeRFlow checkpoint (SD1.5, SDXL or SD2.x; diffusers folder as published, or single file), ready for 4-8 "
        "step sampling with KSampler euler + perflow.",
        {"ckpt_name": "Diffusers folders in models/perflow or models/diffusers (e.g. perflow-sd15-dreamshaper, "
                      "perflow-sdxl-base with its v0-fix variant files), or single-file checkpoints in models/perflow or "
                      "models/checkpoints.",
         "out:0": "The UNet, already patched for PeRFlow sampling with the official prediction type of its architecture "
                  "(SD1.5: diff_eps, SDXL: ddim_eps, SD2.x: velocity).",
         "out:1": "The text encoder(s), for CLIPTextEncode (SDXL: both CLIP-L and bigG).",
         "out:2": "The VAE, for VAEDecode / VAEEncode."}),
)
