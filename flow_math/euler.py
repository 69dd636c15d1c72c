"""The rectified-flow Euler sampler in ComfyUI's k-diffusion calling convention. Torch only.

`model(x, sigma * s_in, **extra_args)` returns the image estimate ("denoised"); for InstaFlow that
is x + sigma * v (flow_math/flows/instaflow.py), so the step below is the official x <- x + dt * v.
"""
from __future__ import annotations

import torch
from tqdm.auto import trange

from .finite_checks import NonFiniteError, describe_non_finite

# Rectified flow lives on sigma in [0, 1] (pure noise at 1); a little slack for float round-off.
_MAX_SIGMA = 1.0 + 1e-4


def euler_step(x: torch.Tensor, denoised: torch.Tensor, sigma: float, sigma_next: float) -> torch.Tensor:
    """x at sigma_next from x and the image estimate at sigma, along the straight path."""
    if sigma_next == 0.0:
        # Lands on the estimate exactly; avoids (x - denoised) / sigma round-off on the one-step path.
        return denoised
    return x + (x - denoised) * ((sigma_next - sigma) / sigma)


@torch.no_grad()
def rectified_flow_euler(model, x, sigmas, extra_args=None, callback=None, disable=None):
    """Deterministic Euler over `sigmas` (from high to low). One model call per step."""
    extra_args = {} if extra_args is None else extra_args
    levels = sigmas.tolist()  # one host copy, so the loop never syncs with the device
    if levels and levels[0] > _MAX_SIGMA:
        # An EPS-model schedule (sigma_max ~14.6 for SD1.5): the model was not patched for rectified flow.
        raise ValueError(
            f"rectified_flow sampler: the schedule starts at sigma {levels[0]:.4g}, above 1, so the model is not set up "
            "for rectified flow (an InstaFlow checkpoint loaded by a stock loader?). Add ModelSamplingInstaFlow after "
            "the loader, or use InstaFlowLoader.")
    s_in = x.new_ones([x.shape[0]])
    # A console bar like the stock samplers', except for a single step: there is no progress to show, and tqdm's set-up
    # and teardown cost a quarter of a millisecond, a quarter of the pack's per-prompt budget on the one-step path.
    steps = trange(len(levels) - 1, disable=disable) if len(levels) > 2 else range(len(levels) - 1)
    for i in steps:
        denoised = model(x, sigmas[i] * s_in, **extra_args)
        if callback is not None:
            callback({"x": x, "i": i, "sigma": sigmas[i], "sigma_hat": sigmas[i], "denoised": denoised})
        x = euler_step(x, denoised, levels[i], levels[i + 1])
    found = describe_non_finite(x)  # one sync per run: a NaN result would otherwise be saved as a black image
    if found is not None:
        raise NonFiniteError(
            f"rectified_flow sampler: the sampled latent contains {found}. The model produced them (cfg NaN, an "
            "fp16 overflow: try --force-fp32, or a broken model/LoRA file?); the image would be black.")
    return x
