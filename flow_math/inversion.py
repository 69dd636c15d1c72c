"""Rectified-flow inversion: from an image latent at sigma 0 to the noise at sigma 1 that the Euler
sampler turns back into it. Torch only, written against a velocity callable.

Method: straight flows can be run backwards (Yang et al. 2024, "Text-to-Image Rectified Flow as
Plug-and-Play Priors", yangxiaofeng/rectified_flow_prior, pipeline_rf_inverse.py): start from the
VAE latent of the image and step the ODE from sigma 0 up to 1 with the model's velocity. That script
means to call the UNet at t = 1000 * sigma but passes it `1 - t` with t on the 0..1000 scale (negative
timesteps); here the UNet sees 1000 * sigma, the timestep of flow_math/flows/instaflow.py.

    velocity(x, sigma) -> v      v in InstaFlow's convention (points from noise to the image), with
                                 guidance already applied: v_neg + cfg * (v_pos - v_neg)

N steps on the sampler's own noise levels, in reverse: sigma_i = i / N, i = 0..N (the float32 values
of flow_math.flows.instaflow.instaflow_sigmas(N) read backwards, so the inversion and the regeneration meet the
model at the same sigmas).

- Explicit step (fixed_point_iterations = 0): x_{i+1} = x_i - (1/N) * v(x_i, sigma_i). Cheap (one model
  call per step) but not the exact inverse of the sampler's step, which reads v at the HIGHER sigma.
- Fixed-point step (k > 0): the forward Euler step of flow_math/euler.py, F(y) = y + (1/N) * v(y,
  sigma_{i+1}) (computed as that sampler computes it, through denoised = y + sigma * v), must land on
  x_i. Starting from the explicit guess y_0, iterate y_{j+1} = y_j + (x_i - F(y_j)), i.e.
  y_{j+1} = x_i - (1/N) * v(y_j, sigma_{i+1}), k times. This converges when (1/N) * Lip(v) < 1, the
  error shrinking by that factor per iteration; regenerating with the same N, prompt and cfg then
  returns the image latent up to what is left of the residual x_i - F(y). Cost: k + 1 model calls per
  step.

The residual of every iteration is kept (as tensors, read once at the end: no device sync per step).
A non-finite result raises NonFiniteError.
"""
from __future__ import annotations

import torch

from .euler import euler_step
from .finite_checks import NonFiniteError, describe_non_finite
from .flows.instaflow import denoised_from_velocity, instaflow_sigmas, moved_along_velocity


def inversion_sigmas(steps: int) -> list[float]:
    """[0, 1/N, ..., 1]: the sampler's sigmas for N steps (instaflow_sigmas), in the order inversion visits them."""
    return list(reversed(instaflow_sigmas(steps).tolist()))


def model_calls(steps: int, fixed_point_iterations: int) -> int:
    """Model evaluations of an inversion (each is two UNet passes when cfg != 1)."""
    return steps * (fixed_point_iterations + 1)


def explicit_step(x: torch.Tensor, velocity: torch.Tensor, sigma: float, sigma_next: float) -> torch.Tensor:
    """x at the higher sigma_next by one explicit backward Euler step with v read at (x, sigma)."""
    return moved_along_velocity(x, velocity, sigma, sigma_next)


def forward_step(y: torch.Tensor, velocity: torch.Tensor, sigma: float, sigma_next: float) -> torch.Tensor:
    """The sampler's Euler step (flow_math/euler.py) from y at sigma down to sigma_next, given v(y, sigma)."""
    return euler_step(y, denoised_from_velocity(y, torch.tensor(sigma), velocity), sigma, sigma_next)


class InversionResult:
    def __init__(self, latent: torch.Tensor, residuals: list[list[float]]):
        self.latent = latent
        # residuals[i][j]: RMS of x_i - F(y_j) at step i, iteration j (empty for explicit steps).
        self.residuals = residuals

    def final_residuals(self) -> list[float]:
        """The last measured residual of each step (the one before the last update)."""
        return [r[-1] for r in self.residuals if r]

    def diverging_steps(self) -> list[int]:
        """Steps whose fixed-point iteration grew instead of shrinking (dt * Lip(v) >= 1 there)."""
        return [i for i, r in enumerate(self.residuals) if len(r) > 1 and r[-1] > r[0]]


def _rms(t: torch.Tensor) -> torch.Tensor:
    return t.detach().float().pow(2).mean().sqrt()


@torch.no_grad()
def invert(x: torch.Tensor, velocity, steps: int, fixed_point_iterations: int = 0, on_evaluation=None) -> InversionResult:
    """The latent at sigma 1 whose N-step Euler sampling gives `x` (a latent at sigma 0).

    velocity(y, sigma) -> v as in the module docstring; on_evaluation(done, total, y), if given, is called
    after each model call with the latent the inversion has reached.
    """
    if steps < 1:
        raise ValueError(f"steps must be at least 1, got {steps}")
    if fixed_point_iterations < 0:
        raise ValueError(f"fixed_point_iterations must be 0 or more, got {fixed_point_iterations}")
    sigmas = inversion_sigmas(steps)
    total = model_calls(steps, fixed_point_iterations)
    done = 0
    residuals: list[list[torch.Tensor]] = []

    def reached(y):
        nonlocal done
        done += 1
        if on_evaluation is not None:
            on_evaluation(done, total, y)

    for i in range(steps):
        sigma, sigma_next = sigmas[i], sigmas[i + 1]
        y = explicit_step(x, velocity(x, sigma), sigma, sigma_next)
        reached(y)
        step_residuals = []
        for _ in range(fixed_point_iterations):
            residual = x - forward_step(y, velocity(y, sigma_next), sigma_next, sigma)
            step_residuals.append(_rms(residual))
            y = y + residual
            reached(y)
        residuals.append(step_residuals)
        x = y
    found = describe_non_finite(x)
    if found is not None:
        raise NonFiniteError(f"inversion: the inverted latent contains {found}. The model produced them (cfg NaN, an "
                             "fp16 overflow: try --force-fp32, or a broken model/LoRA file?).")
    flat = [r for step in residuals for r in step]
    values = torch.stack(flat).tolist() if flat else []  # one host copy for all residuals
    read = iter(values)
    return InversionResult(x, [[next(read) for _ in step] for step in residuals])
