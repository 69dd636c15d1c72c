"""PeRFlow's schedule and step in the pack's torch-only module equal the official scheduler (no ComfyUI).

The official side is devtools/reference_perflow_scheduler.py, a re-implementation of
magic-research/piecewise-rectified-flow src/scheduler_perflow.py. Its timestep lists are pinned to
the literal examples first, so the comparison does not rest on the re-implementation alone.
ComfyUI's Euler update (comfy/k_diffusion/sampling.py, sample_euler without churn) is written out
here: x_next = x + (sigma_next - sigma) * (x - denoised) / sigma.
"""
import pytest
import torch

from devtools.reference_perflow_scheduler import (
    NUM_WINDOWS,
    PREDICTION_TYPES,
    ReferencePeRFlowScheduler,
    Variant,
    alphas_cumprod,
    official_timesteps,
    partial_timesteps,
)
from flow_math.flows import perflow

LITERAL_TIMESTEPS = {
    1: [1000, 750, 500, 250],
    2: [1000, 750, 500, 250],
    3: [1000, 750, 500, 250],
    4: [1000, 750, 500, 250],
    6: [1000, 875, 750, 625, 500, 250],
    8: [1000, 875, 750, 625, 500, 375, 250, 125],
    12: [1000, 916, 833, 750, 666, 583, 500, 416, 333, 250, 166, 83],
}
STEP_TOLERANCE = 1e-5  # float32 rounding of the same formulas in a different order


def comfy_euler_step(x, denoised, sigma, sigma_next):
    return x + (sigma_next - sigma) * (x - denoised) / sigma


@pytest.mark.parametrize("steps", sorted(LITERAL_TIMESTEPS))
def test_reference_timesteps_are_the_published_examples(steps):
    assert official_timesteps(steps) == LITERAL_TIMESTEPS[steps]


def test_reference_window_noise_levels_are_the_published_values():
    abar = alphas_cumprod()
    published = {250: 0.675432, 500: 0.277670, 750: 0.056623, 1000: 0.004660}
    for timestep, value in published.items():
        assert abs(float(abar[timestep - 1]) - value) < 5e-6
    assert abs(float(abar[0]) - 0.99915) < 5e-6


@pytest.mark.parametrize("steps", range(1, 13))
def test_pack_timesteps_equal_official_set_timesteps(steps):
    assert perflow.perflow_timesteps(steps) == official_timesteps(steps)


@pytest.mark.parametrize("steps", range(1, 13))
def test_pack_sigmas_are_official_timesteps_over_1000_then_zero(steps):
    expected = torch.tensor([t / 1000 for t in official_timesteps(steps)] + [0.0], dtype=torch.float32)
    sigmas = perflow.perflow_sigmas(steps)
    assert sigmas.dtype == torch.float32
    assert torch.equal(sigmas, expected)


@pytest.mark.parametrize("denoise, first_window", [
    (1.0, 0), (0.9, 0), (0.8, 1), (0.75, 1), (0.6, 2), (0.5, 2), (0.4, 2), (0.3, 3), (0.25, 3), (0.1, 3), (0.01, 3),
])
@pytest.mark.parametrize("steps", [1, 4, 6, 9])
def test_partial_denoise_starts_at_the_nearest_window_boundary(steps, denoise, first_window):
    expected = torch.tensor([t / 1000 for t in partial_timesteps(steps, first_window)] + [0.0], dtype=torch.float32)
    assert torch.equal(perflow.perflow_sigmas(steps, denoise), expected)


def test_half_denoise_runs_the_official_rule_over_the_last_two_windows():
    assert perflow.perflow_sigmas(4, 0.5).tolist() == [0.5, 0.375, 0.25, 0.125, 0.0]


@pytest.mark.parametrize("sigma", [1.0, 0.9, 0.76, 0.75, 0.7500499, 0.7, 0.5, 0.4, 0.25, 0.2, 0.083, 0.001])
def test_window_of_a_time_is_the_official_window(sigma):
    reference = ReferencePeRFlowScheduler("diff_eps", official_timesteps(4))
    start, _ = reference.window(torch.tensor(sigma, dtype=torch.float32))
    assert perflow.window_of(sigma) == round((1.0 - start) * NUM_WINDOWS)


@pytest.mark.parametrize("prediction_type", PREDICTION_TYPES)
@pytest.mark.parametrize("steps", [4, 6, 12])
def test_one_pack_euler_step_equals_the_official_step(prediction_type, steps):
    generator = torch.Generator().manual_seed(steps)
    timesteps = official_timesteps(steps)
    reference = ReferencePeRFlowScheduler(prediction_type, timesteps)
    sigmas = perflow.perflow_sigmas(steps)
    for i, timestep in enumerate(timesteps):
        x, e = torch.randn(2, 4, 8, 8, generator=generator), torch.randn(2, 4, 8, 8, generator=generator)
        sigma = sigmas[i].expand(2)
        ours = comfy_euler_step(x, perflow.denoised(x, e, sigma, prediction_type), sigmas[i], sigmas[i + 1])
        official = reference.step(e, torch.tensor(timestep), x)
        assert torch.allclose(ours, official, rtol=STEP_TOLERANCE, atol=STEP_TOLERANCE), (prediction_type, timestep)


@pytest.mark.parametrize("prediction_type", ["diff_eps", "ddim_eps"])
def test_pack_velocity_equals_the_official_window_velocity_inside_windows(prediction_type):
    generator = torch.Generator().manual_seed(7)
    reference = ReferencePeRFlowScheduler(prediction_type, list(range(1000, 0, -1)))
    for timestep in (999, 875, 751, 749, 626, 500, 333, 250, 83, 1):
        x, e = torch.randn(1, 4, 8, 8, generator=generator), torch.randn(1, 4, 8, 8, generator=generator)
        sigma = torch.tensor([timestep / 1000], dtype=torch.float32)
        official = reference.velocity(e, torch.tensor(timestep), x)
        assert torch.allclose(perflow.velocity(x, e, sigma, prediction_type), official, rtol=1e-4, atol=1e-4), timestep


def test_a_step_ending_on_a_window_end_lands_on_the_predicted_window_end():
    """Official step from 1000 to 750 with one step per window: x_next is z_end = lambda_s x + eta_s e."""
    x, e = torch.randn(1, 4, 8, 8), torch.randn(1, 4, 8, 8)
    abar = alphas_cumprod()
    gamma = (abar[999] / abar[749]) ** 0.5
    window_end = x / gamma - (1 - gamma ** 2) ** 0.5 / gamma * e
    sigmas = perflow.perflow_sigmas(4)
    ours = comfy_euler_step(x, perflow.denoised(x, e, sigmas[0:1], "diff_eps"), sigmas[0], sigmas[1])
    assert torch.allclose(ours, window_end, rtol=STEP_TOLERANCE, atol=STEP_TOLERANCE)


@pytest.mark.parametrize("t0", [0.25, 0.5, 0.75])
def test_noised_latent_on_a_boundary_is_the_official_add_noise(t0):
    latent, noise = torch.randn(1, 4, 8, 8), torch.randn(1, 4, 8, 8)
    official = ReferencePeRFlowScheduler("diff_eps", official_timesteps(4)).add_noise(latent, noise, int(1000 * t0))
    assert torch.allclose(perflow.noised_latent(latent, noise, t0), official, rtol=1e-6, atol=1e-6)


def test_noised_latent_at_one_is_pure_noise_as_official_txt2img():
    latent, noise = torch.randn(1, 4, 8, 8), torch.randn(1, 4, 8, 8)
    assert torch.equal(perflow.noised_latent(latent, noise, 1.0), noise)


# The reference's broken-variant knobs (used by the server tests) really change the step, and the
# wrong-window form is the official one wherever both are defined.

def test_reference_wrong_window_rule_agrees_with_the_official_inside_windows():
    x, e = torch.randn(1, 4, 8, 8), torch.randn(1, 4, 8, 8)
    timesteps = official_timesteps(12)
    official = ReferencePeRFlowScheduler("diff_eps", timesteps)
    wrong = ReferencePeRFlowScheduler("diff_eps", timesteps, Variant(boundary_ends_window=True))
    for timestep in (916, 833, 666, 583):
        t = torch.tensor(timestep)
        assert torch.allclose(wrong.step(e, t, x), official.step(e, t, x), rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize("variant", [Variant(boundary_ends_window=True), Variant(velocity_sign=-1.0)],
                         ids=["boundary_ends_window", "instaflow_sign"])
def test_reference_broken_variants_change_a_boundary_step(variant):
    x, e = torch.randn(1, 4, 8, 8), torch.randn(1, 4, 8, 8)
    timesteps = official_timesteps(4)
    t = torch.tensor(750)
    official = ReferencePeRFlowScheduler("diff_eps", timesteps).step(e, t, x)
    broken = ReferencePeRFlowScheduler("diff_eps", timesteps, variant).step(e, t, x)
    assert (broken - official).abs().mean() > 0.2 * official.abs().mean()
