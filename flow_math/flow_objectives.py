"""Training objectives of InstaFlow's recipe: text-conditioned reflow and one-step distillation. Torch only.

Both train a student on coupled (noise, latent) pairs, where `latent` is what a teacher's sampler made
from exactly that `noise`. The student is seen through ComfyUI's model calling convention: a function
`denoised_fn(x, sigma)` returning the image estimate at noise level sigma, which for an InstaFlow model
is x + sigma * v (flow_math/flows/instaflow.py, the convention used throughout):

- **Reflow** (2-Rectified Flow, Liu et al. 2023, "Flow Straight and Fast"): with sigma drawn per pair
  from (0, 1], x_sigma = (1 - sigma) * latent + sigma * noise and the velocity the student implies at
  x_sigma is regressed on the straight line's velocity, latent - noise (noise -> image). Training on
  the teacher's couplings makes the student's paths straight, so few Euler steps suffice.
- **Distillation** (InstaFlow, Liu et al., ICLR 2024): the one-step prediction x_0_pred = noise +
  v(noise, sigma = 1), i.e. the image estimate at sigma = 1, is regressed on the teacher latent. The
  paper used LPIPS on decoded images; here L2 on latents, or a pseudo-Huber loss that is robust to
  the few pairs a teacher got badly wrong.

Reflow in velocity space equals the image-estimate error divided by sigma, so sigma is kept away
from 0 (MIN_SIGMA) where that division would amplify float round-off.
"""
from __future__ import annotations

import math

import torch

from .flows import instaflow

MIN_SIGMA = 1e-3
DISTILL_LOSSES = ("l2", "pseudo_huber")


def reflow_target(latent: torch.Tensor, noise: torch.Tensor) -> torch.Tensor:
    """The straight line's velocity from noise to latent (InstaFlow's sign: it points to the image)."""
    return latent - noise


def sample_sigmas(batch: int, generator: torch.Generator) -> torch.Tensor:
    """One noise level per sample, uniform on [MIN_SIGMA, 1] (rectified flow's uniform time), drawn as a
    low-discrepancy batch (Kingma et al. 2021, "Variational Diffusion Models", appendix: u_i = (u_0 + i / B)
    mod 1): each sample alone is uniform, and the batch covers every 1/B of the interval once, which cuts
    the variance of a step's loss without changing its expectation."""
    u0 = torch.rand((), generator=generator, dtype=torch.float64)
    u = torch.remainder(u0 + torch.arange(batch, dtype=torch.float64) / batch, 1.0)
    return (MIN_SIGMA + (1.0 - MIN_SIGMA) * (1.0 - u)).to(torch.float32)


def step_samples(pair_count: int, objective: str, batch_size: int, generator: torch.Generator) -> list:
    """The (pair index, sigma) samples of one training step. Pairs come in a random order; for reflow a
    batch larger than the set takes the pairs again, and the batch's sigmas are spread over (0, 1]
    (sample_sigmas), so with B = K * P samples each of the P pairs gets K sigmas 1/K apart. Distillation
    only uses sigma 1, so it takes each pair at most once."""
    count = batch_size if objective == "reflow" else min(batch_size, pair_count)
    order = torch.randperm(pair_count, generator=generator).tolist()
    sigmas = sample_sigmas(count, generator)
    return [(order[i % pair_count], sigmas[i]) for i in range(count)]


def reflow_loss(denoised_fn, latent: torch.Tensor, noise: torch.Tensor, sigma: torch.Tensor) -> torch.Tensor:
    """Mean squared error of the student's velocity at x_sigma against latent - noise."""
    sigma = sigma.to(latent)
    x = instaflow.noised_latent(latent, noise, sigma)
    velocity = instaflow.velocity_from_denoised(x, sigma, denoised_fn(x, sigma))
    return torch.mean((velocity.float() - reflow_target(latent, noise).float()) ** 2)


def one_step_prediction(denoised_fn, noise: torch.Tensor) -> torch.Tensor:
    """The student's one-step image: the estimate at sigma = 1 from pure noise (noise + v for InstaFlow)."""
    sigma = torch.ones((noise.shape[0],), dtype=noise.dtype, device=noise.device)
    return denoised_fn(noise, sigma)


def pseudo_huber(prediction: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """sqrt(|d|^2 + c^2) - c per sample, c = 0.00054 * sqrt(dim) (Song & Dhariwal 2023, improved consistency
    training), divided by sqrt(dim) to be on the scale of a per-element error; averaged over the batch.
    Quadratic for small errors, linear for large ones."""
    d = (prediction.float() - target.float()).flatten(1)
    c = 0.00054 * math.sqrt(d.shape[1])
    return torch.mean(torch.sqrt(torch.sum(d ** 2, dim=1) + c * c) - c) / d.shape[1] ** 0.5


def distill_loss(denoised_fn, latent: torch.Tensor, noise: torch.Tensor, loss: str = "l2") -> torch.Tensor:
    """Error of the one-step prediction from `noise` against the teacher's `latent`."""
    if loss not in DISTILL_LOSSES:
        raise ValueError(f"distillation loss must be one of {', '.join(DISTILL_LOSSES)}, got {loss!r}")
    prediction = one_step_prediction(denoised_fn, noise)
    if loss == "pseudo_huber":
        return pseudo_huber(prediction, latent)
    return torch.mean((prediction.float() - latent.float()) ** 2)
