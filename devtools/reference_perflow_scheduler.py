"""Independent re-implementation of PeRFlow's official scheduler, with knobs for broken variants.

Source: magic-research/piecewise-rectified-flow, src/scheduler_perflow.py (class PeRFlowScheduler and
its Time_Windows helper), rewritten here with numpy and torch only: nothing from the pack, from
ComfyUI or from that repository is imported, so the pack can be checked against it.

What the official scheduler does (and this module repeats, in the same dtypes):
- time t in [0, 1], t = 1 is noise; the UNet is called with the integer timestep 1000 t (int64);
- four equal windows [1, .75], [.75, .5], [.5, .25], [.25, 0]; a time on a boundary belongs to the
  window that STARTS there (the lookup subtracts a tenth of a training step before comparing);
- set_timesteps(N): N below the window count is raised to it; window i (from the noise side) gets
  N // K + 1 points if i < N % K else N // K, numpy.linspace(t_start, t_end, n, endpoint=False),
  times 1000 truncated to int64;
- the noise level of a window end is alphas_cumprod[int(1000 t) - 1] (clamped at 0) of SD's
  scaled_linear DDPM betas (0.00085..0.012, 1000 steps), float32;
- step(): the model output e becomes the velocity of the window's straight line
  (ddim_eps / diff_eps: predicted window end z_end = lambda_t x + eta_t e, v = (z_end - x) / (t_e - t);
  velocity: v = e) and x_next = x + (t_next - t) v, t_next the next listed timestep / 1000, or 0;
- add_noise(x0, noise, T) = sqrt(abar[T - 1]) x0 + sqrt(1 - abar[T - 1]) noise (img2img start).

Broken variants (Variant) are deliberate mistakes a ComfyUI port could make; tests show the
comparison catches each of them.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import numpy as np
import torch

NUM_WINDOWS = 4
TRAIN_TIMESTEPS = 1000
PREDICTION_TYPES = ("diff_eps", "ddim_eps", "velocity")
BETA_START, BETA_END = 0.00085, 0.012
WINDOW_STARTS = tuple((NUM_WINDOWS - i) / NUM_WINDOWS for i in range(NUM_WINDOWS))  # 1, .75, .5, .25
WINDOW_ENDS = WINDOW_STARTS[1:] + (0.0,)
_LOOKUP_TOLERANCE = 0.1 / TRAIN_TIMESTEPS


@dataclass(frozen=True)
class Variant:
    """One deliberate deviation from the official scheduler (the default is the official one)."""

    timestep_offset: int = 0  # -1: the UNet is called with 1000 t - 1 (DDPM-style 0-based indexing)
    boundary_ends_window: bool = False  # a boundary time belongs to the window that ENDS there
    velocity_sign: float = 1.0  # -1: the step uses -v (InstaFlow's sign convention)


OFFICIAL = Variant()


def alphas_cumprod() -> torch.Tensor:
    """SD's scaled_linear DDPM schedule, float32 as in the official constructor."""
    betas = torch.linspace(BETA_START ** 0.5, BETA_END ** 0.5, TRAIN_TIMESTEPS, dtype=torch.float32) ** 2
    return torch.cumprod(1.0 - betas, dim=0)


def timesteps_over_windows(steps: int, windows: Sequence[tuple[float, float]]) -> list[int]:
    """set_timesteps' rule over the given (t_start, t_end) windows, noise side first."""
    count = len(windows)
    steps = max(steps, count)
    points = []
    for i, (t_start, t_end) in enumerate(windows):
        n = steps // count + (1 if i < steps % count else 0)
        points.append(np.linspace(t_start, t_end, num=n, endpoint=False))
    return [int(v) for v in (np.concatenate(points) * TRAIN_TIMESTEPS).astype(np.int64)]


def official_timesteps(steps: int) -> list[int]:
    """The official PeRFlowScheduler.set_timesteps(steps) list (1000 first)."""
    return timesteps_over_windows(steps, list(zip(WINDOW_STARTS, WINDOW_ENDS)))


def partial_timesteps(steps: int, first_window: int) -> list[int]:
    """The same rule over windows first_window..K-1 only: a schedule that starts at a boundary < 1."""
    return timesteps_over_windows(steps, list(zip(WINDOW_STARTS, WINDOW_ENDS))[first_window:])


class ReferencePeRFlowScheduler:
    """step() and add_noise() of the official scheduler for one prediction type and one timestep list."""

    def __init__(self, prediction_type: str, timesteps: Sequence[int], variant: Variant = OFFICIAL):
        if prediction_type not in PREDICTION_TYPES:
            raise ValueError(prediction_type)
        self.prediction_type = prediction_type
        self.timesteps = torch.tensor(list(timesteps), dtype=torch.int64)
        self.variant = variant
        self.alphas_cumprod = alphas_cumprod()

    # ---------------------------------------------------------------- windows
    def window(self, t: torch.Tensor) -> tuple[float, float]:
        """(t_start, t_end) of the window time t (a float32 0-dim tensor) belongs to."""
        index = 0
        if self.variant.boundary_ends_window:
            while index < NUM_WINDOWS - 1 and t + _LOOKUP_TOLERANCE <= WINDOW_ENDS[index]:
                index += 1
        else:
            while index < NUM_WINDOWS - 1 and t - _LOOKUP_TOLERANCE <= WINDOW_ENDS[index]:
                index += 1
        return WINDOW_STARTS[index], WINDOW_ENDS[index]

    def abar_at(self, t: torch.Tensor) -> torch.Tensor:
        """alphas_cumprod[int(1000 t) - 1], clamped at index 0 (t = 0 gives abar[0])."""
        return self.alphas_cumprod[torch.clamp((t * TRAIN_TIMESTEPS - 1).long(), min=0)]

    # ---------------------------------------------------------------- one step
    def velocity(self, model_output: torch.Tensor, timestep: torch.Tensor, sample: torch.Tensor) -> torch.Tensor:
        """The window velocity dx/dt (t = 1 at noise) from the model output at an int64 timestep."""
        if self.prediction_type == "velocity":
            return model_output
        t_c = timestep / TRAIN_TIMESTEPS  # int64 / int -> float32, as in the official step
        start, end = self.window(t_c)
        t_s, t_e = torch.ones_like(t_c) * start, torch.ones_like(t_c) * end
        abar_s, abar_e = self.abar_at(t_s), self.abar_at(t_e)
        lambda_s = (abar_e / abar_s) ** 0.5
        if self.prediction_type == "ddim_eps":
            eta_s = (1 - abar_e) ** 0.5 - (abar_e / abar_s * (1 - abar_s)) ** 0.5
        else:  # diff_eps: written as the official code does, through gamma = sqrt(abar_s / abar_e)
            gamma = (abar_s / abar_e) ** 0.5
            lambda_s = 1 / gamma
            eta_s = -((1 - gamma ** 2) ** 0.5) / gamma
        scale = lambda_s * (t_c - t_s) + (t_e - t_c)
        if self.variant.boundary_ends_window:
            # At t_c == t_e the official quotient is 0/0; this is the same expression with
            # (t_e - t_c) cancelled, finite everywhere (v = ((lambda_s - 1) x + eta_s e) / scale).
            return ((lambda_s - 1) * sample + eta_s * model_output) / scale
        lambda_t = lambda_s * (t_e - t_s) / scale
        eta_t = eta_s * (t_e - t_c) / scale
        window_end = lambda_t * sample + eta_t * model_output
        return (window_end - sample) / (t_e - (t_s + (t_c - t_s)))

    def next_timestep(self, timestep: torch.Tensor) -> torch.Tensor:
        position = int(torch.nonzero(self.timesteps == timestep)[0, 0])
        return self.timesteps[position + 1] if position + 1 < len(self.timesteps) else torch.tensor(0)

    def step(self, model_output: torch.Tensor, timestep: torch.Tensor, sample: torch.Tensor) -> torch.Tensor:
        v = self.velocity(model_output, timestep, sample) * self.variant.velocity_sign
        dt = ((self.next_timestep(timestep) - timestep) / TRAIN_TIMESTEPS).to(sample.device, sample.dtype)
        return sample + dt * v

    def unet_timestep(self, timestep: torch.Tensor) -> torch.Tensor:
        return timestep + self.variant.timestep_offset

    # ---------------------------------------------------------------- img2img start
    def add_noise(self, original: torch.Tensor, noise: torch.Tensor, timestep: int) -> torch.Tensor:
        abar = self.alphas_cumprod.to(original.dtype)[timestep - 1]
        return abar ** 0.5 * original + (1 - abar) ** 0.5 * noise
